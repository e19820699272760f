//! Configuration from the environment. The same variables drive Lambda, the local stack and tests:
//! `TABLE_NAME`, `PAYMENT_EVENTS_QUEUE` and `INVOICE_EVENTS_QUEUE` (a queue URL, or locally a queue
//! name), `PAYMENT_PROVIDER` (`none`, the default, or `sandbox`; anything else stops the function
//! at init), `PUBLIC_BASE_URL` (absolute http(s) URL; the base of the payment-session URLs the
//! service stores), `SECRETS_PREFIX` (the names' prefix in Secrets Manager, default `grants`),
//! `STRIPE_API_BASE` and `STRIPE_JS_URL` (where Stripe's API and Stripe.js are; defaults: Stripe's
//! own), and
//! the AWS SDK's own (`AWS_REGION`, credentials, `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_SQS`,
//! `AWS_ENDPOINT_URL_SECRETS_MANAGER`).
use crate::queue::SqsQueue;
use crate::secrets_manager::SecretsManagerStore;
use crate::App;
use grants_domain::payments::PaymentProvider;
use grants_domain::secrets::{SecretError, SecretStore};
use grants_dynamo::DynamoStore;
use grants_http::providers::{NoProvider, SandboxProvider};
use grants_http::secrets::Secrets;
use std::sync::Arc;

pub const DEFAULT_TABLE: &str = "grants";
pub const PAYMENT_EVENTS_QUEUE: &str = "PAYMENT_EVENTS_QUEUE";
pub const INVOICE_EVENTS_QUEUE: &str = "INVOICE_EVENTS_QUEUE";
pub const WEBHOOK_DELIVERIES_QUEUE: &str = "WEBHOOK_DELIVERIES_QUEUE";
/// `public` (deployed: https and public addresses only) or `local` (also http to loopback).
pub const WEBHOOK_REACH: &str = "WEBHOOK_REACH";
/// Optional: the waits before each delivery attempt, in seconds, comma-separated (the local
/// stack's tests shorten Svix's schedule with it); unset: `RETRY_SCHEDULE`.
pub const WEBHOOK_RETRY_SCHEDULE: &str = "WEBHOOK_RETRY_SCHEDULE";
/// `none` (default), `sandbox`, `stripe`, or `stripe+sandbox` (staging and the local stack: Stripe
/// for the tenants with Stripe keys, the sandbox for the others).
pub const PAYMENT_PROVIDER: &str = "PAYMENT_PROVIDER";
pub const PUBLIC_BASE_URL: &str = "PUBLIC_BASE_URL";
pub const SECRETS_PREFIX: &str = "SECRETS_PREFIX";
pub const DEFAULT_SECRETS_PREFIX: &str = "grants";

/// A configuration a function must not start with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("PAYMENT_PROVIDER={0:?} is not a payment provider; expected none, sandbox, stripe or stripe+sandbox")]
    UnknownProvider(String),
    #[error("PUBLIC_BASE_URL={0:?} is not an absolute http(s) URL without a path, query or user info")]
    BadBaseUrl(String),
    #[error("{0}={1:?} is not valid")]
    Invalid(&'static str, String),
}

/// The payment provider `PAYMENT_PROVIDER` names: unset or empty is `none` (purchases refused);
/// an unknown value is an error, never a fallback.
pub fn payment_provider(value: Option<&str>) -> Result<Arc<dyn PaymentProvider>, ConfigError> {
    match value.map(str::trim).unwrap_or("") {
        "" | "none" => Ok(Arc::new(NoProvider)),
        "sandbox" => Ok(Arc::new(SandboxProvider)),
        // The Stripe client itself is wired only into the functions that call Stripe (`with_stripe`).
        "stripe" => Ok(Arc::new(crate::stripe::StripeUnwired)),
        crate::stripe::STRIPE_OR_SANDBOX => Ok(Arc::new(crate::stripe::StripeOrSandbox { stripe: None })),
        other => Err(ConfigError::UnknownProvider(other.to_owned())),
    }
}

