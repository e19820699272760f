//! Local stand-ins for what AWS does around the functions, driven by template.yaml itself:
//! - the SQS queues (with the template's visibility timeout, retention and redrive policy), created
//!   on the local SQS server;
//! - the bridge that plays the Lambda event source mapping: it long-polls a queue, invokes the
//!   consumer function with real SQS event batches, deletes only the messages that succeeded, and
//!   leaves failures to come back after the visibility timeout and, past `maxReceiveCount`, to be
//!   moved to the dead-letter queue by the SQS server's redrive;
//! - the EventBridge schedule (invokes a scheduled function every so often).
use crate::http_client::HttpClient;
use async_trait::async_trait;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName, QueueAttributeName};
use serde_json::{json, Value as Json};
use serde_norway::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

/// The template's queues and the environment variable that names each one locally.
pub const QUEUE_ENV: &[(&str, &str, &str)] = &[
    (
        "PaymentEventsQueue",
        grants_lambda::config::PAYMENT_EVENTS_QUEUE,
        "payment-events",
    ),
    (
        "PaymentEventsDeadLetterQueue",
        "PAYMENT_EVENTS_DLQ",
        "payment-events-dlq",
    ),
    (
        "InvoiceEventsQueue",
        grants_lambda::config::INVOICE_EVENTS_QUEUE,
        "invoice-events",
    ),
    (
        "WebhookDeliveriesQueue",
        grants_lambda::config::WEBHOOK_DELIVERIES_QUEUE,
        "webhook-deliveries",
    ),
    (
        "WebhookDeliveriesDeadLetterQueue",
        "WEBHOOK_DELIVERIES_DLQ",
        "webhook-deliveries-dlq",
    ),
    (
        "WebhookDispatchDeadLetterQueue",
        "WEBHOOK_DISPATCH_DLQ",
        "webhook-dispatch-dlq",
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("template: {0}")]
    Template(String),
    #[error("sqs: {0}")]
    Sqs(String),
    #[error("dynamodb stream: {0}")]
    Stream(String),
}

fn sqs_error<E: std::error::Error + 'static, R: std::fmt::Debug>(e: aws_sdk_sqs::error::SdkError<E, R>) -> LocalError {
    LocalError::Sqs(DisplayErrorContext(e).to_string())
}

fn resources(template: &str) -> Result<serde_norway::Mapping, LocalError> {
    let doc: Value = serde_norway::from_str(template).map_err(|e| LocalError::Template(e.to_string()))?;
    doc.get("Resources")
        .and_then(Value::as_mapping)
        .cloned()
        .ok_or_else(|| LocalError::Template("no Resources".to_owned()))
}

/// `!GetAtt X.Arn` (or `Fn::GetAtt: [X, Arn]`) -> `X`.
fn get_att_target(v: &Value) -> Option<String> {
    match v {
        Value::Tagged(t) if t.tag == "GetAtt" => t.value.as_str().and_then(|s| s.split('.').next()).map(str::to_owned),
        Value::Mapping(m) => m
            .get("Fn::GetAtt")
            .and_then(Value::as_sequence)
            .and_then(|s| s.first())
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    }
}

fn number(v: Option<&Value>) -> Option<u64> {
    v.and_then(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())))
}

/// Local queue URLs by template logical id.
pub type QueueUrls = BTreeMap<String, String>;

