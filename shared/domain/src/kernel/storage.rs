//! The one error of the storage ports, whichever aggregate's.

/// A failure of the storage layer (network, throttling past retries, corrupt item), or storage
/// refusing a request's content.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Storage refused the request's content (DynamoDB's `ValidationException`: a key or value
    /// over its limits). Input is validated before any storage call, so this is a missed check; it
    /// is a non-retryable 400, never a retryable 503.
    #[error("storage refused the request: {0}")]
    Rejected(String),
    #[error("stored item is malformed: {0}")]
    Corrupt(String),
    #[error("too much contention on one object; retry")]
    Contention,
}