/// `PUBLIC_BASE_URL`, checked: `https://api.example.com` (or `http://` for the local stack).
pub fn public_base_url(value: Option<&str>) -> Result<Option<String>, ConfigError> {
    let Some(raw) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let base = raw.trim_end_matches('/');
    let bad = || ConfigError::BadBaseUrl(raw.to_owned());
    let authority = base
        .strip_prefix("https://")
        .or_else(|| base.strip_prefix("http://"))
        .ok_or_else(bad)?;
    let ok = !authority.is_empty()
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    ok.then(|| Some(base.to_owned())).ok_or_else(bad)
}

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

/// The HTTPS client of every AWS SDK client: trusts only [`AWS_ROOTS`] (and the platform's with
/// `TLS_NATIVE_ROOTS=true`).
fn aws_https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider, TlsContext, TrustStore};
    let mut roots = TrustStore::empty().with_native_roots(var(TLS_NATIVE_ROOTS).as_deref() == Some("true"));
    for pem in AWS_ROOTS {
        roots.add_pem_certificate(pem.as_bytes());
    }
    let client = aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring));
    match TlsContext::builder().with_trust_store(roots).build() {
        Ok(context) => client.tls_context(context).build_https(),
        // Never an error in this SDK version; the roots themselves are checked by a unit test.
        Err(_) => client.build_https(),
    }
}

/// The AWS SDK's configuration for tools run by a person (`grants-admin`, the bridge, tests): the
/// SDK's whole default chain (profiles, SSO, web identity, instance metadata).
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(aws_https_client())
        .load()
        .await
}

/// The AWS SDK's configuration inside a Lambda function, built from the variables Lambda sets and
/// nothing else: `AWS_REGION`, the role's `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/
/// `AWS_SESSION_TOKEN`, and endpoint overrides `AWS_ENDPOINT_URL_<SERVICE>` or `AWS_ENDPOINT_URL`
/// (the local stack). No profile files are read and no credential chain is built, which keeps the
/// STS client and the profile parser out of the binaries and off the cold start (bench/REPORT.md).
pub fn function_sdk_config() -> aws_config::SdkConfig {
    use aws_credential_types::provider::SharedCredentialsProvider;
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(var("AWS_REGION").map(aws_config::Region::new))
        .credentials_provider(SharedCredentialsProvider::new(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        ))
        .http_client(aws_https_client())
        .sleep_impl(aws_smithy_async::rt::sleep::TokioSleep::new())
        .time_source(aws_smithy_async::time::SystemTimeSource::new())
        .retry_config(aws_config::retry::RetryConfig::standard())
        .service_config(EndpointsFromEnv)
        .build()
}

/// Service settings from the environment: only what the SDK asks for by variable, e.g.
/// `AWS_ENDPOINT_URL_DYNAMODB` before `AWS_ENDPOINT_URL` (the service id upper-cased, spaces as
/// underscores, as the SDK's own loader names them).
#[derive(Debug)]
struct EndpointsFromEnv;

impl aws_types::service_config::LoadServiceConfig for EndpointsFromEnv {
    fn load_config(&self, key: aws_types::service_config::ServiceConfigKey<'_>) -> Option<String> {
        let service = key.service_id().to_ascii_uppercase().replace(' ', "_");
        var(&format!("{}_{service}", key.env())).or_else(|| var(key.env()))
    }
}

/// The store for the configured table.
pub async fn store_from_env() -> DynamoStore {
    DynamoStore::from_config(&sdk_config().await, table_name())
}

/// The secrets of this deployment (Secrets Manager, names under `SECRETS_PREFIX`).
pub fn secrets(config: &aws_config::SdkConfig) -> Secrets {
    Secrets::new(
        Arc::new(SecretsManagerStore::new(config.clone())),
        var(SECRETS_PREFIX).unwrap_or_else(|| DEFAULT_SECRETS_PREFIX.to_owned()),
    )
}

