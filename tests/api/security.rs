//! The security review's findings (issue "Safe to deploy"), each as the attack that worked before
//! the fix, on the real local stack. Findings 5 and 6 also have fuzz cases (fuzz.rs) and webhook
//! cases (purchases.rs); the provider setting's unit test is in shared's config.rs.
use crate::helpers::{random_suffix, spawn_app, template, Key, TestApp, TEST_BASE_URL};
use grants_dev_tools::admin::{self, SettingsChange};
use grants_domain::auth;
use grants_domain::payments;
use grants_domain::ports::EntitlementStore;
use grants_domain::{Clock, EntitlementId, SystemClock, TenantId, Timestamp};
use grants_dynamo::DynamoStore;
use grants_http::providers::SandboxProvider;
use http::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn purchase_body(key: &str, price: &str) -> Value {
    json!({ "amount": 1000, "price": price, "idempotencyKey": key, "successUrl": "https://example.com/ok" })
}

async fn settings(t: &TestApp, change: SettingsChange) {
    admin::update_tenant_settings(t.app.store.as_ref(), &t.tenant, change)
        .await
        .unwrap();
    // A warm instance sees the change within its settings cache's 60 s; this one at once.
    t.app.tenants.forget(t.tenant.as_str());
}

/// Finding 1: a member key set its own price and the sandbox completed the purchase. Now members
/// need the tenant's permission (auth.rs, purchases.rs), every price meets the tenant's minimum per
/// credit, and what the sandbox paid says so.
#[tokio::test]
async fn prices_meet_the_tenants_minimum_and_sandbox_invoices_say_so() {
    let t = spawn_app().await;
    let ent = t.entitlement().await;
    settings(
        &t,
        SettingsChange {
            min_price_per_credit: Some(Some("0.01".parse().unwrap())),
            ..Default::default()
        },
    )
    .await;
    let url = format!("/v1/entitlements/{ent}/grants/purchase");
    let r = t.post(&url, purchase_body("cheap", "5.00")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.body["errors"][0]["field"], "price");
    assert_eq!(r.body["errors"][0]["code"], "below_minimum");
    // Nothing was written: the same key with an acceptable price is a new purchase, not a 409.
    let p = t.purchase(&ent, purchase_body("cheap", "10.00")).await;
    let invoice = t.invoice(p["invoiceId"].as_str().unwrap()).await;
    assert_eq!(invoice["sandbox"], true);
}

