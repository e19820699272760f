//! The webhook functions (issue 17, item 5):
//!
//! - `dispatch-webhooks` reads the table's stream (inserted `webhook_message` items, the outbox)
//!   and queues one delivery job per subscribed endpoint on the webhook-deliveries queue;
//! - `deliver-webhooks` consumes that queue: one attempt per job. A failed attempt that has another
//!   due sets the message's visibility timeout to the schedule's wait (at most 10 h, within SQS's
//!   12 h) and reports the message failed, so SQS itself holds it until the next attempt; the
//!   attempt number is SQS's receive count.
//!
//! [`HttpSender`] is the outbound HTTP client: it resolves the endpoint's host itself, refuses any
//! address [`check_address`] refuses, connects only to the addresses it checked, follows no
//! redirect and gives up after [`ATTEMPT_TIMEOUT`].
use crate::config;
use crate::queue::SqsQueue;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use bytes::Bytes;
use grants_domain::messaging::MessageQueue;
use grants_domain::webhook_delivery::{
    self, check_address, check_scheme, Deliverer, DeliveryJob, Outcome, Posted, Reach, WebhookSender, ATTEMPT_TIMEOUT,
    RESPONSE_KEPT_BYTES,
};
use grants_domain::webhook_messages::{MessageId, WebhookMessage};
use grants_domain::{SystemClock, TenantId, Timestamp};
use grants_dynamo::DynamoStore;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use lambda_runtime::LambdaEvent;
use serde_json::{json, Value};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tracing::Instrument;

// ---- dispatch ----------------------------------------------------------------------------------

/// Runs `dispatch-webhooks` on the table's stream.
pub async fn serve_dispatch() -> Result<(), lambda_runtime::Error> {
    crate::telemetry::init();
    let sdk = config::function_sdk_config();
    let store = Arc::new(DynamoStore::from_config(&sdk, config::table_name()));
    let queue: Arc<dyn MessageQueue> = Arc::new(SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), deliveries_queue()?));
    lambda_runtime::run(lambda_runtime::service_fn(move |event: LambdaEvent<Value>| {
        let (store, queue) = (Arc::clone(&store), Arc::clone(&queue));
        let span = tracing::info_span!("webhook_dispatch", request_id = %event.context.request_id);
        async move {
            Ok::<_, std::convert::Infallible>(handle_stream_event(store.as_ref(), queue.as_ref(), &event.payload).await)
        }
        .instrument(span)
    }))
    .await
}

fn deliveries_queue() -> Result<String, lambda_runtime::Error> {
    std::env::var(config::WEBHOOK_DELIVERIES_QUEUE)
        .map_err(|_| format!("{} is not set", config::WEBHOOK_DELIVERIES_QUEUE).into())
}

/// One batch of stream records: every inserted message is dispatched, in order. On a failure the
/// batch reports that record's sequence number, so the stream resumes from it (the records before
/// it are not dispatched again).
pub async fn handle_stream_event(store: &DynamoStore, queue: &dyn MessageQueue, event: &Value) -> Value {
    let records = event
        .get("Records")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for record in &records {
        let Some(message) = message_of(record) else {
            continue;
        };
        match webhook_delivery::dispatch(store, queue, &message).await {
            Ok(queued) => {
                tracing::info!(message = %message.id, tenant = %message.tenant, event_type = %message.event_type, queued, "webhook message dispatched");
            }
            Err(e) => {
                let sequence = record
                    .pointer("/dynamodb/SequenceNumber")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                tracing::warn!(message = %message.id, error = %e, "webhook dispatch failed; the stream retries from this record");
                return json!({ "batchItemFailures": [{ "itemIdentifier": sequence }] });
            }
        }
    }
    json!({ "batchItemFailures": [] })
}

/// The message of an `INSERT` record of a `webhook_message` item (None for any other record).
pub fn message_of(record: &Value) -> Option<WebhookMessage> {
    if record.get("eventName").and_then(Value::as_str) != Some("INSERT") {
        return None;
    }
    let image = record.pointer("/dynamodb/NewImage")?;
    let text = |k: &str| image.get(k)?.get("S")?.as_str();
    if text("type") != Some(grants_dynamo::schema::MESSAGE_TYPE) {
        return None;
    }
    let parsed = (|| {
        Some(WebhookMessage {
            id: MessageId::parse(text("id")?).ok()?,
            tenant: TenantId::parse(text("tenant")?).ok()?,
            event_type: text("event_type")?.to_owned(),
            payload: text("payload")?.to_owned(),
            created_at: Timestamp::parse(text("created_at")?).ok()?,
        })
    })();
    if parsed.is_none() {
        tracing::error!(record = %record, "malformed webhook message in the stream; skipped");
    }
    parsed
}

