//! Each events/ sample is a real event of its kind (API Gateway HTTP API v2, SQS, EventBridge
//! schedule: what `cargo lambda invoke --data-file` or `sam local invoke -e` sends) and its
//! function's handler accepts it.
use crate::helpers::{spawn_app_with_queues, TestApp};
use grants_domain::payments;
use grants_domain::{Clock, SystemClock};
use grants_http::Route;
use http::StatusCode;
use serde_json::{json, Value};

const SAMPLE_ENTITLEMENT: &str = "ent_01SAMPLEENTITLEMENT00000";
const SAMPLE_GRANT: &str = "grt_01SAMPLEGRANT000000000000";
const SAMPLE_INVOICE: &str = "inv_01SAMPLEINVOICE000000000";
const SAMPLE_SESSION: &str = "ps_01SAMPLESESSION0000000000";
const SAMPLE_TENANT: &str = "sample-tenant";
const SAMPLE_CAPACITY: &str = "cap_01SAMPLECAPACITYGRANT000";
const SAMPLE_CREDIT_PLAN: &str = "cgrant_01SAMPLECREDITGRANT00000";
const SAMPLE_METRIC: &str = "bm_01SAMPLEMETRIC0000000000000";
const SAMPLE_APPLICATION: &str = "app_01SAMPLEAPPLICATION0000000";
const SAMPLE_ENDPOINT: &str = "ep_01SAMPLEENDPOINT0000000000";
const SAMPLE_PORTAL_TOKEN: &str = "SAMPLEPORTALTOKEN00000000000000000000000000";
const SAMPLE_MESSAGE: &str = "msg_grant_created_01SAMPLEGRANT000000000000";

