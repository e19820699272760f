//! Spawn-style helpers: every test gets its own tenant (admin + member keys) on the one local
//! DynamoDB table, so tests run in parallel without seeing each other.
use grants_dev_tools::admin;
use grants_dev_tools::local::{self, Invoker, SqsBridge, SqsMapping};
use grants_domain::messaging::{MessageQueue, QueueError};
use grants_domain::model::Role;
use grants_domain::payments::{self, PaymentEvent, PaymentEventKind, SIGNATURE_HEADER};
use grants_domain::{Clock, SystemClock, TenantId, Timestamp};
use grants_dynamo::round_trips::RoundTrips;
use grants_dynamo::DynamoStore;
use grants_http::providers::{self, SandboxProvider};
use grants_http::{dispatch, not_found_route, ApiRequest, Route};
use grants_lambda::queue::SqsQueue;
use grants_lambda::App;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Points the AWS SDK at the local stack `make test` started (its env file), unless the
/// environment already says where it is.
pub fn use_local_stack() {
    if std::env::var_os("AWS_ENDPOINT_URL_DYNAMODB").is_some() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found = [".local/test/stack.env", admin::LOCAL_STACK_ENV]
        .iter()
        .any(|f| admin::load_env_file(&root.join(f)));
    assert!(
        found,
        "no local stack: run the tests with `make test` (it starts DynamoDB Local)"
    );
}

pub fn template() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("template.yaml")).expect("template.yaml")
}

pub async fn store() -> DynamoStore {
    use_local_stack();
    let store = grants_lambda::config::store_from_env().await;
    admin::create_table_from_template(store.client(), &template(), store.table())
        .await
        .expect("create table");
    store
}

pub struct TestApp {
    pub app: Arc<App>,
    pub admin_key: String,
    pub member_key: String,
    pub tenant: TenantId,
    /// This test's own SQS queues (payment events, its DLQ, invoice events), when it asked for them.
    pub queues: Option<TestQueues>,
    /// Payment events put on the payment-events queue when the app has no SQS queues (the
    /// sandbox checkout's, and verified webhooks').
    pub deliveries: Arc<CapturedDeliveries>,
    /// Every DynamoDB request this app's store made (see `round_trips.rs`).
    pub round_trips: RoundTrips,
}

/// Per-test queues on the local SQS server, created from template.yaml with a 1 s visibility
/// timeout so that redelivery and dead-lettering take seconds.
pub struct TestQueues {
    pub sqs: aws_sdk_sqs::Client,
    pub payment_events: String,
    pub dead_letter: String,
    pub invoice_events: String,
}

/// The payment-events queue of an app without SQS queues: records each message.
#[derive(Default)]
pub struct CapturedDeliveries(pub Mutex<Vec<String>>);

#[async_trait::async_trait]
impl MessageQueue for CapturedDeliveries {
    async fn send(&self, body: String) -> Result<(), QueueError> {
        self.0.lock().unwrap().push(body);
        Ok(())
    }
}

/// Where the tests' apps say they are reachable (`PUBLIC_BASE_URL`).
pub const TEST_BASE_URL: &str = "http://grants.test";

/// A clock the test moves by hand.
pub struct TestClock(pub Mutex<Timestamp>);

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
    }
}

impl TestClock {
    pub fn advance(&self, seconds: i64) {
        let mut t = self.0.lock().unwrap();
        *t = t.plus_seconds(seconds).unwrap();
    }
}