/// Creates every `AWS::SQS::Queue` of the template on the local SQS server, named `names[logical
/// id]`, with the template's attributes. `visibility_override` shortens the visibility timeout
/// (tests). Dead-letter targets are created first. Existing queues are reused.
pub async fn create_queues_from_template(
    sqs: &aws_sdk_sqs::Client,
    template: &str,
    names: &BTreeMap<String, String>,
    visibility_override: Option<u64>,
) -> Result<QueueUrls, LocalError> {
    let resources = resources(template)?;
    let queues: Vec<(String, Value)> = resources
        .iter()
        .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some("AWS::SQS::Queue"))
        .filter_map(|(k, r)| {
            Some((
                k.as_str()?.to_owned(),
                r.get("Properties").cloned().unwrap_or(Value::Null),
            ))
        })
        .collect();
    let mut urls = QueueUrls::new();
    let mut arns = HashMap::new();
    // Queues without a redrive policy first: they may be dead-letter targets.
    let mut ordered = queues.clone();
    ordered.sort_by_key(|(_, p)| p.get("RedrivePolicy").is_some());
    for (logical, props) in ordered {
        let name = names
            .get(&logical)
            .ok_or_else(|| LocalError::Template(format!("no local name for {logical}")))?;
        let mut attributes = HashMap::new();
        let visibility = visibility_override.or(number(props.get("VisibilityTimeout")));
        if let Some(v) = visibility {
            attributes.insert(QueueAttributeName::VisibilityTimeout, v.to_string());
        }
        if let Some(v) = number(props.get("MessageRetentionPeriod")) {
            attributes.insert(QueueAttributeName::MessageRetentionPeriod, v.to_string());
        }
        if let Some(redrive) = props.get("RedrivePolicy") {
            let target = redrive
                .get("deadLetterTargetArn")
                .and_then(get_att_target)
                .ok_or_else(|| {
                    LocalError::Template(format!("{logical}: deadLetterTargetArn must be !GetAtt <queue>.Arn"))
                })?;
            let arn: &String = arns
                .get(&target)
                .ok_or_else(|| LocalError::Template(format!("{logical}: unknown DLQ {target}")))?;
            let max = number(redrive.get("maxReceiveCount"))
                .ok_or_else(|| LocalError::Template(format!("{logical}: maxReceiveCount")))?;
            attributes.insert(
                QueueAttributeName::RedrivePolicy,
                json!({ "deadLetterTargetArn": arn, "maxReceiveCount": max.to_string() }).to_string(),
            );
        }
        let url = sqs
            .create_queue()
            .queue_name(name)
            .set_attributes(Some(attributes))
            .send()
            .await
            .map_err(sqs_error)?
            .queue_url
            .ok_or_else(|| LocalError::Sqs(format!("no URL for {name}")))?;
        arns.insert(logical.clone(), queue_arn(sqs, &url).await?);
        urls.insert(logical, url);
    }
    Ok(urls)
}

pub async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<String, LocalError> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(sqs_error)?;
    out.attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .ok_or_else(|| LocalError::Sqs(format!("no ARN for {url}")))
}

/// The local names of the template's queues, from the environment (or their defaults).
pub fn queue_names_from_env() -> BTreeMap<String, String> {
    QUEUE_ENV
        .iter()
        .map(|(logical, var, default)| {
            let name = std::env::var(var)
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| (*default).to_owned());
            ((*logical).to_owned(), name)
        })
        .collect()
}

/// One SQS event source mapping of the template.
#[derive(Debug, Clone, PartialEq)]
pub struct SqsMapping {
    pub function: String,
    pub queue: String,
    pub batch_size: i32,
    pub report_batch_item_failures: bool,
}

/// One schedule of the template.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleMapping {
    pub function: String,
    pub every: Duration,
}

fn functions(template: &str) -> Result<Vec<(String, Value)>, LocalError> {
    Ok(resources(template)?
        .into_iter()
        .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some("AWS::Serverless::Function"))
        .filter_map(|(_, r)| {
            let binary = r
                .get("Metadata")?
                .get("BuildProperties")?
                .get("Binary")?
                .as_str()?
                .to_owned();
            Some((binary, r.get("Properties")?.get("Events")?.clone()))
        })
        .collect())
}

pub fn sqs_mappings(template: &str) -> Result<Vec<SqsMapping>, LocalError> {
    let mut out = Vec::new();
    for (function, events) in functions(template)? {
        for event in events.as_mapping().into_iter().flat_map(|m| m.values()) {
            if event.get("Type").and_then(Value::as_str) != Some("SQS") {
                continue;
            }
            let p = event.get("Properties").cloned().unwrap_or(Value::Null);
            let queue = p
                .get("Queue")
                .and_then(get_att_target)
                .ok_or_else(|| LocalError::Template(format!("{function}: Queue")))?;
            let report = p
                .get("FunctionResponseTypes")
                .and_then(Value::as_sequence)
                .is_some_and(|s| s.iter().any(|t| t.as_str() == Some("ReportBatchItemFailures")));
            let batch_size = number(p.get("BatchSize")).unwrap_or(10).min(10);
            out.push(SqsMapping {
                function: function.clone(),
                queue,
                batch_size: i32::try_from(batch_size).unwrap_or(10),
                report_batch_item_failures: report,
            });
        }
    }
    Ok(out)
}

