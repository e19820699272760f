//! `grants-bridge`: plays, on this machine, what AWS does around the functions (see
//! `grants_dev_tools::local`): the SQS event source mappings of template.yaml (long-poll, invoke with real
//! SQS batches, delete only what succeeded, redrive by the queue's policy), its DynamoDB stream
//! mapping (the outbox's dispatch, filtered as the template says) and its schedules.
//! Functions are invoked through `cargo lambda watch`'s Lambda Invoke API.
//!
//! usage: grants-bridge --invoke-url http://127.0.0.1:9000 [--schedule-every SECONDS] [--template template.yaml]
use grants_dev_tools::admin;
use grants_dev_tools::local::{self, Invoker, SqsBridge, WatchInvoker};
use grants_lambda::telemetry;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    admin::load_env_file(&std::env::current_dir()?.join(admin::LOCAL_STACK_ENV));
    let invoke_url = flag(&args, "--invoke-url").ok_or("--invoke-url is required")?;
    let template_path = flag(&args, "--template").unwrap_or_else(|| "template.yaml".to_owned());
    let template = std::fs::read_to_string(&template_path)?;
    let schedule_override = flag(&args, "--schedule-every")
        .map(|s| s.parse::<u64>())
        .transpose()?
        .map(Duration::from_secs);

    let config = grants_lambda::config::sdk_config().await;
    let region = config
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| "us-east-1".to_owned());
    let sqs = aws_sdk_sqs::Client::new(&config);
    let invoker: Arc<dyn Invoker> = Arc::new(WatchInvoker::new(invoke_url));
    let mut tasks = bridge_queues(&template, &sqs, &region, &invoker).await?;
    tasks.extend(bridge_streams(&template, &config, &region, &invoker)?);
    tasks.extend(schedule_functions(&template, schedule_override, &region, &invoker)?);
    futures::future::join_all(tasks).await;
    Ok(())
}

/// One task per SQS event source mapping of the template: long-poll its queue, invoke its function.
async fn bridge_queues(
    template: &str,
    sqs: &aws_sdk_sqs::Client,
    region: &str,
    invoker: &Arc<dyn Invoker>,
) -> Result<Vec<JoinHandle<()>>, Error> {
    let names = local::queue_names_from_env();
    let mut tasks = Vec::new();
    for mapping in local::sqs_mappings(template)? {
        let name = names
            .get(&mapping.queue)
            .ok_or_else(|| format!("no local name for {}", mapping.queue))?;
        let url = sqs
            .get_queue_url()
            .queue_name(name)
            .send()
            .await?
            .queue_url
            .ok_or("no queue URL")?;
        let bridge = SqsBridge {
            queue_arn: local::queue_arn(sqs, &url).await?,
            sqs: sqs.clone(),
            queue_url: url,
            region: region.to_owned(),
            mapping,
            wait_seconds: 2,
        };
        let invoker = Arc::clone(invoker);
        tracing::info!(function = %bridge.mapping.function, queue = %bridge.queue_url, "bridging SQS to function");
        tasks.push(tokio::spawn(async move {
            loop {
                match bridge.poll_once(invoker.as_ref()).await {
                    Ok(o) if o.received > 0 => {
                        tracing::info!(function = %bridge.mapping.function, received = o.received, deleted = o.deleted, failed = o.failed, "batch");
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "poll failed");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        }));
    }
    Ok(tasks)
}

/// One task per DynamoDB stream event source mapping of the template (the table's stream).
fn bridge_streams(
    template: &str,
    config: &aws_config::SdkConfig,
    region: &str,
    invoker: &Arc<dyn Invoker>,
) -> Result<Vec<JoinHandle<()>>, Error> {
    let mut tasks = Vec::new();
    for mapping in local::stream_mappings(template)? {
        let bridge = local::StreamBridge {
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            streams: aws_sdk_dynamodbstreams::Client::new(config),
            table: grants_lambda::config::table_name(),
            region: region.to_owned(),
            mapping,
            http: grants_dev_tools::http_client::HttpClient::new(Duration::from_secs(30)),
        };
        let invoker = Arc::clone(invoker);
        tracing::info!(function = %bridge.mapping.function, table = %bridge.table, "bridging the table's stream to function");
        tasks.push(tokio::spawn(async move {
            loop {
                if let Err(e) = bridge.run(invoker.as_ref()).await {
                    tracing::warn!(function = %bridge.mapping.function, error = %e, "stream bridge failed; starting again");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }));
    }
    Ok(tasks)
}

/// One task per schedule of the template (every `schedule_override`, when given).
fn schedule_functions(
    template: &str,
    schedule_override: Option<Duration>,
    region: &str,
    invoker: &Arc<dyn Invoker>,
) -> Result<Vec<JoinHandle<()>>, Error> {
    let mut tasks = Vec::new();
    for schedule in local::schedule_mappings(template)? {
        let every = schedule_override.unwrap_or(schedule.every);
        let invoker = Arc::clone(invoker);
        let region = region.to_owned();
        tracing::info!(function = %schedule.function, every_seconds = every.as_secs(), "scheduling function");
        tasks.push(tokio::spawn(async move {
            // First run one period from now, as a schedule would (and after the functions are up).
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tick.tick().await;
                let event = local::scheduled_event(&region, &schedule.function);
                match invoker.invoke(&schedule.function, event).await {
                    Ok(out) => tracing::info!(function = %schedule.function, result = %out, "scheduled run"),
                    Err(e) => tracing::warn!(function = %schedule.function, error = %e, "scheduled run failed"),
                }
            }
        }));
    }
    Ok(tasks)
}
