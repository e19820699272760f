//! Purchases end to end on the real local stack: invoice + payment session, the sandbox checkout,
//! signed webhooks onto SQS, the bridge playing the event source mapping, exactly-once fulfilment.
use crate::helpers::{now_plus, spawn_app, spawn_app_with_queues, spawn_with, Key, TestApp, TestClock};
use grants_domain::payments::{self, PaymentEventKind};
use grants_domain::ports::PurchaseStore;
use grants_domain::{Clock, SystemClock};
use http::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

fn purchase_body(key: &str) -> Value {
    json!({
        "amount": 1000,
        "price": "5.00",
        "idempotencyKey": key,
        "successUrl": "https://example.com/credits/success",
        "cancelUrl": "https://example.com/credits",
    })
}

fn session_path(purchase: &Value) -> String {
    let url = purchase["paymentSessions"][0]["url"].as_str().unwrap();
    format!("/sandbox/pay/{}", url.rsplit('/').next().unwrap())
}

/// Clicks a checkout button (as the browser's form post would); the sandbox puts its event on the
/// payment-events queue itself.
async fn click(t: &TestApp, purchase: &Value, action: &str) -> crate::helpers::TestResponse {
    t.raw_with(
        Method::POST,
        &session_path(purchase),
        Key::None,
        format!("action={action}").as_bytes(),
        &[("content-type", "application/x-www-form-urlencoded")],
    )
    .await
}

#[tokio::test]
async fn a_purchase_is_an_open_invoice_with_a_session_and_no_grant() {
    let t = spawn_app().await;
    let ent = t.entitlement().await;
    let p = t.purchase(&ent, purchase_body("topup-1")).await;
    assert_eq!(p["object"], "grant_purchase");
    assert_eq!(p["entitlementId"], ent.as_str());
    assert_eq!(p["grantAmount"], 1000);
    assert_eq!(p["price"], "5.00");
    assert_eq!(p["currency"], "usd");
    let session = &p["paymentSessions"][0];
    assert_eq!(session["amount"], 500);
    assert!(
        session["url"]
            .as_str()
            .unwrap()
            .starts_with("http://grants.test/sandbox/pay/ps_"),
        "{session}"
    );
    assert!(session["expiresAt"].as_str().is_some());
    assert!(p["invoiceId"].as_str().unwrap().starts_with("inv_"));

    let invoice = t.invoice(p["invoiceId"].as_str().unwrap()).await;
    assert_eq!(invoice["status"], "ISSUED");
    assert_eq!(invoice["grandTotal"], "5.00");
    assert_eq!(invoice["paymentUrl"], session["url"]);
    assert_eq!(invoice["grantId"], Value::Null);
    assert!(t.all_grants(&ent).await.is_empty(), "no grant before payment");

    // The checkout page shows the amount and both buttons.
    let page = t.raw(Method::GET, &session_path(&p), Key::None, b"").await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.body.as_str().unwrap();
    assert!(
        html.contains("5.00 USD") && html.contains("id=\"pay\"") && html.contains("id=\"cancel\""),
        "{html}"
    );
}

#[tokio::test]
async fn replays_return_the_same_invoice_and_changed_parameters_conflict() {
    let t = spawn_app().await;
    let ent = t.entitlement().await;
    let first = t.purchase(&ent, purchase_body("k")).await;
    let again = t.purchase(&ent, purchase_body("k")).await;
    assert_eq!(first, again);
    // "5" is the same price as "5.00".
    let mut same_price = purchase_body("k");
    same_price["price"] = json!("5");
    assert_eq!(t.purchase(&ent, same_price).await["invoiceId"], first["invoiceId"]);
    let mut other = purchase_body("k");
    other["amount"] = json!(2000);
    let r = t.post(&format!("/v1/entitlements/{ent}/grants/purchase"), other).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.body["details"]["differingFields"], json!(["amount"]));
    assert_eq!(r.header("x-should-retry"), Some("false"));
    // Purchase keys and direct-grant keys are separate namespaces.
    let g = t
        .post(
            &format!("/v1/entitlements/{ent}/grants"),
            json!({"amount": 1, "idempotencyKey": "k"}),
        )
        .await;
    assert_eq!(g.status, StatusCode::CREATED, "{}", g.body);
}