// ---- delivery ----------------------------------------------------------------------------------

/// What the delivery function holds across invocations.
pub struct Delivery {
    pub store: Arc<DynamoStore>,
    pub sqs: aws_sdk_sqs::Client,
    pub sender: Arc<dyn WebhookSender>,
    pub schedule: Vec<Duration>,
}

/// Runs `deliver-webhooks` on the webhook-deliveries queue.
pub async fn serve_delivery() -> Result<(), lambda_runtime::Error> {
    crate::telemetry::init();
    let sdk = config::function_sdk_config();
    let delivery = Arc::new(Delivery {
        store: Arc::new(DynamoStore::from_config(&sdk, config::table_name())),
        sqs: aws_sdk_sqs::Client::new(&sdk),
        sender: Arc::new(HttpSender::new(config::webhook_reach())),
        schedule: config::webhook_retry_schedule()?,
    });
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), deliveries_queue()?);
    let queue_url = Arc::new(queue.url().await.map_err(|e| e.0)?.to_owned());
    lambda_runtime::run(lambda_runtime::service_fn(move |event: LambdaEvent<SqsEvent>| {
        let (delivery, queue_url) = (Arc::clone(&delivery), Arc::clone(&queue_url));
        let span = tracing::info_span!("webhook_delivery", request_id = %event.context.request_id);
        async move { Ok::<_, std::convert::Infallible>(handle_delivery_batch(&delivery, &queue_url, event.payload).await) }
            .instrument(span)
    }))
    .await
}

/// One SQS batch of delivery jobs, attempted concurrently.
pub async fn handle_delivery_batch(d: &Delivery, queue_url: &str, event: SqsEvent) -> SqsBatchResponse {
    let results = futures::future::join_all(event.records.iter().map(|r| async move {
        let id = r.message_id.clone().unwrap_or_default();
        let keep = deliver_one(d, queue_url, r).await;
        (id, keep)
    }))
    .await;
    let mut response = SqsBatchResponse::default();
    for (id, keep) in results {
        if keep {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}

/// One job; true when the message must stay on the queue (its next attempt is due later, or the
/// attempt could not be recorded).
async fn deliver_one(d: &Delivery, queue_url: &str, record: &aws_lambda_events::event::sqs::SqsMessage) -> bool {
    let body = record.body.as_deref().unwrap_or_default();
    let Ok(job) = DeliveryJob::from_json(body) else {
        tracing::error!(message_id = ?record.message_id, "not a webhook delivery job; dropped");
        return false;
    };
    let attempt = record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|c| c.parse::<u32>().ok())
        .unwrap_or(1);
    let deliverer = Deliverer {
        store: d.store.as_ref(),
        sender: d.sender.as_ref(),
        clock: &SystemClock,
        schedule: &d.schedule,
    };
    let span = (&job.message_id, &job.endpoint_id);
    match webhook_delivery::deliver(&deliverer, &job, attempt).await {
        Ok(Outcome::Delivered) => {
            tracing::info!(message = %span.0, endpoint = %span.1, attempt, "webhook delivered");
            false
        }
        Ok(Outcome::Dropped(why)) => {
            tracing::info!(message = %span.0, endpoint = %span.1, why, "webhook job dropped");
            false
        }
        Ok(Outcome::Failed) => {
            tracing::warn!(message = %span.0, endpoint = %span.1, attempt, "webhook failed; no attempt left (resendable)");
            false
        }
        Ok(Outcome::RetryAfter(wait)) => {
            tracing::info!(message = %span.0, endpoint = %span.1, attempt, wait_seconds = wait.as_secs(), "webhook attempt failed; retrying later");
            let receipt = record.receipt_handle.clone().unwrap_or_default();
            let seconds = i32::try_from(wait.as_secs())
                .unwrap_or(i32::MAX)
                .min(MAX_VISIBILITY_SECONDS);
            if let Err(e) = d
                .sqs
                .change_message_visibility()
                .queue_url(queue_url)
                .receipt_handle(receipt)
                .visibility_timeout(seconds)
                .send()
                .await
            {
                // The message comes back after the queue's own visibility timeout instead.
                tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(e), "could not delay the next attempt");
            }
            true
        }
        Err(e) => {
            tracing::warn!(message = %span.0, endpoint = %span.1, error = %e, "webhook attempt not recorded; SQS retries it");
            true
        }
    }
}

/// SQS's longest visibility timeout: 12 hours.
const MAX_VISIBILITY_SECONDS: i32 = 12 * 3600;

// ---- the outbound HTTP client ------------------------------------------------------------------

type Connector = hyper_rustls::HttpsConnector<HttpConnector<CheckedResolver>>;

