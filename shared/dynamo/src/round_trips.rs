//! Counts DynamoDB round trips: an interceptor on the SDK client that records the operation of
//! every request it transmits (retries included, since each is a real round trip). Benchmarks and
//! the round-trip regression tests build their client with it; functions never do.
use aws_sdk_dynamodb::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemOutput;
use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::operation::query::QueryOutput;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The operations transmitted since the last [`RoundTrips::take`], in order, and the items their
/// answers read ([`RoundTrips::take_items_read`]).
#[derive(Debug, Clone, Default)]
pub struct RoundTrips(Arc<Mutex<Vec<String>>>, Arc<AtomicU64>);

impl RoundTrips {
    /// A DynamoDB client for `config` that reports every request to this counter.
    pub fn client(&self, config: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
        let conf = aws_sdk_dynamodb::config::Builder::from(config)
            .interceptor(self.clone())
            .build();
        aws_sdk_dynamodb::Client::from_conf(conf)
    }

    /// The items read since the last call: what each Query examined (`ScannedCount`), each item a
    /// GetItem or BatchGetItem returned.
    pub fn take_items_read(&self) -> u64 {
        self.1.swap(0, Ordering::Relaxed)
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

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Ok(output) = context.output_or_error() else {
            return Ok(());
        };
        let read = if let Some(q) = output.downcast_ref::<QueryOutput>() {
            u64::try_from(q.scanned_count).unwrap_or_default()
        } else if let Some(g) = output.downcast_ref::<GetItemOutput>() {
            u64::from(g.item.is_some())
        } else if let Some(b) = output.downcast_ref::<BatchGetItemOutput>() {
            b.responses
                .as_ref()
                .map(|r| r.values().map(|items| items.len() as u64).sum())
                .unwrap_or_default()
        } else {
            0
        };
        self.1.fetch_add(read, Ordering::Relaxed);
        Ok(())
    }
}