#[tokio::test]
async fn bad_purchase_input_is_a_400_naming_the_field_and_writes_nothing() {
    let t = spawn_app().await;
    let ent = t.entitlement().await;
    let past = "2020-01-01T00:00:00Z";
    let far = now_plus(31 * 24 * 3600).to_rfc3339();
    let cases: Vec<(&str, Value)> = vec![
        ("price", json!({"amount": 1, "idempotencyKey": "b"})),
        ("price", json!({"amount": 1, "price": 5, "idempotencyKey": "b"})),
        ("price", json!({"amount": 1, "price": "0.49", "idempotencyKey": "b"})),
        ("price", json!({"amount": 1, "price": "5.001", "idempotencyKey": "b"})),
        ("price", json!({"amount": 1, "price": "five", "idempotencyKey": "b"})),
        ("price", json!({"amount": 1, "price": "-5.00", "idempotencyKey": "b"})),
        ("amount", json!({"amount": 0, "price": "5.00", "idempotencyKey": "b"})),
        (
            "amount",
            json!({"amount": "10", "price": "5.00", "idempotencyKey": "b"}),
        ),
        ("idempotencyKey", json!({"amount": 1, "price": "5.00"})),
        (
            "idempotencyKey",
            json!({"amount": 1, "price": "5.00", "idempotencyKey": "x".repeat(256)}),
        ),
        (
            "successUrl",
            json!({"amount": 1, "price": "5.00", "idempotencyKey": "b", "successUrl": "ftp://x"}),
        ),
        (
            "cancelUrl",
            json!({"amount": 1, "price": "5.00", "idempotencyKey": "b", "cancelUrl": "javascript:alert(1)"}),
        ),
        (
            "paymentExpiresAt",
            json!({"amount": 1, "price": "5.00", "idempotencyKey": "b", "paymentExpiresAt": past}),
        ),
        (
            "paymentExpiresAt",
            json!({"amount": 1, "price": "5.00", "idempotencyKey": "b", "paymentExpiresAt": far}),
        ),
        (
            "paymentExpiresAt",
            json!({"amount": 1, "price": "5.00", "idempotencyKey": "b", "paymentExpiresAt": "soon"}),
        ),
        (
            "expiresAt",
            json!({"amount": 1, "price": "5.00", "idempotencyKey": "b", "effectiveAt": "2030-01-02T00:00:00Z", "expiresAt": "2030-01-01T00:00:00Z"}),
        ),
        (
            "resetMinRollover",
            json!({"amount": 1, "price": "5.00", "idempotencyKey": "b", "resetMaxRollover": 1, "resetMinRollover": 2}),
        ),
        (
            "resetMaxRollover",
            json!({"amount": 1, "price": "5.00", "idempotencyKey": "b", "resetMaxRollover": -1}),
        ),
        ("body", json!([1, 2])),
    ];
    for (field, body) in cases {
        let r = t
            .post(&format!("/v1/entitlements/{ent}/grants/purchase"), body.clone())
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
        let fields: Vec<&str> = r.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert!(fields.contains(&field), "{body}: expected {field} in {fields:?}");
        assert!(r.body["message"].as_str().unwrap().contains(field));
    }
    // Nothing was claimed: the key "b" still starts a fresh purchase.
    let ok = t
        .purchase(&ent, json!({"amount": 7, "price": "1.00", "idempotencyKey": "b"}))
        .await;
    assert_eq!(ok["grantAmount"], 7);
    // A malformed body.
    let r = t
        .raw(
            Method::POST,
            &format!("/v1/entitlements/{ent}/grants/purchase"),
            Key::Bearer(&t.admin_key),
            b"{",
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["errors"][0]["field"], "body");
}