pub fn sample(name: &str) -> String {
    let path = format!("{}/events/{name}.json", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// (invoice id, session id) of a purchase response.
pub fn ids(purchase: &Value) -> (String, String) {
    let url = purchase["paymentSessions"][0]["url"].as_str().unwrap();
    (
        purchase["invoiceId"].as_str().unwrap().to_owned(),
        url.rsplit('/').next().unwrap().to_owned(),
    )
}

/// Objects of one tenant that the samples' placeholder ids are replaced with.
pub struct SampleObjects {
    ent: String,
    grant: String,
    invoice: String,
    session: String,
    capacity: String,
    plan: String,
    metric: String,
    secret: String,
    stripe_secret: String,
    application: String,
    endpoint: String,
    portal_token: String,
}

impl SampleObjects {
    /// Creates one of everything a sample refers to (the entitlement's customer is `cus_demo`,
    /// which the Metronome samples name), and two pending usage events to commit and release.
    pub async fn create(t: &TestApp) -> Self {
        let ent = t.entitlement_with(json!({"customerId": "cus_demo"})).await;
        let grant = t
            .post(
                &format!("/v1/entitlements/{ent}/grants"),
                json!({"amount": 5, "idempotencyKey": "sample"}),
            )
            .await;
        let purchase = t
            .purchase(
                &ent,
                json!({"amount": 1000, "price": "5.00", "idempotencyKey": "sample"}),
            )
            .await;
        let (invoice, session) = ids(&purchase);
        for id in ["sample-reservation-commit", "sample-reservation-release"] {
            let r = t
                .post(
                    &format!("/v1/entitlements/{ent}/usage"),
                    json!({"eventId": id, "amount": 1, "pending": true}),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        }
        let cap = t
            .post(
                "/v2/grants",
                json!({"kind": "gpu", "cluster": "c1", "quantity": 8, "ends_at": "2099-01-01T00:00:00Z",
            "unit_price": "2", "early_termination_buyback_price": "1", "flexible_usage_buyback_price": "1"}),
            )
            .await;
        let plan = t
            .post(
                "/v1/creditgrants",
                json!({"name": "p", "scope": "PLAN", "plan_id": "plan_sample", "credits": "5", "cadence": "ONETIME"}),
            )
            .await;
        let metric = t
            .post(
                "/v0/billableMetrics",
                json!({"aggregation": "SUM", "description": "Model tokens", "merchantId": t.tenant.as_str(),
                    "name": "Tokens", "unit": "tokens", "eventType": "ai.inference", "valueProperty": "$.tokens"}),
            )
            .await;
        assert_eq!(metric.status, StatusCode::CREATED, "{}", metric.body);
        let webhooks = t.call(http::Method::POST, "/v0/webhooks", None).await;
        assert_eq!(webhooks.status, StatusCode::CREATED, "{}", webhooks.body);
        let application = webhooks.body["applicationId"].as_str().unwrap().to_owned();
        let endpoint = t
            .post(
                &format!("/api/v1/app/{application}/endpoint"),
                json!({"url": "https://example.com/sample"}),
            )
            .await;
        assert_eq!(endpoint.status, StatusCode::CREATED, "{}", endpoint.body);
        let portal = t.call(http::Method::GET, "/v0/webhooks/portal", None).await;
        assert_eq!(portal.status, StatusCode::OK, "{}", portal.body);
        let portal_url = portal.body["url"].as_str().unwrap();
        SampleObjects {
            portal_token: portal_url.rsplit('/').next().unwrap().to_owned(),
            endpoint: endpoint.body["id"].as_str().unwrap().to_owned(),
            application,
            metric: metric.body["id"].as_str().unwrap().to_owned(),
            grant: grant.body["id"].as_str().unwrap().to_owned(),
            capacity: cap.body["fid"].as_str().unwrap().to_owned(),
            plan: plan.body["id"].as_str().unwrap().to_owned(),
            secret: t.webhook_secret().await,
            stripe_secret: {
                let keys = grants_domain::secrets::StripeKeys {
                    secret_key: "sk_test_sample".to_owned(),
                    publishable_key: "pk_test_sample".to_owned(),
                    webhook_secret: grants_domain::secrets::new_webhook_secret().unwrap(),
                    previous_webhook_secret: None,
                    previous_webhook_secret_expires_at: None,
                };
                t.app
                    .secrets
                    .set_stripe(&t.tenant, keys, &SystemClock, 0)
                    .await
                    .unwrap()
                    .webhook_secret
            },
            ent,
            invoice,
            session,
        }
    }

    /// The route's sample event, pointing at these objects and carrying `key` (none: no header).
    pub fn event(&self, t: &TestApp, route: Route, key: Option<&str>) -> lambda_http::Request {
        let text = sample(route.function())
            .replace(SAMPLE_ENTITLEMENT, &self.ent)
            .replace(SAMPLE_GRANT, &self.grant)
            .replace(SAMPLE_INVOICE, &self.invoice)
            .replace(SAMPLE_SESSION, &self.session)
            .replace(SAMPLE_TENANT, t.tenant.as_str())
            .replace(SAMPLE_CAPACITY, &self.capacity)
            .replace(SAMPLE_CREDIT_PLAN, &self.plan)
            .replace(SAMPLE_METRIC, &self.metric)
            .replace(SAMPLE_APPLICATION, &self.application)
            .replace(SAMPLE_ENDPOINT, &self.endpoint)
            .replace(SAMPLE_PORTAL_TOKEN, &self.portal_token)
            .replace(
                SAMPLE_MESSAGE,
                &format!("msg_grant_created_{}", self.grant.trim_start_matches("grt_")),
            );
        let mut event: Value = serde_json::from_str(&text).unwrap();
        match key {
            Some(k) => event["headers"]["authorization"] = json!(format!("Bearer {k}")),
            None => {
                event["headers"].as_object_mut().unwrap().remove("authorization");
            }
        }
        if route == Route::PaymentWebhook {
            // A real signature over the sample's body, made now.
            let body = event["body"].as_str().unwrap().to_owned();
            event["headers"]["grants-signature"] =
                json!(payments::sign(&self.secret, SystemClock.now(), body.as_bytes()));
        }
        if route == Route::StripeWebhook {
            // As Stripe signs: the same scheme, with the tenant's Stripe webhook secret.
            let body = event["body"].as_str().unwrap().to_owned();
            event["headers"]["stripe-signature"] =
                json!(payments::sign(&self.stripe_secret, SystemClock.now(), body.as_bytes()));
        }
        lambda_http::request::from_str(&event.to_string()).unwrap_or_else(|e| panic!("{}: {e}", route.function()))
    }
}

/// Every route, with the ones that end objects last: cancel after everything that needs the
/// entitlement active, deletes after resell and update.
pub fn routes_in_safe_order() -> Vec<Route> {
    let mut routes: Vec<Route> = Route::ALL.to_vec();
    routes.sort_by_key(|r| {
        (
            *r == Route::CancelEntitlement,
            matches!(r, Route::DeleteCapacityGrant | Route::FlexpriceDeleteCreditGrant),
        )
    });
    routes
}

#[tokio::test]
async fn every_http_sample_event_is_accepted_by_its_handler() {
    let t = spawn_app_with_queues().await;
    let objects = SampleObjects::create(&t).await;
    for route in routes_in_safe_order() {
        let response = grants_lambda::handle_event(&t.app, route, objects.event(&t, route, Some(&t.admin_key))).await;
        let status = response.status();
        // The sample objects enabled the tenant's webhooks (the Svix samples need its application):
        // enabling them again is the documented 400.
        let expected_ok = status.is_success()
            || (matches!(route, Route::SandboxCheckoutAction | Route::WebhookPortalAction)
                && status == StatusCode::SEE_OTHER)
            || (route == Route::EnableWebhooks && status == StatusCode::BAD_REQUEST)
            // This app's provider is the sandbox: the Stripe page is not served (tests/api/stripe.rs
            // serves it under Stripe).
            || (route == Route::StripePaymentPage && status == StatusCode::NOT_FOUND);
        assert!(expected_ok, "{}: {status} {:?}", route.function(), response.body());
        if matches!(
            route,
            Route::CreateGrant
                | Route::CreateEntitlement
                | Route::PurchaseGrant
                | Route::RecordUsage
                | Route::CreateCreditType
                | Route::CreateCapacityGrant
                | Route::FlexpriceCreateCreditGrant
        ) {
            assert_eq!(status, StatusCode::CREATED);
        }
    }
}

#[tokio::test]
async fn the_sqs_and_schedule_samples_drive_fulfilment_and_expiry() {
    let t = spawn_app_with_queues().await;
    let ent = t.entitlement().await;
    let a = t
        .purchase(&ent, json!({"amount": 1000, "price": "5.00", "idempotencyKey": "a"}))
        .await;
    let b = t
        .purchase(&ent, json!({"amount": 1000, "price": "5.00", "idempotencyKey": "b"}))
        .await;
    let run = |name: &str, purchase: &Value| {
        let (inv, ps) = ids(purchase);
        let text = sample(name)
            .replace(SAMPLE_INVOICE, &inv)
            .replace(SAMPLE_SESSION, &ps)
            .replace(SAMPLE_TENANT, t.tenant.as_str());
        let event: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_str(&text).unwrap();
        let app = std::sync::Arc::clone(&t.app);
        async move { grants_lambda::handle_sqs_event(&app, event).await }
    };
    let failures = |r: aws_lambda_events::event::sqs::SqsBatchResponse| -> Vec<String> {
        r.batch_item_failures.into_iter().map(|f| f.item_identifier).collect()
    };
    assert!(failures(run("fulfil-payments", &a).await).is_empty());
    assert_eq!(t.all_grants(&ent).await.len(), 1);
    assert!(failures(run("fulfil-payments-duplicate", &a).await).is_empty());
    assert_eq!(t.all_grants(&ent).await.len(), 1, "duplicates make no second grant");
    assert!(failures(run("fulfil-payments-expired", &b).await).is_empty());
    assert_eq!(t.invoice(&ids(&b).0).await["status"], "CANCELLED");
    assert_eq!(
        failures(run("fulfil-payments-poison", &a).await),
        vec!["11111111-0000-4000-8000-000000000005".to_owned()]
    );

    let _schedule: Value = serde_json::from_str(&sample("expire-payment-sessions")).unwrap();
    let out = grants_lambda::handle_expiry(&t.app).await.unwrap();
    assert!(out["canceled"].is_u64());
    let _schedule: Value = serde_json::from_str(&sample("run-credit-schedules")).unwrap();
    let out = grants_lambda::handle_credit_schedules(&t.app).await.unwrap();
    assert!(out["periodsReset"].is_u64() && out["grantsApplied"].is_u64());
}

#[test]
fn the_catch_all_sample_is_a_json_404() {
    let text = sample("not-found");
    let response = grants_lambda::not_found_event(&lambda_http::request::from_str(&text).unwrap());
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let lambda_http::Body::Text(body) = response.body() else {
        panic!("text body")
    };
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["code"], "route_not_found");
    assert!(body["message"].as_str().unwrap().contains("/v1/no-such-thing"));
}
