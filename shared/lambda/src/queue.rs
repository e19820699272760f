//! [`MessageQueue`] on SQS. A queue is named by URL (deployed: `!Ref` of the queue) or by name
//! (locally), in which case its URL is looked up once, on first use.
use async_trait::async_trait;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::Client;
use grants_domain::messaging::{MessageQueue, QueueError};
use tokio::sync::OnceCell;

pub struct SqsQueue {
    client: Client,
    target: String,
    url: OnceCell<String>,
}

impl SqsQueue {
    /// `target` is a queue URL or a queue name.
    pub fn new(client: Client, target: impl Into<String>) -> Self {
        Self {
            client,
            target: target.into(),
            url: OnceCell::new(),
        }
    }

    pub async fn url(&self) -> Result<&str, QueueError> {
        self.url
            .get_or_try_init(|| async {
                if self.target.starts_with("http://") || self.target.starts_with("https://") {
                    return Ok(self.target.clone());
                }
                let out = self
                    .client
                    .get_queue_url()
                    .queue_name(&self.target)
                    .send()
                    .await
                    .map_err(|e| QueueError(DisplayErrorContext(e).to_string()))?;
                out.queue_url
                    .ok_or_else(|| QueueError(format!("no URL for queue {}", self.target)))
            })
            .await
            .map(String::as_str)
    }
}

#[async_trait]
impl MessageQueue for SqsQueue {
    async fn send(&self, body: String) -> Result<(), QueueError> {
        let url = self.url().await?;
        self.client
            .send_message()
            .queue_url(url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| QueueError(DisplayErrorContext(e).to_string()))?;
        Ok(())
    }
}