#[tokio::test]
async fn purchases_are_tenant_scoped() {
    let (a, b) = (spawn_app().await, spawn_app().await);
    let ent = a.entitlement().await;
    let p = a.purchase(&ent, purchase_body("x")).await;
    let inv = p["invoiceId"].as_str().unwrap();
    assert_eq!(
        b.get(&format!("/v2/invoices/{inv}")).await.status,
        StatusCode::NOT_FOUND
    );
    let r = b
        .post(&format!("/v1/entitlements/{ent}/grants/purchase"), purchase_body("x"))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(a.get("/v2/invoices/inv_nope").await.status, StatusCode::NOT_FOUND);
    assert_eq!(a.get("/v2/invoices/not-an-id").await.status, StatusCode::NOT_FOUND);
    // A member may not buy unless the tenant allows it (finding 1); no key may not at all.
    let (buy_path, buy_body) = (
        format!("/v1/entitlements/{ent}/grants/purchase"),
        purchase_body("m").to_string(),
    );
    let member_buys = || a.raw(Method::POST, &buy_path, Key::Bearer(&a.member_key), buy_body.as_bytes());
    let r = member_buys().await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let change = grants_dev_tools::admin::SettingsChange {
        members_may_purchase: Some(true),
        ..Default::default()
    };
    grants_dev_tools::admin::update_tenant_settings(a.app.store.as_ref(), &a.tenant, change)
        .await
        .unwrap();
    a.app.tenants.forget(a.tenant.as_str());
    let r = member_buys().await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = a.raw(Method::GET, &format!("/v2/invoices/{inv}"), Key::None, b"").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Cancelled entitlements sell nothing.
    a.post(&format!("/v1/entitlements/{ent}/cancel"), json!({})).await;
    let r = a
        .post(
            &format!("/v1/entitlements/{ent}/grants/purchase"),
            purchase_body("late"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paying_through_the_checkout_creates_the_grant_and_publishes_invoice_paid() {
    let t = spawn_app_with_queues().await;
    let ent = t.entitlement().await;
    let p = t.purchase(&ent, purchase_body("pay-1")).await;
    let r = click(&t, &p, "pay").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), Some("https://example.com/credits/success"));
    assert_eq!(t.depth(&t.queues().payment_events).await, 1);
    t.drain(1).await;

    let grants = t.all_grants(&ent).await;
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0]["amount"], 1000);
    let invoice = t.invoice(p["invoiceId"].as_str().unwrap()).await;
    assert_eq!(invoice["status"], "PAID");
    assert_eq!(invoice["grantId"], grants[0]["id"]);
    assert_eq!(invoice["paidAmount"], "5.00");
    assert_eq!(invoice["metadata"]["paidLate"], false);

    let published = t.take_all(&t.queues().invoice_events).await;
    assert_eq!(published.len(), 1, "{published:?}");
    let event: Value = serde_json::from_str(&published[0]).unwrap();
    assert_eq!(event["type"], "invoice.paid.v0");
    assert_eq!(event["data"]["invoiceId"], p["invoiceId"]);
    assert_eq!(event["data"]["grantId"], grants[0]["id"]);
    assert_eq!(event["data"]["entitlementId"], ent.as_str());
    assert_eq!(event["data"]["amount"], "5.00");
    assert!(event["data"]["paidAt"].as_str().is_some());

    // The page now says so, and a second click is refused.
    let page = t.raw(Method::GET, &session_path(&p), Key::None, b"").await;
    assert!(page.body.as_str().unwrap().contains(">Paid<"));
    let again = click(&t, &p, "pay").await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(t.depth(&t.queues().dead_letter).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_deliveries_of_one_paid_event_make_exactly_one_grant() {
    let t = Arc::new(spawn_app_with_queues().await);
    let ent = t.entitlement().await;
    let p = t.purchase(&ent, purchase_body("burst")).await;
    let event = t.event_for(&p, PaymentEventKind::Paid);
    let body = grants_http::payment_events::encode(&event);
    let signature = payments::sign(&t.webhook_secret().await, SystemClock.now(), body.as_bytes());
    // 200 webhook deliveries, 20 at a time.
    for _ in 0..10 {
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (t, body, signature) = (Arc::clone(&t), body.clone(), signature.clone());
                tokio::spawn(async move { t.webhook(&body, Some(&signature)).await.status })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap(), StatusCode::OK);
        }
    }
    assert_eq!(t.depth(&t.queues().payment_events).await, 200);
    // Four bridges poll at once: batches of 10 race each other on the same invoice.
    t.drain(4).await;

    let grants = t.all_grants(&ent).await;
    assert_eq!(grants.len(), 1, "{grants:?}");
    let invoice = t.invoice(p["invoiceId"].as_str().unwrap()).await;
    assert_eq!(invoice["grantId"], grants[0]["id"]);
    assert_eq!(t.depth(&t.queues().dead_letter).await, 0, "none dead-lettered");
    let published = t.take_all(&t.queues().invoice_events).await;
    assert!(!published.is_empty());
    for m in &published {
        let e: Value = serde_json::from_str(m).unwrap();
        assert_eq!(
            e["data"]["grantId"], grants[0]["id"],
            "every invoice.paid.v0 names the one grant"
        );
    }
}