/// `rate(5 minutes)` and friends.
fn parse_rate(expr: &str) -> Option<Duration> {
    let inner = expr.strip_prefix("rate(")?.strip_suffix(')')?;
    let (n, unit) = inner.split_once(' ')?;
    let n: u64 = n.parse().ok()?;
    let secs = match unit.trim_end_matches('s') {
        "minute" => 60,
        "hour" => 3600,
        "day" => 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(n * secs))
}

pub fn schedule_mappings(template: &str) -> Result<Vec<ScheduleMapping>, LocalError> {
    let mut out = Vec::new();
    for (function, events) in functions(template)? {
        for event in events.as_mapping().into_iter().flat_map(|m| m.values()) {
            if !matches!(
                event.get("Type").and_then(Value::as_str),
                Some("Schedule" | "ScheduleV2")
            ) {
                continue;
            }
            let expr = event
                .get("Properties")
                .and_then(|p| p.get("Schedule").or_else(|| p.get("ScheduleExpression")));
            let every = expr.and_then(Value::as_str).and_then(parse_rate).ok_or_else(|| {
                LocalError::Template(format!("{function}: only rate(...) schedules are supported locally"))
            })?;
            out.push(ScheduleMapping {
                function: function.clone(),
                every,
            });
        }
    }
    Ok(out)
}

/// Calls a function with an event payload and returns its response payload.
#[async_trait]
pub trait Invoker: Send + Sync {
    async fn invoke(&self, function: &str, payload: Json) -> Result<Json, String>;
}

/// Invokes functions served by `cargo lambda watch` through its Lambda Invoke API.
pub struct WatchInvoker {
    http: HttpClient,
    base: String,
}

impl WatchInvoker {
    pub fn new(base: impl Into<String>) -> Self {
        Self {
            http: HttpClient::new(Duration::from_secs(120)),
            base: base.into(),
        }
    }
}

#[async_trait]
impl Invoker for WatchInvoker {
    async fn invoke(&self, function: &str, payload: Json) -> Result<Json, String> {
        let url = format!(
            "{}/2015-03-31/functions/{function}/invocations",
            self.base.trim_end_matches('/')
        );
        let (status, body) = self
            .http
            .post(
                &url,
                &[("content-type", "application/json")],
                payload.to_string().into_bytes(),
            )
            .await?;
        if !(200..300).contains(&status) {
            return Err(format!(
                "invoke {function}: HTTP {status}: {}",
                String::from_utf8_lossy(&body)
            ));
        }
        let value: Json = serde_json::from_slice(&body).map_err(|e| format!("invoke {function}: {e}"))?;
        // The Invoke API answers a function error with an errorType/errorMessage document.
        if value.get("errorType").is_some() {
            return Err(format!("{function} failed: {value}"));
        }
        Ok(value)
    }
}

/// What one poll of a queue did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PollOutcome {
    pub received: usize,
    pub deleted: usize,
    pub failed: usize,
}

/// Plays one SQS event source mapping.
pub struct SqsBridge {
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub queue_arn: String,
    pub region: String,
    pub mapping: SqsMapping,
    /// Long-poll wait per receive, in seconds (0..=20).
    pub wait_seconds: i32,
}