/// Finding 2: a purchase with `resetMinRollover` above its amount was topped up at every reset.
#[tokio::test]
async fn the_rollover_minimum_may_not_exceed_the_amount_anywhere() {
    let t = spawn_app().await;
    let ent = t.entitlement().await;
    let mut body = purchase_body("roll", "5.00");
    body["resetMinRollover"] = json!(1001);
    let r = t.post(&format!("/v1/entitlements/{ent}/grants/purchase"), body).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.body["errors"][0]["field"], "resetMinRollover");
    let r = t
        .post(
            &format!("/v1/entitlements/{ent}/grants"),
            json!({ "amount": 10, "resetMinRollover": 11, "idempotencyKey": "r1" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.body["errors"][0]["field"], "resetMinRollover");
    assert!(t.all_grants(&ent).await.is_empty(), "nothing written");
    let r = t
        .post(
            &format!("/v1/entitlements/{ent}/grants"),
            json!({ "amount": 10, "resetMinRollover": 10, "idempotencyKey": "r1" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

/// Finding 3: a sub-second period made the reset loop spin forever, for every tenant. Periods
/// under an hour are refused, and an old stuck one is skipped and taken out of the schedule while
/// another tenant's reset goes ahead, within the run's time budget.
#[tokio::test]
async fn a_stuck_entitlement_does_not_stop_other_tenants_resets() {
    let t = spawn_app().await;
    let r = t
        .post(
            "/v1/entitlements",
            json!({ "customerId": "c", "featureKey": "f", "currentPeriodStart": "2026-03-01T00:00:00Z",
                    "currentPeriodEnd": "2026-03-01T00:00:00.500Z" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.body["errors"][0]["field"], "currentPeriodEnd");

    // Its own table: the reset run is global.
    let base = crate::helpers::store().await;
    let table = format!("grants-stuck-{}", random_suffix());
    admin::create_table_from_template(base.client(), &template(), &table)
        .await
        .unwrap();
    let store = DynamoStore::new(base.client().clone(), table);
    let now = SystemClock.now();
    let day_ago = |d: i64| now.plus_seconds(-d * 86_400).unwrap().to_rfc3339();
    let period = json!({ "customerId": "c", "featureKey": "f", "currentPeriodStart": day_ago(3), "currentPeriodEnd": day_ago(2) });
    let (bad, good) = (TenantId::parse("stuck-a").unwrap(), TenantId::parse("fine-b").unwrap());
    let made = admin::create_entitlement(&store, &bad, period.clone()).await.unwrap();
    let template_ent = store
        .get_entitlement(&bad, &EntitlementId::parse(made["id"].as_str().unwrap()).unwrap())
        .await
        .unwrap()
        .unwrap();
    // Stored before the minimum existed: half-second periods, due before anything else.
    for _ in 0..3 {
        let mut stuck = template_ent.clone();
        stuck.id = EntitlementId::generate();
        let half_second = stuck.current_period_start.as_datetime() + std::time::Duration::from_millis(500);
        stuck.current_period_end = Timestamp::from_datetime(half_second).unwrap();
        stuck.period_months = None;
        store.put_entitlement(&stuck).await.unwrap();
    }
    let fine = admin::create_entitlement(&store, &good, period).await.unwrap();
    let fine_id = EntitlementId::parse(fine["id"].as_str().unwrap()).unwrap();

    let started = Instant::now();
    let run = grants_domain::periods::reset_due(&store, &SystemClock, 10, started + Duration::from_secs(20))
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(20));
    // Both valid entitlements (the other tenant's, and the stuck tenant's own valid one) reset.
    assert_eq!((run.reset, run.quarantined, run.failed), (2, 3, 0), "{run:?}");
    let moved = store.get_entitlement(&good, &fine_id).await.unwrap().unwrap();
    assert!(moved.current_period_start <= now && now < moved.current_period_end);
    // Quarantined ones are out of the schedule; a run past its deadline leaves work for the next.
    let again = grants_domain::periods::reset_due(&store, &SystemClock, 10, Instant::now() + Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!((again.reset, again.quarantined), (0, 0), "{again:?}");
    let late = grants_domain::periods::reset_due(&store, &SystemClock, 10, Instant::now())
        .await
        .unwrap();
    assert_eq!(late.reset, 0);
}

/// Finding 4: the session URL came from the Host header, and the sandbox POSTed a signed event to
/// it. The URL now comes from the configured base URL (or API Gateway's own domain) only.
#[tokio::test]
async fn no_stored_url_comes_from_a_client_header() {
    let mut t = spawn_app().await;
    let ent = t.entitlement().await;
    let body = purchase_body("host", "5.00").to_string();
    let headers = [
        ("host", "evil.example"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "evil.example"),
    ];
    let r = t
        .raw_with(
            Method::POST,
            &format!("/v1/entitlements/{ent}/grants/purchase"),
            Key::Bearer(&t.admin_key),
            body.as_bytes(),
            &headers,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let url = r.body["paymentSessions"][0]["url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{TEST_BASE_URL}/sandbox/pay/ps_")), "{url}");
    // Paying hands the event to the payment-events queue inside the service; no HTTP call.
    let session = format!("/sandbox/pay/{}", url.rsplit('/').next().unwrap());
    let paid = t
        .raw_with(Method::POST, &session, Key::None, b"action=pay", &headers)
        .await;
    assert_eq!(paid.status, StatusCode::SEE_OTHER);
    let queued = t.deliveries.0.lock().unwrap().clone();
    assert_eq!(queued.len(), 1);
    assert!(queued[0].contains("payment.paid"));
    // Without a configured base URL (and outside API Gateway) no session URL can be made: 503.
    t.app = Arc::new(grants_http::App::with_system_clock(t.app.store.clone()).with_provider(Arc::new(SandboxProvider)));
    let r = t
        .raw_with(
            Method::POST,
            &format!("/v1/entitlements/{ent}/grants/purchase"),
            Key::Bearer(&t.admin_key),
            purchase_body("nobase", "5.00").to_string().as_bytes(),
            &headers,
        )
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
}

/// Finding 7: the checkout page could be framed and redirected anywhere.
#[tokio::test]
async fn the_checkout_page_cannot_be_framed_and_redirects_only_to_allowed_origins() {
    let t = spawn_app().await;
    let ent = t.entitlement().await;
    let p = t.purchase(&ent, purchase_body("frame", "5.00")).await;
    let url = p["paymentSessions"][0]["url"].as_str().unwrap();
    let page = t
        .raw(
            Method::GET,
            &format!("/sandbox/pay/{}", url.rsplit('/').next().unwrap()),
            Key::None,
            b"",
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("form-action 'self' https://example.com;"),
        "{csp}"
    );
    assert!(page.body.as_str().unwrap().contains("SANDBOX"));

    let url = format!("/v1/entitlements/{ent}/grants/purchase");
    // No origins set: https only, and only with the sandbox provider.
    let mut http = purchase_body("plain-http", "5.00");
    http["successUrl"] = json!("http://example.com/ok");
    let r = t.post(&url, http).await;
    assert_eq!(
        (r.status, r.body["errors"][0]["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("successUrl")),
        "{}",
        r.body
    );
    settings(
        &t,
        SettingsChange {
            allowed_redirect_origins: Some(vec!["https://shop.example".into()]),
            ..Default::default()
        },
    )
    .await;
    let mut elsewhere = purchase_body("elsewhere", "5.00");
    elsewhere["cancelUrl"] = json!("https://shop.example.evil.com/back");
    elsewhere["successUrl"] = json!("https://shop.example/ok");
    let r = t.post(&url, elsewhere).await;
    assert_eq!(
        (r.status, r.body["errors"][0]["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("cancelUrl")),
        "{}",
        r.body
    );
    let mut allowed = purchase_body("allowed", "5.00");
    allowed["successUrl"] = json!("https://shop.example/ok");
    t.purchase(&ent, allowed).await;
}

async fn whoami(t: &TestApp, key: &str) -> StatusCode {
    t.raw(Method::GET, "/v1/entitlements", Key::Bearer(key), b"")
        .await
        .status
}

/// Keys: listed without secrets, revoked keys stop within 5 s, rotation keeps the old key for its
/// overlap, and unknown keys are remembered (one read, not one per request).
#[tokio::test]
async fn keys_are_listed_revoked_and_rotated() {
    let t = spawn_app().await;
    let store = t.app.store.as_ref();
    let keys = auth::list_keys(store, &t.tenant).await.unwrap();
    assert_eq!(keys.len(), 2);
    for k in &keys {
        assert!(k.key_id().starts_with("key_") && k.display_prefix.len() == 7);
        assert!(t.admin_key.starts_with(&k.display_prefix) || t.member_key.starts_with(&k.display_prefix));
    }
    let id_of = |key: &str| auth::key_id_of_key(key);
    let (admin_id, member_id) = (id_of(&t.admin_key), id_of(&t.member_key));
    assert_eq!(whoami(&t, &t.admin_key).await, StatusCode::OK);
    assert_eq!(whoami(&t, &t.member_key).await, StatusCode::OK);
    let (rotated, _) = auth::rotate_key(store, &SystemClock, &t.tenant, &member_id, 3600)
        .await
        .unwrap();
    auth::revoke_key(store, &SystemClock, &t.tenant, &admin_id)
        .await
        .unwrap();
    assert_eq!(whoami(&t, &rotated).await, StatusCode::OK, "a new key works at once");
    tokio::time::sleep(Duration::from_millis(auth::KEY_CACHE_SECONDS * 1000 + 200)).await;
    assert_eq!(
        whoami(&t, &t.admin_key).await,
        StatusCode::UNAUTHORIZED,
        "revoked within 5 s"
    );
    assert_eq!(
        whoami(&t, &t.member_key).await,
        StatusCode::OK,
        "the rotated key works until the overlap ends"
    );
    let (_, _) = auth::rotate_key(store, &SystemClock, &t.tenant, &id_of(&rotated), 0)
        .await
        .unwrap();
    assert!(auth::revoke_key(store, &SystemClock, &t.tenant, "key_0000000000000000")
        .await
        .is_err());
    let listed = auth::list_keys(store, &t.tenant).await.unwrap();
    assert_eq!(listed.len(), 4);
    assert!(listed.iter().any(|k| k.last_used_at.is_some()), "last use is recorded");
    // Unknown keys: one read, then the negative cache.
    t.round_trips.take();
    for _ in 0..5 {
        assert_eq!(
            whoami(&t, "gk_unknown_key_000000000000000000000000000000000000").await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(t.round_trips.take().len(), 1);
    // Another tenant cannot revoke this tenant's key.
    let other = TenantId::parse("someone-else").unwrap();
    assert!(auth::revoke_key(store, &SystemClock, &other, &member_id).await.is_err());
}

/// Webhook secrets live in Secrets Manager; a rotation keeps the old one verifying for its overlap.
#[tokio::test]
async fn webhook_secrets_rotate_with_an_overlap() {
    let t = spawn_app().await;
    let ent = t.entitlement().await;
    let p = t.purchase(&ent, purchase_body("rotate", "5.00")).await;
    let event = t.event_for(&p, payments::PaymentEventKind::Failed);
    let old = t.webhook_secret().await;
    let signed = |secret: &str| {
        payments::sign(
            secret,
            SystemClock.now(),
            grants_http::payment_events::encode(&event).as_bytes(),
        )
    };
    let rotated = t
        .app
        .secrets
        .rotate_webhook(&t.tenant, &SystemClock, 3600)
        .await
        .unwrap();
    assert_eq!(
        t.webhook(&grants_http::payment_events::encode(&event), Some(&signed(&old)))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        t.webhook(
            &grants_http::payment_events::encode(&event),
            Some(&signed(&rotated.current))
        )
        .await
        .status,
        StatusCode::OK
    );
    t.app.secrets.rotate_webhook(&t.tenant, &SystemClock, 0).await.unwrap();
    let r = t
        .webhook(
            &grants_http::payment_events::encode(&event),
            Some(&signed(&rotated.current)),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["errors"][0]["code"], "signature_invalid");
}

/// Finding 8: DynamoDB Local listened on every interface. Its listening socket (from the kernel's
/// table) is on loopback only.
#[tokio::test]
async fn the_local_dynamodb_listens_on_loopback_only() {
    crate::helpers::use_local_stack();
    let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").unwrap();
    let port: u16 = endpoint
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let mut listening = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for line in std::fs::read_to_string(table).unwrap_or_default().lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let (addr, state) = (cols[1], cols[3]);
            let (ip, p) = addr.split_once(':').unwrap();
            if state == "0A" && u16::from_str_radix(p, 16).unwrap() == port {
                listening.push(ip.to_owned());
            }
        }
    }
    assert!(!listening.is_empty(), "nothing listens on {port}");
    let loopback = [
        "0100007F",
        "0000000000000000FFFF00000100007F",
        "00000000000000000000000001000000",
    ];
    assert!(
        listening.iter().all(|ip| loopback.contains(&ip.as_str())),
        "DynamoDB Local listens on {listening:?}"
    );
}

/// Finding 1, deployed: the template's default provider completes nothing without money moving.
#[test]
fn the_template_defaults_to_no_payment_provider() {
    let doc: serde_norway::Value = serde_norway::from_str(&template()).unwrap();
    let p = &doc["Parameters"]["PaymentProvider"];
    assert_eq!(p["Default"].as_str(), Some("none"));
    let allowed: Vec<&str> = p["AllowedValues"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(allowed.contains(&"none") && allowed.contains(&"sandbox"), "{allowed:?}");
    assert!(
        doc["Parameters"]["PublicBaseUrl"].is_mapping(),
        "PublicBaseUrl parameter"
    );
}
