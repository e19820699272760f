//! Queues as the domain sees them: somewhere to put a message. The SQS implementation is in
//! [`crate::queue`]; the domain never sees AWS types.
use async_trait::async_trait;

#[derive(Debug, Clone, thiserror::Error)]
#[error("queue unavailable: {0}")]
pub struct QueueError(pub String);

#[async_trait]
pub trait MessageQueue: Send + Sync {
    /// Sends one message; Ok once the queue has durably accepted it.
    async fn send(&self, body: String) -> Result<(), QueueError>;
}