impl SqsBridge {
    /// Receives one batch, invokes the function with it, deletes what succeeded.
    pub async fn poll_once(&self, invoker: &dyn Invoker) -> Result<PollOutcome, LocalError> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(self.mapping.batch_size)
            .wait_time_seconds(self.wait_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(sqs_error)?;
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(PollOutcome::default());
        }
        let ids: HashSet<&str> = messages.iter().filter_map(|m| m.message_id.as_deref()).collect();
        let invoked = invoker
            .invoke(&self.mapping.function, json!({ "Records": self.records(&messages) }))
            .await;
        let failed = self.failures(invoked, &ids);
        let entries: Vec<DeleteMessageBatchRequestEntry> = messages
            .iter()
            .enumerate()
            .filter(|(_, m)| m.message_id.as_deref().is_some_and(|id| !failed.contains(id)))
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle.clone()?)
                    .build()
                    .ok()
            })
            .collect();
        let deleted = entries.len();
        if !entries.is_empty() {
            self.sqs
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(sqs_error)?;
        }
        Ok(PollOutcome {
            received: messages.len(),
            deleted,
            failed: failed.len(),
        })
    }

    /// The messages as the `Records` of an SQS event, as the event source mapping sends them.
    fn records(&self, messages: &[Message]) -> Vec<Json> {
        messages
            .iter()
            .map(|m| {
                let attributes: BTreeMap<String, String> = m
                    .attributes
                    .as_ref()
                    .map(|a| a.iter().map(|(k, v)| (k.as_str().to_owned(), v.clone())).collect())
                    .unwrap_or_default();
                json!({
                    "messageId": m.message_id,
                    "receiptHandle": m.receipt_handle,
                    "body": m.body,
                    "attributes": attributes,
                    "messageAttributes": {},
                    "md5OfBody": m.md5_of_body,
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.queue_arn,
                    "awsRegion": self.region,
                })
            })
            .collect()
    }

    /// The ids of the batch's messages that failed, from what the invocation returned.
    fn failures(&self, invoked: Result<Json, String>, ids: &HashSet<&str>) -> HashSet<String> {
        match invoked {
            Err(e) => {
                // A function error fails the whole batch, as with the real event source mapping.
                tracing::warn!(function = %self.mapping.function, error = %e, "invocation failed; batch returns to the queue");
                ids.iter().map(|s| (*s).to_owned()).collect()
            }
            Ok(response) if self.mapping.report_batch_item_failures => {
                let reported: Option<HashSet<String>> =
                    response.get("batchItemFailures").and_then(Json::as_array).map(|a| {
                        a.iter()
                            .filter_map(|f| f.get("itemIdentifier")?.as_str().map(str::to_owned))
                            .collect()
                    });
                match reported {
                    // An identifier that is not in the batch makes the whole response invalid.
                    Some(r) if r.iter().all(|id| ids.contains(id.as_str())) => r,
                    _ if response.is_null() || response.get("batchItemFailures").is_none() => HashSet::new(),
                    _ => ids.iter().map(|s| (*s).to_owned()).collect(),
                }
            }
            Ok(_) => HashSet::new(),
        }
    }

    /// Messages visible plus in flight.
    pub async fn backlog(&self) -> Result<u64, LocalError> {
        queue_depth(&self.sqs, &self.queue_url).await
    }
}

/// Messages visible plus in flight on a queue.
pub async fn queue_depth(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<u64, LocalError> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .map_err(sqs_error)?;
    let attrs = out.attributes.unwrap_or_default();
    let get = |k: QueueAttributeName| attrs.get(&k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Ok(get(QueueAttributeName::ApproximateNumberOfMessages)
        + get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible))
}

/// The event EventBridge sends a scheduled function.
pub fn scheduled_event(region: &str, rule: &str) -> Json {
    json!({
        "version": "0",
        "id": grants_domain::EventId::generate().as_str(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": grants_domain::Clock::now(&grants_domain::SystemClock).to_rfc3339(),
        "region": region,
        "resources": [format!("arn:aws:events:{region}:000000000000:rule/{rule}")],
        "detail": {},
    })
}

// ---- the DynamoDB stream ---------------------------------------------------------------------

/// One DynamoDB stream event source mapping of the template: its function and filter pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamMapping {
    pub function: String,
    /// The first of `FilterCriteria.Filters[].Pattern`, parsed (None: every record).
    pub pattern: Option<Json>,
    pub batch_size: usize,
    /// `MaximumBatchingWindowInSeconds`: how long records gather before an invocation.
    pub batching_window: Duration,
}

