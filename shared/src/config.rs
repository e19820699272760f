//! Configuration from the environment. The same variables drive Lambda, the local stack and tests:
//! `TABLE_NAME`, `PAYMENT_EVENTS_QUEUE` and `INVOICE_EVENTS_QUEUE` (a queue URL, or locally a queue
//! name), `PAYMENT_PROVIDER` (`sandbox` or `none`), optional `PUBLIC_BASE_URL`, and the AWS SDK's own (`AWS_REGION`, credentials,
//! `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_SQS`).
use crate::api::App;
use crate::domain::payments::NoProvider;
use crate::http_client::HttpClient;
use crate::queue::SqsQueue;
use crate::store::dynamo::DynamoStore;
use std::sync::Arc;
use std::time::Duration;

pub const DEFAULT_TABLE: &str = "grants";
pub const PAYMENT_EVENTS_QUEUE: &str = "PAYMENT_EVENTS_QUEUE";
pub const INVOICE_EVENTS_QUEUE: &str = "INVOICE_EVENTS_QUEUE";
/// `sandbox` (default) or `none`.
pub const PAYMENT_PROVIDER: &str = "PAYMENT_PROVIDER";

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

pub fn table_name() -> String {
    var("TABLE_NAME").unwrap_or_else(|| DEFAULT_TABLE.to_owned())
}

pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await
}

pub async fn dynamo_client() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&sdk_config().await)
}

/// The store for the configured table.
pub async fn store_from_env() -> DynamoStore {
    DynamoStore::new(dynamo_client().await, table_name())
}

/// Everything a function may need, from the environment. Queues left unset fail when used.
pub async fn app_from_env() -> App {
    let config = sdk_config().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), table_name());
    let mut app = App::with_system_clock(Arc::new(store)).with_delivery(Arc::new(HttpClient::new(Duration::from_secs(10))));
    if var(PAYMENT_PROVIDER).as_deref() == Some("none") {
        app = app.with_provider(Arc::new(NoProvider));
    }
    if let (Some(payments), Some(invoices)) = (var(PAYMENT_EVENTS_QUEUE), var(INVOICE_EVENTS_QUEUE)) {
        let sqs = aws_sdk_sqs::Client::new(&config);
        app = app.with_queues(Arc::new(SqsQueue::new(sqs.clone(), payments)), Arc::new(SqsQueue::new(sqs, invoices)));
    }
    app
}