pub struct TestResponse {
    pub status: StatusCode,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl TestResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub fn random_suffix() -> String {
    grants_domain::GrantId::generate().as_str()[4..].to_ascii_lowercase()
}

pub async fn spawn_app() -> TestApp {
    spawn_with(Arc::new(SystemClock), false).await
}

/// An app with its own SQS queues (for purchases, webhooks and fulfilment).
pub async fn spawn_app_with_queues() -> TestApp {
    spawn_with(Arc::new(SystemClock), true).await
}

pub async fn spawn_with(clock: Arc<dyn Clock>, with_queues: bool) -> TestApp {
    spawn_keeping_keys(clock, with_queues, grants_domain::auth::KeyCache::default()).await
}

/// As [`spawn_with`], with this key cache (round-trip counts keep keys for the whole test).
pub async fn spawn_keeping_keys(
    clock: Arc<dyn Clock>,
    with_queues: bool,
    keys: grants_domain::auth::KeyCache,
) -> TestApp {
    spawn_full(clock, with_queues, keys, Arc::new(SandboxProvider)).await
}

/// The local Stripe server (`LOCALSTRIPE_URL` in the stack's env file).
pub fn localstripe_url() -> String {
    use_local_stack();
    std::env::var("LOCALSTRIPE_URL").expect("LOCALSTRIPE_URL: the local stack starts the local Stripe server")
}

/// An app whose provider is Stripe (the local Stripe server), with its own queues, and whose
/// tenant has Stripe test keys in Secrets Manager (returned).
pub async fn spawn_stripe(clock: Arc<dyn Clock>) -> (TestApp, grants_domain::secrets::StripeKeys) {
    let secrets = Arc::new(grants_lambda::config::secrets(
        &grants_lambda::config::sdk_config().await,
    ));
    let provider = grants_lambda::stripe::StripeProvider::new(localstripe_url(), secrets.clone());
    let t = spawn_full(
        clock,
        true,
        grants_domain::auth::KeyCache::default(),
        Arc::new(provider),
    )
    .await;
    let suffix = random_suffix();
    let keys = grants_domain::secrets::StripeKeys {
        secret_key: format!("sk_test_{suffix}"),
        publishable_key: format!("pk_test_{suffix}"),
        webhook_secret: grants_domain::secrets::new_webhook_secret().unwrap(),
        previous_webhook_secret: None,
        previous_webhook_secret_expires_at: None,
    };
    let keys = secrets.set_stripe(&t.tenant, keys, &SystemClock, 0).await.unwrap();
    (t, keys)
}

pub async fn spawn_full(
    clock: Arc<dyn Clock>,
    with_queues: bool,
    keys: grants_domain::auth::KeyCache,
    provider: Arc<dyn grants_domain::payments::PaymentProvider>,
) -> TestApp {
    let table = store().await.table().to_owned();
    let round_trips = RoundTrips::default();
    let store = DynamoStore::new(round_trips.client(&grants_lambda::config::sdk_config().await), table);
    let tenant = TenantId::parse(&format!("t-{}", random_suffix())).expect("tenant");
    let admin_key = admin::create_key(&store, &tenant, Role::Admin)
        .await
        .expect("admin key");
    let member_key = admin::create_key(&store, &tenant, Role::Member)
        .await
        .expect("member key");
    let deliveries = Arc::new(CapturedDeliveries::default());
    let mut app = App::new(Arc::new(store.clone()), clock)
        .with_provider(provider)
        .with_public_base_url(Some(TEST_BASE_URL.to_owned()))
        .with_secrets(Arc::new(grants_lambda::config::secrets(
            &grants_lambda::config::sdk_config().await,
        )))
        .with_queues(deliveries.clone(), Arc::new(CapturedDeliveries::default()))
        .with_webhook_deliveries(Arc::new(CapturedDeliveries::default()))
        .with_key_cache(keys);
    let mut queues = None;
    if with_queues {
        let sqs = aws_sdk_sqs::Client::new(&grants_lambda::config::sdk_config().await);
        let prefix = format!("q-{}", random_suffix());
        let names = local::QUEUE_ENV
            .iter()
            .map(|(logical, _, default)| ((*logical).to_owned(), format!("{prefix}-{default}")))
            .collect();
        let urls = local::create_queues_from_template(&sqs, &template(), &names, Some(1))
            .await
            .expect("queues");
        let q = TestQueues {
            sqs: sqs.clone(),
            payment_events: urls["PaymentEventsQueue"].clone(),
            dead_letter: urls["PaymentEventsDeadLetterQueue"].clone(),
            invoice_events: urls["InvoiceEventsQueue"].clone(),
        };
        app = app
            .with_queues(
                Arc::new(SqsQueue::new(sqs.clone(), q.payment_events.clone())),
                Arc::new(SqsQueue::new(sqs.clone(), q.invoice_events.clone())),
            )
            .with_webhook_deliveries(Arc::new(SqsQueue::new(sqs, urls["WebhookDeliveriesQueue"].clone())));
        queues = Some(q);
    }
    TestApp {
        app: Arc::new(app),
        admin_key,
        member_key,
        tenant,
        queues,
        deliveries,
        round_trips,
    }
}

/// Invokes the fulfilment function's handler in this process, through the same JSON a Lambda
/// invocation carries.
pub struct InProcess(pub Arc<App>);

#[async_trait::async_trait]
impl Invoker for InProcess {
    async fn invoke(&self, function: &str, payload: Value) -> Result<Value, String> {
        assert_eq!(function, "fulfil-payments");
        let event = serde_json::from_value(payload).map_err(|e| e.to_string())?;
        let response = grants_lambda::handle_sqs_event(&self.0, event).await;
        serde_json::to_value(response).map_err(|e| e.to_string())
    }
}

/// How a test authenticates a request.
#[derive(Clone, Copy)]
pub enum Key<'a> {
    None,
    Bearer(&'a str),
    ApiKeyHeader(&'a str),
}

impl TestApp {
    pub async fn raw(&self, method: Method, path_and_query: &str, key: Key<'_>, body: &[u8]) -> TestResponse {
        self.raw_with(method, path_and_query, key, body, &[]).await
    }

    /// Any request, with extra headers; the body may be anything (HTML pages come back as a string).
    pub async fn raw_with(
        &self,
        method: Method,
        path_and_query: &str,
        key: Key<'_>,
        body: &[u8],
        extra_headers: &[(&str, &str)],
    ) -> TestResponse {
        let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
        let query = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect();
        let mut headers = HeaderMap::new();
        match key {
            Key::None => {}
            Key::Bearer(k) => {
                headers.insert(
                    "authorization",
                    HeaderValue::from_str(&format!("Bearer {k}")).expect("header"),
                );
            }
            Key::ApiKeyHeader(k) => {
                headers.insert("x-api-key", HeaderValue::from_str(k).expect("header"));
            }
        }
        for (k, v) in extra_headers {
            headers.insert(
                http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        headers.entry("host").or_insert(HeaderValue::from_static("grants.test"));
        let req = ApiRequest {
            method: method.clone(),
            path: path.to_owned(),
            query,
            headers,
            body: bytes::Bytes::copy_from_slice(body),
            request_id: "test".to_owned(),
            ..ApiRequest::default()
        };
        let response = match Route::resolve(&method, path) {
            Some((route, params)) => {
                dispatch(
                    &self.app,
                    route,
                    ApiRequest {
                        path_params: params,
                        ..req
                    },
                )
                .await
            }
            None => not_found_route(&method, path),
        };
        let is_json = response
            .headers
            .iter()
            .any(|(k, v)| k == "content-type" && v.starts_with("application/json"));
        let body = if response.body.is_empty() {
            Value::Null
        } else if is_json {
            serde_json::from_str(&response.body).expect("JSON responses parse")
        } else {
            Value::String(response.body.clone())
        };
        TestResponse {
            status: response.status,
            headers: response.headers,
            body,
        }
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> TestResponse {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        self.raw(method, path, Key::Bearer(&self.admin_key), &bytes).await
    }
    pub async fn get(&self, path: &str) -> TestResponse {
        self.call(Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> TestResponse {
        self.call(Method::POST, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> TestResponse {
        self.call(Method::DELETE, path, None).await
    }

    /// An active entitlement for a fresh customer; returns its id.
    pub async fn entitlement(&self) -> String {
        self.entitlement_with(json!({})).await
    }

    pub async fn entitlement_with(&self, extra: Value) -> String {
        let mut body = json!({ "customerId": format!("cus_{}", random_suffix()), "featureKey": "api_calls" });
        if let (Some(b), Value::Object(extra)) = (body.as_object_mut(), extra) {
            b.extend(extra);
        }
        let r = self.post("/v1/entitlements", body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["id"].as_str().expect("id").to_owned()
    }

    /// Every grant of the entitlement, voided included.
    pub async fn all_grants(&self, entitlement: &str) -> Vec<Value> {
        let r = self
            .get(&format!(
                "/v1/entitlements/{entitlement}/grants?includeVoided=true&limit=100"
            ))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body["data"].as_array().cloned().unwrap_or_default()
    }
}

impl TestApp {
    /// The same tenant and keys served by another execution environment: its own DynamoDB client
    /// and process state (key cache, busy hints, lines of usage requests), as a second Lambda
    /// execution environment has.
    pub async fn another_environment(&self) -> TestApp {
        let round_trips = RoundTrips::default();
        let client = round_trips.client(&grants_lambda::config::sdk_config().await);
        let store = DynamoStore::new(client, self.app.store.table());
        TestApp {
            app: Arc::new(App::new(Arc::new(store), Arc::new(SystemClock))),
            admin_key: self.admin_key.clone(),
            member_key: self.member_key.clone(),
            tenant: self.tenant.clone(),
            queues: None,
            deliveries: Arc::new(CapturedDeliveries::default()),
            round_trips,
        }
    }

    pub fn queues(&self) -> &TestQueues {
        self.queues.as_ref().expect("spawned with queues")
    }

    /// A purchase on `ent`; returns the GrantPurchase body.
    pub async fn purchase(&self, ent: &str, body: Value) -> Value {
        let r = self
            .post(&format!("/v1/entitlements/{ent}/grants/purchase"), body)
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body
    }

    pub async fn invoice(&self, id: &str) -> Value {
        let r = self.get(&format!("/v2/invoices/{id}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body
    }

    /// A payment event for a purchase, as the sandbox would emit it.
    pub fn event_for(&self, purchase: &Value, kind: PaymentEventKind) -> PaymentEvent {
        let url = purchase["paymentSessions"][0]["url"].as_str().unwrap();
        PaymentEvent {
            id: providers::sandbox_event_id(),
            kind,
            tenant: self.tenant.clone(),
            invoice_id: grants_domain::InvoiceId::parse(purchase["invoiceId"].as_str().unwrap()).unwrap(),
            session_id: grants_domain::SessionId::parse(url.rsplit('/').next().unwrap()).unwrap(),
            amount_minor: purchase["paymentSessions"][0]["amount"].as_i64().unwrap(),
            currency: grants_domain::money::Currency::parse(purchase["currency"].as_str().unwrap()).unwrap(),
            occurred_at: self.app.clock.now(),
            failure: None,
        }
    }

    /// The tenant's current webhook secret (created in Secrets Manager on first use).
    pub async fn webhook_secret(&self) -> String {
        self.app.secrets.ensure_webhook(&self.tenant).await.unwrap().current
    }

    /// POSTs a body to the webhook route with a signature header (None: no header).
    pub async fn webhook(&self, body: &str, signature: Option<&str>) -> TestResponse {
        let headers: Vec<(&str, &str)> = signature.map(|s| (SIGNATURE_HEADER, s)).into_iter().collect();
        self.raw_with(
            Method::POST,
            "/v1/webhooks/payments",
            Key::None,
            body.as_bytes(),
            &headers,
        )
        .await
    }

    /// Signs an event with the tenant's secret (at the app's now) and delivers it to the webhook.
    pub async fn deliver(&self, event: &PaymentEvent) -> TestResponse {
        let body = grants_http::payment_events::encode(event);
        let signature = payments::sign(&self.webhook_secret().await, self.app.clock.now(), body.as_bytes());
        self.webhook(&body, Some(&signature)).await
    }

    pub async fn bridge(&self) -> SqsBridge {
        let q = self.queues();
        let mapping = local::sqs_mappings(&template())
            .unwrap()
            .into_iter()
            .find(|m| m.function == "fulfil-payments")
            .unwrap();
        SqsBridge {
            sqs: q.sqs.clone(),
            queue_arn: local::queue_arn(&q.sqs, &q.payment_events).await.unwrap(),
            queue_url: q.payment_events.clone(),
            region: "us-east-1".to_owned(),
            mapping: SqsMapping { ..mapping },
            wait_seconds: 1,
        }
    }

    /// Runs `pollers` bridges at once until the payment-events queue is empty (failed messages
    /// come back after 1 s and, past maxReceiveCount, move to the DLQ).
    pub async fn drain(&self, pollers: usize) {
        let bridge = Arc::new(self.bridge().await);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let tasks: Vec<_> = (0..pollers)
                .map(|_| {
                    let (bridge, app) = (Arc::clone(&bridge), Arc::clone(&self.app));
                    tokio::spawn(async move { bridge.poll_once(&InProcess(app)).await.unwrap() })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
            if bridge.backlog().await.unwrap() == 0 {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "payment-events queue did not drain"
            );
        }
    }

    /// Receives (and deletes) every message on a queue.
    pub async fn take_all(&self, url: &str) -> Vec<String> {
        let sqs = &self.queues().sqs;
        let mut out = Vec::new();
        loop {
            let r = sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .send()
                .await
                .unwrap();
            let messages = r.messages.unwrap_or_default();
            if messages.is_empty() {
                return out;
            }
            for m in messages {
                sqs.delete_message()
                    .queue_url(url)
                    .receipt_handle(m.receipt_handle.unwrap())
                    .send()
                    .await
                    .unwrap();
                out.push(m.body.unwrap_or_default());
            }
        }
    }

    pub async fn depth(&self, url: &str) -> u64 {
        local::queue_depth(&self.queues().sqs, url).await.unwrap()
    }
}

pub fn now_plus(seconds: i64) -> Timestamp {
    SystemClock.now().plus_seconds(seconds).unwrap()
}