/// POSTs webhook attempts (see the module documentation).
pub struct HttpSender {
    reach: Reach,
    /// Built on the first delivery: loading the platform's root certificates costs milliseconds,
    /// which at init would be every cold start's (bench/REPORT.md, section 3).
    client: std::sync::OnceLock<Client<Connector, Full<Bytes>>>,
}

impl HttpSender {
    pub fn new(reach: Reach) -> Self {
        Self {
            reach,
            client: std::sync::OnceLock::new(),
        }
    }

    fn client(&self) -> &Client<Connector, Full<Bytes>> {
        self.client.get_or_init(|| build_client(self.reach))
    }

    async fn send(&self, url: &str, headers: &[(&'static str, String)], body: &str) -> Result<(u16, String), String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("bad URL: {e}"))?;
        check_scheme(parsed.scheme(), self.reach).map_err(|e| e.to_string())?;
        // An address written in the URL is not resolved, so the resolver never sees it.
        match parsed.host() {
            Some(url::Host::Ipv4(ip)) => check_address(IpAddr::V4(ip), self.reach).map_err(|e| e.to_string())?,
            Some(url::Host::Ipv6(ip)) => check_address(IpAddr::V6(ip), self.reach).map_err(|e| e.to_string())?,
            _ => {}
        }
        let mut request = http::Request::post(url).header("user-agent", "grants-webhooks/1");
        for (k, v) in headers {
            request = request.header(*k, v);
        }
        let request = request
            .body(Full::new(Bytes::from(body.to_owned())))
            .map_err(|e| e.to_string())?;
        let response = self.client().request(request).await.map_err(|e| {
            // The resolver's refusal is the source of hyper's connect error.
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                text = format!("{text}: {s}");
                source = s.source();
            }
            text
        })?;
        let status = response.status().as_u16();
        let mut kept = Vec::new();
        let mut body = response.into_body();
        while kept.len() < RESPONSE_KEPT_BYTES {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        kept.extend_from_slice(data);
                    }
                }
                _ => break,
            }
        }
        kept.truncate(RESPONSE_KEPT_BYTES);
        Ok((status, String::from_utf8_lossy(&kept).into_owned()))
    }
}

/// The sender's HTTP client: the checking resolver under hyper-rustls (http and https).
fn build_client(reach: Reach) -> Client<Connector, Full<Bytes>> {
    https_client(
        HttpConnector::new_with_resolver(CheckedResolver { reach }),
        ATTEMPT_TIMEOUT,
    )
}

/// An http-and-https client over `http` (its resolver), trusting the platform's root
/// certificates (none found: https fails, http still works). Loading the roots costs milliseconds,
/// so callers build it on first use, never at init.
pub fn https_client<R>(
    mut http: HttpConnector<R>,
    connect_timeout: std::time::Duration,
) -> Client<hyper_rustls::HttpsConnector<HttpConnector<R>>, Full<Bytes>>
where
    R: tower_service::Service<Name> + Clone + Send + Sync + 'static,
    R::Response: Iterator<Item = std::net::SocketAddr>,
    R::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    R::Future: Send,
{
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    let connector = match hyper_rustls::HttpsConnectorBuilder::new().with_native_roots() {
        Ok(b) => b.https_or_http().enable_http1().wrap_connector(http),
        Err(e) => {
            tracing::warn!(error = %e, "no native root certificates; https calls will fail");
            hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(
                    rustls::ClientConfig::builder()
                        .with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth(),
                )
                .https_or_http()
                .enable_http1()
                .wrap_connector(http)
        }
    };
    Client::builder(TokioExecutor::new()).build(connector)
}

#[async_trait::async_trait]
impl WebhookSender for HttpSender {
    async fn post(&self, url: &str, headers: &[(&'static str, String)], body: &str) -> Posted {
        let started = Instant::now();
        let result = tokio::time::timeout(ATTEMPT_TIMEOUT, self.send(url, headers, body)).await;
        let duration = started.elapsed();
        match result {
            Ok(Ok((status, body))) => Posted {
                status: Some(status),
                body,
                duration,
            },
            Ok(Err(why)) => Posted {
                status: None,
                body: why,
                duration,
            },
            Err(_) => Posted {
                status: None,
                body: format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs()),
                duration,
            },
        }
    }
}

/// Resolves a host and refuses it if any of its addresses is one deliveries may not reach; the
/// connector then connects only to these addresses.
#[derive(Clone)]
struct CheckedResolver {
    reach: Reach,
}

impl tower_service::Service<Name> for CheckedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let reach = self.reach;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            if addrs.is_empty() {
                return Err(std::io::Error::other(format!("{} has no address", name.as_str())));
            }
            for a in &addrs {
                check_address(a.ip(), reach).map_err(std::io::Error::other)?;
            }
            Ok(addrs.into_iter())
        })
    }
}
