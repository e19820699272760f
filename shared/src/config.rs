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

/// Trust also the platform's roots for the AWS SDK's HTTPS (an `https` endpoint override signed by
/// another CA); by default only the roots AWS endpoints chain to are trusted.
pub const TLS_NATIVE_ROOTS: &str = "TLS_NATIVE_ROOTS";

/// The Amazon Trust Services roots every AWS service endpoint chains to (copied from Debian's
/// ca-certificates). The SDK's default client loads the whole platform store at init, which was
/// most of a function's cold start (bench/REPORT.md, section 3); these five parse in microseconds.
pub const AWS_ROOTS: [&str; 5] = [
    include_str!("../certs/AmazonRootCA1.pem"),
    include_str!("../certs/AmazonRootCA2.pem"),
    include_str!("../certs/AmazonRootCA3.pem"),
    include_str!("../certs/AmazonRootCA4.pem"),
    include_str!("../certs/StarfieldServicesRootCAG2.pem"),
];

fn aws_https_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider, TlsContext, TrustStore};
    let mut roots = TrustStore::empty().with_native_roots(var(TLS_NATIVE_ROOTS).as_deref() == Some("true"));
    for pem in AWS_ROOTS {
        roots.add_pem_certificate(pem.as_bytes());
    }
    let client = aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::AwsLc));
    match TlsContext::builder().with_trust_store(roots).build() {
        Ok(context) => client.tls_context(context).build_https(),
        // Never an error in this SDK version; the roots themselves are checked by a unit test.
        Err(_) => client.build_https(),
    }
}

pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(aws_https_client()).load().await
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

#[cfg(test)]
mod tests {
    use rustls::pki_types::{pem::PemObject, CertificateDer};

    /// The SDK parses these only when it first connects, and panics on a bad one: parse them here.
    #[test]
    fn the_aws_roots_are_five_parsable_trust_anchors() {
        let mut store = rustls::RootCertStore::empty();
        for pem in super::AWS_ROOTS {
            let certs = CertificateDer::pem_slice_iter(pem.as_bytes()).collect::<Result<Vec<_>, _>>().expect("PEM");
            assert_eq!(certs.len(), 1);
            store.add(certs[0].clone()).expect("a trust anchor");
        }
        assert_eq!(store.len(), 5);
    }
}