pub fn stream_mappings(template: &str) -> Result<Vec<StreamMapping>, LocalError> {
    let mut out = Vec::new();
    for (function, events) in functions(template)? {
        for event in events.as_mapping().into_iter().flat_map(|m| m.values()) {
            if event.get("Type").and_then(Value::as_str) != Some("DynamoDB") {
                continue;
            }
            let p = event.get("Properties").cloned().unwrap_or(Value::Null);
            let pattern = p
                .get("FilterCriteria")
                .and_then(|f| f.get("Filters"))
                .and_then(Value::as_sequence)
                .and_then(|filters| filters.first())
                .and_then(|f| f.get("Pattern"))
                .and_then(Value::as_str)
                .map(serde_json::from_str::<Json>)
                .transpose()
                .map_err(|e| LocalError::Template(format!("{function}: FilterCriteria pattern: {e}")))?;
            let batch_size = number(p.get("BatchSize")).unwrap_or(100);
            let window = number(p.get("MaximumBatchingWindowInSeconds")).unwrap_or(0);
            out.push(StreamMapping {
                function: function.clone(),
                pattern,
                batch_size: usize::try_from(batch_size).unwrap_or(100),
                batching_window: Duration::from_secs(window),
            });
        }
    }
    Ok(out)
}

/// Whether `record` matches an event filter `pattern` (the subset of Lambda's filter syntax the
/// template uses: nested objects, and arrays of accepted exact values at the leaves).
pub fn matches_pattern(pattern: &Json, record: &Json) -> bool {
    match pattern {
        Json::Object(fields) => fields
            .iter()
            .all(|(k, p)| record.get(k).is_some_and(|v| matches_pattern(p, v))),
        Json::Array(accepted) => accepted.iter().any(|a| a == record),
        other => other == record,
    }
}

/// Where the reading of one shard stands.
struct ShardReading {
    /// None once the shard is closed and read to its end.
    iterator: Option<String>,
    from_start: bool,
    last_sequence: Option<String>,
}

/// Plays one DynamoDB stream event source mapping: reads every shard of the table's stream (from
/// the latest record for shards open when it starts, from the first for later ones), invokes the
/// function with the records that pass the filter, and reads a batch again while the function
/// reports a failure.
pub struct StreamBridge {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub streams: aws_sdk_dynamodbstreams::Client,
    pub table: String,
    pub region: String,
    pub mapping: StreamMapping,
    pub http: HttpClient,
}