/// A function's app from the environment: the table, the payment provider and the public base URL,
/// with the SDK configuration the `with_*` wirings below build their clients from. Secrets and
/// queues are left unconfigured (every use fails loudly) until a wiring adds them. A bad
/// `PAYMENT_PROVIDER` or `PUBLIC_BASE_URL` is an error: the function does not start.
/// `Table::Unused` (a function whose route never calls DynamoDB) builds no DynamoDB client.
pub fn app_from_env(table: Table) -> Result<(App, aws_config::SdkConfig), ConfigError> {
    let provider = payment_provider(var(PAYMENT_PROVIDER).as_deref())?;
    let base_url = public_base_url(var(PUBLIC_BASE_URL).as_deref())?;
    let stripe_js = match var(crate::stripe::STRIPE_JS_URL) {
        Some(url) if url.starts_with("https://") || url.starts_with("http://") => url,
        Some(url) => return Err(ConfigError::Invalid(crate::stripe::STRIPE_JS_URL, url)),
        None => grants_http::stripe::DEFAULT_STRIPE_JS_URL.to_owned(),
    };
    let config = function_sdk_config();
    let store = match table {
        Table::Used => DynamoStore::from_config(&config, table_name()),
        Table::Unused => DynamoStore::unused(&config, table_name()),
    };
    let app = App::with_system_clock(Arc::new(store))
        .with_provider(provider)
        .with_public_base_url(base_url)
        .with_stripe_js_url(stripe_js)
        .with_secrets(Arc::new(Secrets::new(Arc::new(NoSecrets), "")));
    Ok((app, config))
}

/// Whether a function's route calls DynamoDB (template.yaml grants it `dynamodb:*` actions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    Used,
    Unused,
}

/// Adds Secrets Manager (webhook signing secrets, the page-cursor key).
pub fn with_secrets(app: App, config: &aws_config::SdkConfig) -> App {
    app.with_secrets(Arc::new(secrets(config)))
}

/// Replaces the provider with the Stripe client when `PAYMENT_PROVIDER=stripe` (its keys from
/// Secrets Manager; `STRIPE_API_BASE`, default Stripe's); any other provider is kept.
pub fn with_stripe(app: App, config: &aws_config::SdkConfig) -> App {
    let base =
        || var(crate::stripe::STRIPE_API_BASE).unwrap_or_else(|| crate::stripe::DEFAULT_STRIPE_API_BASE.to_owned());
    let stripe = || crate::stripe::StripeProvider::new(base(), Arc::new(secrets(config)));
    match app.payments.name() {
        grants_http::stripe::STRIPE_PROVIDER => app.with_provider(Arc::new(stripe())),
        crate::stripe::STRIPE_OR_SANDBOX => {
            app.with_provider(Arc::new(crate::stripe::StripeOrSandbox { stripe: Some(stripe()) }))
        }
        _ => app,
    }
}

/// Adds the payment-events queue (`PAYMENT_EVENTS_QUEUE`; unset: unconfigured).
pub fn with_payment_events(app: App, config: &aws_config::SdkConfig) -> App {
    match var(PAYMENT_EVENTS_QUEUE) {
        Some(queue) => app.with_payment_events(Arc::new(SqsQueue::new(aws_sdk_sqs::Client::new(config), queue))),
        None => app,
    }
}

/// Adds the invoice-events queue (`INVOICE_EVENTS_QUEUE`; unset: unconfigured).
pub fn with_invoice_events(app: App, config: &aws_config::SdkConfig) -> App {
    match var(INVOICE_EVENTS_QUEUE) {
        Some(queue) => app.with_invoice_events(Arc::new(SqsQueue::new(aws_sdk_sqs::Client::new(config), queue))),
        None => app,
    }
}

