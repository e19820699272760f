//! Fault injection: a proxy in front of DynamoDB Local answers a share of calls with throttling,
//! a 500, or a lost response (the call applied, the answer replaced by a 500, as when a connection
//! drops after DynamoDB committed), and can cut one write off mid-flight, as a Lambda killed by its
//! timeout is. Whatever is injected, every request ends in its normal answer or a clean 503, no
//! write is partial, a retry with the same key finds exactly one object, and fulfilment still
//! makes exactly one grant per paid invoice.
use crate::helpers::{spawn_app_with_queues, TestApp};
use bytes::Bytes;
use grants_domain::payments::PaymentEventKind;
use grants_dynamo::DynamoStore;
use grants_http::fulfilment::{process_batch, Message};
use grants_lambda::App;
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the proxy does to the next write (a TransactWriteItems, PutItem or UpdateItem).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Cut {
    None,
    /// The write never reaches DynamoDB; its caller waits, then gets a 500.
    Before(Duration),
    /// The write is applied; its answer is held back this long.
    After(Duration),
}

#[derive(Default)]
struct Injected {
    throttled: AtomicU64,
    server_errors: AtomicU64,
    lost_responses: AtomicU64,
}

struct Plan {
    percent: AtomicU32,
    seq: AtomicU64,
    cut: Mutex<Cut>,
    injected: Injected,
}

struct FaultProxy {
    endpoint: String,
    plan: Arc<Plan>,
}

/// splitmix64: the same sequence of faults on every run.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn dynamo_error(status: u16, kind: &str) -> hyper::Response<Full<Bytes>> {
    let body =
        json!({"__type": format!("com.amazonaws.dynamodb.v20120810#{kind}"), "message": "injected by the test proxy"});
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amzn-requestid", "injected")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

async fn relay(
    upstream: &Client<HttpConnector, Full<Bytes>>,
    base: &str,
    parts: &http::request::Parts,
    body: Bytes,
) -> Result<hyper::Response<Full<Bytes>>, String> {
    let uri = format!(
        "{base}{}",
        parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    );
    let mut req = hyper::Request::builder().method(parts.method.clone()).uri(uri);
    for (k, v) in &parts.headers {
        req = req.header(k, v);
    }
    let response = upstream
        .request(req.body(Full::new(body)).map_err(|e| e.to_string())?)
        .await
        .map_err(|e| e.to_string())?;
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(hyper::Response::from_parts(parts, Full::new(bytes)))
}

async fn handle(
    plan: Arc<Plan>,
    upstream: Client<HttpConnector, Full<Bytes>>,
    base: String,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, String> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let is_write = ["TransactWriteItems", "PutItem", "UpdateItem"]
        .iter()
        .any(|w| target.ends_with(w));
    let cut = if is_write {
        std::mem::replace(&mut *plan.cut.lock().unwrap(), Cut::None)
    } else {
        Cut::None
    };
    match cut {
        Cut::Before(hold) => {
            tokio::time::sleep(hold).await;
            return Ok(dynamo_error(500, "InternalServerError"));
        }
        Cut::After(hold) => {
            let response = relay(&upstream, &base, &parts, body).await?;
            tokio::time::sleep(hold).await;
            return Ok(response);
        }
        Cut::None => {}
    }
    let n = plan.seq.fetch_add(1, Ordering::SeqCst);
    let roll = mix(n) % 100;
    if roll >= u64::from(plan.percent.load(Ordering::SeqCst)) {
        return relay(&upstream, &base, &parts, body).await;
    }
    match mix(n ^ 0xA5A5) % 3 {
        0 => {
            plan.injected.throttled.fetch_add(1, Ordering::SeqCst);
            Ok(dynamo_error(400, "ThrottlingException"))
        }
        1 => {
            plan.injected.server_errors.fetch_add(1, Ordering::SeqCst);
            Ok(dynamo_error(500, "InternalServerError"))
        }
        _ => {
            plan.injected.lost_responses.fetch_add(1, Ordering::SeqCst);
            relay(&upstream, &base, &parts, body).await?;
            Ok(dynamo_error(500, "InternalServerError"))
        }
    }
}

