//! Counts DynamoDB round trips: an interceptor on the SDK client that records the operation of
//! every request it transmits (retries included, since each is a real round trip). Benchmarks and
//! the round-trip regression tests build their client with it; functions never do.
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use std::sync::{Arc, Mutex};

/// The operations transmitted since the last [`RoundTrips::take`], in order.
#[derive(Debug, Clone, Default)]
pub struct RoundTrips(Arc<Mutex<Vec<String>>>);

impl RoundTrips {
    /// A DynamoDB client for `config` that reports every request to this counter.
    pub fn client(&self, config: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
        let conf = aws_sdk_dynamodb::config::Builder::from(config)
            .interceptor(self.clone())
            .build();
        aws_sdk_dynamodb::Client::from_conf(conf)
    }

    /// The operations recorded so far (`GetItem`, `TransactWriteItems`, ...), and a fresh start.
    pub fn take(&self) -> Vec<String> {
        self.0
            .lock()
            .map(|mut ops| std::mem::take(&mut *ops))
            .unwrap_or_default()
    }
}

impl Intercept for RoundTrips {
    fn name(&self) -> &'static str {
        "RoundTrips"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // The JSON protocol names the operation in `X-Amz-Target: DynamoDB_20120810.<Operation>`.
        let target = context.request().headers().get("x-amz-target").unwrap_or("unknown");
        let operation = target.rsplit('.').next().unwrap_or(target).to_owned();
        if let Ok(mut ops) = self.0.lock() {
            ops.push(operation);
        }
        Ok(())
    }
}