#[tokio::test]
async fn bad_webhooks_are_rejected_and_nothing_is_enqueued() {
    let t = spawn_app_with_queues().await;
    let ent = t.entitlement().await;
    let p = t.purchase(&ent, purchase_body("w")).await;
    let event = t.event_for(&p, PaymentEventKind::Paid);
    let body = grants_http::payment_events::encode(&event);
    let secret = t.webhook_secret().await;
    let now = SystemClock.now();
    let cases: Vec<(String, Option<String>, &str)> = vec![
        (
            body.clone(),
            Some(payments::sign("whsec_wrong", now, body.as_bytes())),
            "signature_invalid",
        ),
        (
            body.clone(),
            Some(payments::sign(
                &secret,
                now.plus_seconds(-301).unwrap(),
                body.as_bytes(),
            )),
            "signature_stale",
        ),
        (
            body.clone(),
            Some(payments::sign(&secret, now.plus_seconds(400).unwrap(), body.as_bytes())),
            "signature_stale",
        ),
        (body.clone(), None, "signature_missing"),
        (body.clone(), Some("t=1,v1=zz".to_owned()), "signature_malformed"),
        (
            body.replace("500", "5"),
            Some(payments::sign(&secret, now, body.as_bytes())),
            "signature_invalid",
        ),
        (
            "{not json".to_owned(),
            Some(payments::sign(&secret, now, b"{not json")),
            "invalid_json",
        ),
        ("".to_owned(), None, "required"),
        (
            r#"{"account":"no-such-tenant"}"#.to_owned(),
            Some(payments::sign(&secret, now, br#"{"account":"no-such-tenant"}"#)),
            "signature_invalid",
        ),
        // Without a signature every account gets the same answer, known or not (finding 6).
        (r#"{"id":"x"}"#.to_owned(), None, "signature_missing"),
        (r#"{"account":"no-such-tenant"}"#.to_owned(), None, "signature_missing"),
        (body.clone(), Some("garbage".to_owned()), "signature_malformed"),
        (
            r#"{"account":"no-such-tenant"}"#.to_owned(),
            Some("garbage".to_owned()),
            "signature_malformed",
        ),
        // Timestamps at the edges of the integer range are stale, not an overflow (finding 6).
        (body.clone(), Some(format!("t={},v1=00", i64::MIN)), "signature_stale"),
        (body.clone(), Some(format!("t={},v1=00", i64::MAX)), "signature_stale"),
        (
            body.clone(),
            Some("t=99999999999999999999999,v1=00".to_owned()),
            "signature_malformed",
        ),
    ];
    for (body, signature, code) in cases {
        let r = t.webhook(&body, signature.as_deref()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
        assert_eq!(r.body["errors"][0]["code"], code, "{body}: {}", r.body);
    }
    // A correctly signed body that is not a valid event names the field.
    let invalid = body.replace("payment.paid", "payment.reversed");
    let r = t
        .webhook(&invalid, Some(&payments::sign(&secret, now, invalid.as_bytes())))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["errors"][0]["field"], "type");
    assert_eq!(t.depth(&t.queues().payment_events).await, 0, "nothing enqueued");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_that_cannot_apply_reach_the_dead_letter_queue_and_grant_nothing() {
    let t = spawn_app_with_queues().await;
    let ent = t.entitlement().await;
    let p = t.purchase(&ent, purchase_body("dlq")).await;
    // Unknown invoice, wrong amount, wrong currency, wrong session: each signed correctly.
    let mut unknown = t.event_for(&p, PaymentEventKind::Paid);
    unknown.invoice_id = grants_domain::InvoiceId::generate();
    let mut wrong_amount = t.event_for(&p, PaymentEventKind::Paid);
    wrong_amount.amount_minor = 499;
    let mut wrong_currency = t.event_for(&p, PaymentEventKind::Paid);
    wrong_currency.currency = grants_domain::money::Currency::parse("eur").unwrap();
    let mut wrong_session = t.event_for(&p, PaymentEventKind::Paid);
    wrong_session.session_id = grants_domain::SessionId::generate();
    for e in [&unknown, &wrong_amount, &wrong_currency, &wrong_session] {
        assert_eq!(t.deliver(e).await.status, StatusCode::OK);
    }
    // And a poison message put on the queue directly.
    let q = t.queues();
    q.sqs
        .send_message()
        .queue_url(&q.payment_events)
        .message_body("not an event")
        .send()
        .await
        .unwrap();
    t.drain(1).await;
    let dead = t.take_all(&q.dead_letter).await;
    assert_eq!(dead.len(), 5, "{dead:?}");
    assert!(dead.contains(&"not an event".to_owned()));
    assert!(t.all_grants(&ent).await.is_empty());
    assert_eq!(t.invoice(p["invoiceId"].as_str().unwrap()).await["status"], "ISSUED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_expires_the_invoice_and_a_late_payment_still_yields_its_grant() {
    let t = spawn_app_with_queues().await;
    let ent = t.entitlement().await;
    let p = t.purchase(&ent, purchase_body("late")).await;
    let r = click(&t, &p, "cancel").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), Some("https://example.com/credits"));
    t.drain(1).await;
    let invoice = t.invoice(p["invoiceId"].as_str().unwrap()).await;
    assert_eq!(invoice["status"], "CANCELLED");
    assert_eq!(invoice["metadata"]["cancelReason"], "payment_session_expired");
    assert!(t.all_grants(&ent).await.is_empty());
    // The page refuses to pay an expired session...
    assert_eq!(click(&t, &p, "pay").await.status, StatusCode::CONFLICT);
    // ...but money a provider did take is never lost.
    assert_eq!(
        t.deliver(&t.event_for(&p, PaymentEventKind::Paid)).await.status,
        StatusCode::OK
    );
    t.drain(1).await;
    let invoice = t.invoice(p["invoiceId"].as_str().unwrap()).await;
    assert_eq!(invoice["status"], "PAID");
    assert_eq!(invoice["metadata"]["paidLate"], true);
    let grants = t.all_grants(&ent).await;
    assert_eq!(grants.len(), 1);
    assert_eq!(invoice["grantId"], grants[0]["id"]);
    // An expiry that arrives after payment changes nothing.
    assert_eq!(
        t.deliver(&t.event_for(&p, PaymentEventKind::Expired)).await.status,
        StatusCode::OK
    );
    t.drain(1).await;
    assert_eq!(t.invoice(p["invoiceId"].as_str().unwrap()).await["status"], "PAID");
    assert_eq!(t.depth(&t.queues().dead_letter).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpaid_sessions_expire_when_read_and_are_canceled_by_the_scheduled_sweep() {
    let clock = Arc::new(TestClock(Mutex::new(SystemClock.now())));
    let t = spawn_with(clock.clone(), true).await;
    let ent = t.entitlement().await;
    let expires = clock.now().plus_seconds(600).unwrap().to_rfc3339();
    let mut body = purchase_body("sweep");
    body["paymentExpiresAt"] = json!(expires);
    let p = t.purchase(&ent, body).await;
    assert_eq!(p["paymentSessions"][0]["expiresAt"], json!(expires));
    let inv = p["invoiceId"].as_str().unwrap();
    assert_eq!(t.invoice(inv).await["status"], "ISSUED");
    let swept = grants_lambda::handle_expiry(&t.app).await.unwrap();
    let before = swept["canceled"].as_u64().unwrap();

    clock.advance(601);
    // Read-time: already shown as cancelled before any sweep.
    assert_eq!(t.invoice(inv).await["status"], "CANCELLED");
    let page = t.raw(Method::GET, &session_path(&p), Key::None, b"").await;
    assert!(page.body.as_str().unwrap().contains("expired"));
    // The sweep writes it (other tests' due invoices may be swept too: at least ours).
    let swept = grants_lambda::handle_expiry(&t.app).await.unwrap();
    assert!(swept["canceled"].as_u64().unwrap() >= 1, "{swept} (before: {before})");
    let stored = t
        .app
        .store
        .get_invoice(&t.tenant, &grants_domain::InvoiceId::parse(inv).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, grants_domain::purchases::InvoiceStatus::Canceled);
    assert!(t.all_grants(&ent).await.is_empty());
    // A payment that happened before expiry but arrives now is on time; it is granted either way.
    let mut paid = t.event_for(&p, PaymentEventKind::Paid);
    paid.occurred_at = clock.now().plus_seconds(-300).unwrap();
    assert_eq!(t.deliver(&paid).await.status, StatusCode::OK);
    t.drain(1).await;
    assert_eq!(t.all_grants(&ent).await.len(), 1);
    assert_eq!(
        t.invoice(inv).await["metadata"]["paidLate"],
        true,
        "the invoice had been cancelled"
    );
}

#[tokio::test]
async fn the_checkout_page_refuses_bad_input_and_emits_nothing() {
    let t = spawn_app().await;
    let ent = t.entitlement().await;
    let p = t.purchase(&ent, purchase_body("page")).await;
    for path in [
        "/sandbox/pay/ps_01UNKNOWNSESSION000000000",
        "/sandbox/pay/not-a-session",
    ] {
        let page = t.raw(Method::GET, path, Key::None, b"").await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        assert!(page.body.as_str().unwrap().contains("Payment not found"));
        let post = t.raw(Method::POST, path, Key::None, b"action=pay").await;
        assert_eq!(post.status, StatusCode::NOT_FOUND, "{path}");
    }
    for body in ["", "action=refund", "act=pay", "action=%ZZ"] {
        let r = t.raw(Method::POST, &session_path(&p), Key::None, body.as_bytes()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
        assert_eq!(r.body["errors"][0]["field"], "action");
    }
    assert!(
        t.deliveries.0.lock().unwrap().is_empty(),
        "no payment event was emitted"
    );
    assert_eq!(t.invoice(p["invoiceId"].as_str().unwrap()).await["status"], "ISSUED");
}

#[tokio::test]
async fn without_a_payment_provider_purchases_are_refused_and_the_sandbox_is_gone() {
    let mut t = spawn_app().await;
    let ent = t.entitlement().await;
    let p = t.purchase(&ent, purchase_body("before")).await;
    // The same store, as a stack deployed with PaymentProvider=none serves it.
    t.app = Arc::new(
        grants_http::App::with_system_clock(t.app.store.clone())
            .with_provider(Arc::new(grants_http::providers::NoProvider)),
    );
    let r = t
        .post(
            &format!("/v1/entitlements/{ent}/grants/purchase"),
            purchase_body("after"),
        )
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert_eq!(
        t.raw(Method::GET, &session_path(&p), Key::None, b"").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        t.raw(Method::POST, &session_path(&p), Key::None, b"action=pay")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}