impl FaultProxy {
    async fn start(percent: u32) -> Self {
        crate::helpers::use_local_stack();
        let base = std::env::var("AWS_ENDPOINT_URL_DYNAMODB")
            .expect("DynamoDB Local endpoint")
            .trim_end_matches('/')
            .to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let plan = Arc::new(Plan {
            percent: AtomicU32::new(percent),
            seq: AtomicU64::new(0),
            cut: Mutex::new(Cut::None),
            injected: Injected::default(),
        });
        let upstream: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let shared_plan = Arc::clone(&plan);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (plan, upstream, base) = (Arc::clone(&shared_plan), upstream.clone(), base.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        handle(Arc::clone(&plan), upstream.clone(), base.clone(), req)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { endpoint, plan }
    }

    fn set_percent(&self, percent: u32) {
        self.plan.percent.store(percent, Ordering::SeqCst);
    }

    fn cut_next_write(&self, cut: Cut) {
        *self.plan.cut.lock().unwrap() = cut;
    }

    fn injected(&self) -> (u64, u64, u64) {
        let i = &self.plan.injected;
        (
            i.throttled.load(Ordering::SeqCst),
            i.server_errors.load(Ordering::SeqCst),
            i.lost_responses.load(Ordering::SeqCst),
        )
    }
}

impl TestApp {
    /// The same tenant, keys, clock and queues, with its store talking to DynamoDB through `proxy`.
    async fn through(&self, proxy: &FaultProxy) -> TestApp {
        let config = grants_lambda::config::sdk_config().await;
        let conf = aws_sdk_dynamodb::config::Builder::from(&config)
            .endpoint_url(&proxy.endpoint)
            .build();
        let store = DynamoStore::new(
            aws_sdk_dynamodb::Client::from_conf(conf),
            grants_lambda::config::table_name(),
        );
        let app = App::new(Arc::new(store), Arc::clone(&self.app.clock))
            .with_queues(
                Arc::clone(&self.app.payment_events),
                Arc::clone(&self.app.invoice_events),
            )
            .with_provider(Arc::clone(&self.app.payments))
            .with_public_base_url(self.app.public_base_url.clone())
            .with_secrets(Arc::clone(&self.app.secrets));
        TestApp {
            app: Arc::new(app),
            admin_key: self.admin_key.clone(),
            member_key: self.member_key.clone(),
            tenant: self.tenant.clone(),
            queues: None,
            deliveries: self.deliveries.clone(),
            round_trips: self.round_trips.clone(),
        }
    }
}

/// A response under faults: its normal answer, or a clean 503 that says to retry.
fn normal_or_unavailable(r: &crate::helpers::TestResponse, normal: StatusCode, what: &str) -> bool {
    if r.status == normal {
        return true;
    }
    assert_eq!(
        r.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{what}: {} {}",
        r.status,
        r.body
    );
    assert!(r.body["message"].is_string(), "{what}: a JSON error: {}", r.body);
    false
}

#[tokio::test]
async fn under_injected_faults_requests_succeed_or_fail_cleanly_and_nothing_is_partial() {
    let t = spawn_app_with_queues().await;
    let proxy = FaultProxy::start(30).await;
    let faulty = t.through(&proxy).await;
    let ent = t.entitlement().await;

    let mut created: HashMap<String, String> = HashMap::new();
    for i in 0..30 {
        let r = faulty
            .post(
                &format!("/v1/entitlements/{ent}/grants"),
                json!({"amount": 10, "idempotencyKey": format!("g{i}")}),
            )
            .await;
        if normal_or_unavailable(&r, StatusCode::CREATED, "create grant") {
            created.insert(format!("g{i}"), r.body["id"].as_str().unwrap().to_owned());
        }
    }
    let mut recorded = 0;
    for i in 0..30 {
        let r = faulty
            .post(
                &format!("/v1/entitlements/{ent}/usage"),
                json!({"eventId": format!("u{i}"), "amount": 3}),
            )
            .await;
        if normal_or_unavailable(&r, StatusCode::CREATED, "usage") {
            recorded += 1;
        }
    }
    let (throttled, server_errors, lost) = proxy.injected();
    assert!(
        throttled > 0 && server_errors > 0 && lost > 0,
        "faults of every kind were injected: {:?}",
        proxy.injected()
    );
    assert!(
        !created.is_empty() && recorded > 0,
        "some requests got through the SDK's retries"
    );

    // What a failed request left: at most its whole object, never a part; every 201 is there once.
    let grants = t.all_grants(&ent).await;
    let mut keys = HashSet::new();
    for g in &grants {
        assert!(
            keys.insert(g["idempotencyKey"].as_str().unwrap().to_owned()),
            "one grant per key: {g}"
        );
    }
    for (key, id) in &created {
        assert!(
            grants
                .iter()
                .any(|g| g["id"] == json!(id) && g["idempotencyKey"] == json!(key)),
            "{key} is stored as answered"
        );
    }
    // The clients retry everything with the same keys, without faults: all of it exactly once.
    proxy.set_percent(0);
    for i in 0..30 {
        let r = faulty
            .post(
                &format!("/v1/entitlements/{ent}/grants"),
                json!({"amount": 10, "idempotencyKey": format!("g{i}")}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        if let Some(id) = created.get(&format!("g{i}")) {
            assert_eq!(r.body["id"], json!(id), "a retry answers the grant first created");
        }
    }
    for i in 0..30 {
        let r = faulty
            .post(
                &format!("/v1/entitlements/{ent}/usage"),
                json!({"eventId": format!("u{i}"), "amount": 3}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    assert_eq!(t.all_grants(&ent).await.len(), 30);
    let e = t.get(&format!("/v1/entitlements/{ent}")).await.body;
    assert_eq!(e["usageInPeriod"], json!(90), "every event counted once: {e}");
    let b = t.get(&format!("/v1/entitlements/{ent}/balance")).await.body;
    assert_eq!(
        b["balance"],
        json!(210),
        "grants' remainders agree with the counters: {b}"
    );
}

#[tokio::test]
async fn fulfilment_under_injected_faults_makes_exactly_one_grant_per_paid_invoice() {
    let t = spawn_app_with_queues().await;
    let proxy = FaultProxy::start(30).await;
    let faulty = t.through(&proxy).await;
    let ent = t.entitlement().await;
    let mut messages = Vec::new();
    let mut invoices = Vec::new();
    for i in 0..8 {
        let purchase = t
            .purchase(
                &ent,
                json!({"amount": 100, "price": "5.00", "idempotencyKey": format!("p{i}")}),
            )
            .await;
        invoices.push(purchase["invoiceId"].as_str().unwrap().to_owned());
        let body = grants_http::payment_events::encode(&t.event_for(&purchase, PaymentEventKind::Paid));
        // Each event delivered twice, as a provider retrying its webhook does.
        messages.push(Message {
            id: format!("m{i}a"),
            body: body.clone(),
        });
        messages.push(Message {
            id: format!("m{i}b"),
            body,
        });
    }
    // SQS redelivers what failed until it succeeds (the queue's maxReceiveCount is 5; here, 20).
    let mut pending = messages;
    for _ in 0..20 {
        if pending.is_empty() {
            break;
        }
        let failed: HashSet<String> = process_batch(&faulty.app, pending.clone()).await.into_iter().collect();
        pending.retain(|m| failed.contains(&m.id));
    }
    assert!(pending.is_empty(), "every message succeeded within 20 deliveries");
    assert!(proxy.injected().0 + proxy.injected().1 + proxy.injected().2 > 0);

    let grants = t.all_grants(&ent).await;
    assert_eq!(grants.len(), 8, "exactly one grant per paid invoice");
    for id in &invoices {
        let inv = t.invoice(id).await;
        assert_eq!(inv["status"], "PAID", "{inv}");
        assert!(
            grants.iter().any(|g| g["id"] == inv["grantId"]),
            "the invoice names its grant"
        );
    }
}

/// One create of each surface, by its idempotency key, and how to count what it made.
async fn create_once(t: &TestApp, route: &str, key: &str, ent: &str) -> crate::helpers::TestResponse {
    match route {
        "create-grant" => {
            t.post(
                &format!("/v1/entitlements/{ent}/grants"),
                json!({"amount": 5, "idempotencyKey": key}),
            )
            .await
        }
        "record-usage" => {
            t.post(
                &format!("/v1/entitlements/{ent}/usage"),
                json!({"eventId": key, "amount": 1}),
            )
            .await
        }
        "purchase-grant" => {
            t.post(
                &format!("/v1/entitlements/{ent}/grants/purchase"),
                json!({"amount": 10, "price": "1.00", "idempotencyKey": key}),
            )
            .await
        }
        "create-capacity-grant" => {
            let body = json!({"kind": "gpu", "cluster": "c1", "quantity": 1, "ends_at": "2099-01-01T00:00:00Z", "unit_price": "1",
                "early_termination_buyback_price": "1", "flexible_usage_buyback_price": "1"});
            t.raw_with(
                Method::POST,
                "/v2/grants",
                crate::helpers::Key::Bearer(&t.admin_key),
                body.to_string().as_bytes(),
                &[("idempotency-key", key)],
            )
            .await
        }
        "flexprice-create-credit-grant" => {
            let body = json!({"name": key, "scope": "PLAN", "plan_id": format!("plan_{key}"), "credits": "5", "cadence": "ONETIME"});
            t.raw_with(
                Method::POST,
                "/v1/creditgrants",
                crate::helpers::Key::Bearer(&t.admin_key),
                body.to_string().as_bytes(),
                &[("idempotency-key", key)],
            )
            .await
        }
        other => panic!("{other}"),
    }
}

async fn count_made(t: &TestApp, route: &str, ent: &str) -> usize {
    let list = |v: &Value, field: &str| v[field].as_array().map(Vec::len).unwrap_or(0);
    match route {
        "create-grant" => t.all_grants(ent).await.len(),
        "record-usage" => usize::try_from(
            t.get(&format!("/v1/entitlements/{ent}")).await.body["usageInPeriod"]
                .as_u64()
                .unwrap(),
        )
        .unwrap(),
        // Invoices have no list: the retries below must answer the same invoice instead.
        "purchase-grant" => 0,
        "create-capacity-grant" => list(&t.get("/v2/grants?show_expired=true").await.body, "items"),
        "flexprice-create-credit-grant" => usize::try_from(
            t.get("/v1/creditgrants").await.body["pagination"]["total"]
                .as_u64()
                .unwrap(),
        )
        .unwrap(),
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn a_create_cut_off_mid_flight_and_retried_makes_one_object_and_leaves_no_stuck_claim() {
    let proxy = FaultProxy::start(0).await;
    let routes = [
        "create-grant",
        "record-usage",
        "purchase-grant",
        "create-capacity-grant",
        "flexprice-create-credit-grant",
    ];
    for cut in [
        Cut::Before(Duration::from_millis(600)),
        Cut::After(Duration::from_millis(600)),
    ] {
        for route in routes {
            // A tenant of its own per case, so counts are this case's alone.
            let t = spawn_app_with_queues().await;
            let ent = t.entitlement().await;
            let faulty = t.through(&proxy).await;
            let before = count_made(&t, route, &ent).await;
            proxy.cut_next_write(cut);
            // The Lambda's timeout: the invocation is abandoned mid-request.
            let abandoned =
                tokio::time::timeout(Duration::from_millis(300), create_once(&faulty, route, "k1", &ent)).await;
            assert!(abandoned.is_err(), "{route} {cut:?}: the request was cut off");
            tokio::time::sleep(Duration::from_millis(500)).await;
            // The client retries with the same key: one object, and the key is not stuck.
            let first = create_once(&t, route, "k1", &ent).await;
            assert_eq!(first.status, StatusCode::CREATED, "{route} {cut:?}: {}", first.body);
            let again = create_once(&t, route, "k1", &ent).await;
            assert_eq!(again.status, StatusCode::CREATED, "{route} {cut:?}: {}", again.body);
            let id = |r: &crate::helpers::TestResponse| {
                r.body
                    .get("invoiceId")
                    .or(r.body.get("id"))
                    .or(r.body.get("fid"))
                    .cloned()
            };
            assert_eq!(id(&first), id(&again), "{route} {cut:?}: the replay is the same object");
            if route != "purchase-grant" {
                assert_eq!(
                    count_made(&t, route, &ent).await,
                    before + 1,
                    "{route} {cut:?}: exactly one object"
                );
            }
        }
    }
}