impl StreamBridge {
    /// Runs until a stream call fails (then it may be run again: shards open then are read from
    /// their latest record).
    pub async fn run(&self, invoker: &dyn Invoker) -> Result<(), LocalError> {
        let stream_arn = self
            .dynamodb
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| LocalError::Stream(DisplayErrorContext(e).to_string()))?
            .table
            .and_then(|t| t.latest_stream_arn)
            .ok_or_else(|| LocalError::Stream(format!("table {} has no stream", self.table)))?;
        // Shard id -> where its reading stands.
        let mut shards: HashMap<String, ShardReading> = HashMap::new();
        let mut first_look = true;
        loop {
            let described = self
                .streams
                .describe_stream()
                .stream_arn(&stream_arn)
                .send()
                .await
                .map_err(|e| LocalError::Stream(DisplayErrorContext(e).to_string()))?;
            for shard in described.stream_description.and_then(|d| d.shards).unwrap_or_default() {
                let Some(id) = shard.shard_id else { continue };
                if shards.contains_key(&id) {
                    continue;
                }
                // Shards open when the bridge starts are read from now on; later ones whole.
                let from_start = !first_look;
                let iterator = self.iterator(&stream_arn, &id, from_start, None).await?;
                shards.insert(
                    id,
                    ShardReading {
                        iterator,
                        from_start,
                        last_sequence: None,
                    },
                );
            }
            first_look = false;
            let mut any = false;
            for (id, reading) in shards.iter_mut() {
                let Some(current) = reading.iterator.clone() else {
                    continue;
                };
                let out = match self.get_records(&current).await {
                    Ok(out) => out,
                    Err(e) => {
                        // An expired iterator (15 minutes) or a hiccup: resume after the last
                        // record read, never from "now".
                        tracing::warn!(shard = %id, error = %e, "GetRecords failed; resuming after the last record read");
                        reading.iterator = self
                            .iterator(&stream_arn, id, reading.from_start, reading.last_sequence.as_deref())
                            .await?;
                        continue;
                    }
                };
                let all = out.get("Records").and_then(Json::as_array).cloned().unwrap_or_default();
                let last = all
                    .last()
                    .and_then(|r| r.pointer("/dynamodb/SequenceNumber"))
                    .and_then(Json::as_str)
                    .map(str::to_owned);
                let records: Vec<Json> = all
                    .into_iter()
                    .filter(|r| self.mapping.pattern.as_ref().is_none_or(|p| matches_pattern(p, r)))
                    .collect();
                if !records.is_empty() {
                    any = true;
                    let result = invoker
                        .invoke(&self.mapping.function, json!({ "Records": records }))
                        .await;
                    let failed = match &result {
                        Err(e) => {
                            tracing::warn!(function = %self.mapping.function, error = %e, "stream batch failed; read again");
                            true
                        }
                        Ok(r) => r
                            .get("batchItemFailures")
                            .and_then(Json::as_array)
                            .is_some_and(|f| !f.is_empty()),
                    };
                    if failed {
                        // Read the same batch again (a simplification of resuming at the failed
                        // record: the dispatcher is at-least-once either way).
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                    tracing::info!(function = %self.mapping.function, records = records.len(), "stream batch");
                }
                if last.is_some() {
                    reading.last_sequence = last;
                }
                reading.iterator = out.get("NextShardIterator").and_then(Json::as_str).map(str::to_owned);
            }
            // Records gather for the batching window (as the event source mapping lets them),
            // so a burst of writes is one invocation, not one per record.
            let pause = if any {
                self.mapping.batching_window
            } else {
                Duration::from_millis(250)
            };
            tokio::time::sleep(pause.max(Duration::from_millis(250))).await;
        }
    }

    /// An iterator for a shard: after `after` when given, else from its first record or from now.
    async fn iterator(
        &self,
        stream_arn: &str,
        shard: &str,
        from_start: bool,
        after: Option<&str>,
    ) -> Result<Option<String>, LocalError> {
        use aws_sdk_dynamodbstreams::types::ShardIteratorType;
        let request = self.streams.get_shard_iterator().stream_arn(stream_arn).shard_id(shard);
        let request = match (after, from_start) {
            (Some(sequence), _) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(sequence),
            (None, true) => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
            (None, false) => request.shard_iterator_type(ShardIteratorType::Latest),
        };
        Ok(request
            .send()
            .await
            .map_err(|e| LocalError::Stream(DisplayErrorContext(e).to_string()))?
            .shard_iterator)
    }

    /// GetRecords as JSON. DynamoDB Local's records (the same JSON a Lambda function is handed)
    /// are taken as they come: the SDK's typed parser refuses some of them ("Union did not contain
    /// a valid variant"). DynamoDB Local checks that a request is signed, not the signature.
    async fn get_records(&self, iterator: &str) -> Result<Json, LocalError> {
        let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB_STREAMS")
            .or_else(|_| std::env::var("AWS_ENDPOINT_URL_DYNAMODB"))
            .map_err(|_| LocalError::Stream("no local DynamoDB endpoint".to_owned()))?;
        let date = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=local/{}/{}/dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=0",
            &date[..8],
            self.region
        );
        let body = json!({ "ShardIterator": iterator, "Limit": self.mapping.batch_size }).to_string();
        let (status, bytes) = self
            .http
            .post(
                &endpoint,
                &[
                    ("content-type", "application/x-amz-json-1.0"),
                    ("x-amz-target", "DynamoDBStreams_20120810.GetRecords"),
                    ("x-amz-date", &date),
                    ("authorization", &auth),
                ],
                body.into_bytes(),
            )
            .await
            .map_err(LocalError::Stream)?;
        if status != 200 {
            return Err(LocalError::Stream(format!(
                "GetRecords: HTTP {status}: {}",
                String::from_utf8_lossy(&bytes)
            )));
        }
        serde_json::from_slice(&bytes).map_err(|e| LocalError::Stream(e.to_string()))
    }
}