/// Adds the webhook-deliveries queue (`WEBHOOK_DELIVERIES_QUEUE`; unset: unconfigured).
pub fn with_webhook_deliveries(app: App, config: &aws_config::SdkConfig) -> App {
    match var(WEBHOOK_DELIVERIES_QUEUE) {
        Some(queue) => app.with_webhook_deliveries(Arc::new(SqsQueue::new(aws_sdk_sqs::Client::new(config), queue))),
        None => app,
    }
}

/// Where deliveries may go (`WEBHOOK_REACH`): anything but `local` is the deployed rule.
pub fn webhook_reach() -> grants_domain::webhook_delivery::Reach {
    match var(WEBHOOK_REACH).as_deref() {
        Some("local") => grants_domain::webhook_delivery::Reach::LocalStack,
        _ => grants_domain::webhook_delivery::Reach::Public,
    }
}

/// The waits before each delivery attempt (`WEBHOOK_RETRY_SCHEDULE`, or Svix's schedule).
pub fn webhook_retry_schedule() -> Result<Vec<std::time::Duration>, ConfigError> {
    let Some(raw) = var(WEBHOOK_RETRY_SCHEDULE) else {
        return Ok(grants_domain::webhook_delivery::RETRY_SCHEDULE.to_vec());
    };
    raw.split(',')
        .map(|s| {
            s.trim()
                .parse::<u64>()
                .map(std::time::Duration::from_secs)
                .map_err(|_| ConfigError::Invalid(WEBHOOK_RETRY_SCHEDULE, raw.clone()))
        })
        .collect()
}

/// The secret store of a function not wired with Secrets Manager: every read fails.
struct NoSecrets;

#[async_trait::async_trait]
impl SecretStore for NoSecrets {
    async fn get(&self, name: &str) -> Result<Option<String>, SecretError> {
        Err(SecretError::Unavailable(format!(
            "{name}: this function is not wired with Secrets Manager"
        )))
    }
    async fn put(&self, name: &str, _value: &str) -> Result<(), SecretError> {
        Err(SecretError::Unavailable(format!(
            "{name}: this function is not wired with Secrets Manager"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::{payment_provider, public_base_url, ConfigError};
    use rustls::pki_types::{pem::PemObject, CertificateDer};

    /// The SDK parses these only when it first connects, and panics on a bad one: parse them here.
    #[test]
    fn the_aws_roots_are_five_parsable_trust_anchors() {
        let mut store = rustls::RootCertStore::empty();
        for pem in super::AWS_ROOTS {
            let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .expect("PEM");
            assert_eq!(certs.len(), 1);
            store.add(certs[0].clone()).expect("a trust anchor");
        }
        assert_eq!(store.len(), 5);
    }

    /// Security review finding 1: any value but exactly `none` used to mean the sandbox.
    #[test]
    fn unknown_providers_stop_the_function_and_unset_means_none() {
        assert_eq!(payment_provider(None).map(|p| p.name()).ok(), Some("none"));
        assert_eq!(payment_provider(Some("")).map(|p| p.name()).ok(), Some("none"));
        assert_eq!(
            payment_provider(Some("sandbox")).map(|p| p.name()).ok(),
            Some("sandbox")
        );
        assert_eq!(payment_provider(Some("stripe")).map(|p| p.name()).ok(), Some("stripe"));
        for bad in ["Sandbox", "None", "Stripe", "live", "true"] {
            assert!(
                matches!(payment_provider(Some(bad)), Err(ConfigError::UnknownProvider(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_public_base_url_is_an_origin() {
        assert_eq!(
            public_base_url(Some("https://api.example.com/")).unwrap().as_deref(),
            Some("https://api.example.com")
        );
        assert_eq!(
            public_base_url(Some("http://127.0.0.1:9000")).unwrap().as_deref(),
            Some("http://127.0.0.1:9000")
        );
        assert_eq!(public_base_url(None).unwrap(), None);
        for bad in [
            "api.example.com",
            "ftp://x",
            "https://user@evil.com",
            "https://a.com/path",
            "https://",
        ] {
            assert!(public_base_url(Some(bad)).is_err(), "{bad}");
        }
    }
}
