//! Secrets that must not live in the table every function reads: each tenant's payment-webhook
//! signing secrets (with a rotation overlap window) and the deployment's page-cursor key.
//!
//! They sit behind [`SecretStore`] (read through `grants_http::secrets::Secrets`, which caches them), a port of exactly what the domain needs: read a named secret,
//! write one. Deployed, that is AWS Secrets Manager, where IAM lets only the functions that need a
//! secret read it (`template.yaml`); locally, moto's Secrets Manager.
//!
//! Names, under the deployment's prefix (`SECRETS_PREFIX`, the stack name):
//! - `<prefix>/tenants/<tenant>/payment-webhook`: JSON [`WebhookSecrets`];
//! - `<prefix>/cursor-key`: the HMAC key of page cursors (64 hex characters or more).
use crate::{TenantId, Timestamp};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, thiserror::Error)]
pub enum SecretError {
    /// The secret service could not be reached or refused (retryable; a 503).
    #[error("secret store unavailable: {0}")]
    Unavailable(String),
    /// A stored secret is not in the expected shape.
    #[error("secret {0} is malformed")]
    Malformed(String),
    #[error("no randomness available: {0}")]
    Random(String),
}

/// Named secrets. Values are opaque strings; nothing here logs them.
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// The secret's current value, `None` when there is no such secret.
    async fn get(&self, name: &str) -> Result<Option<String>, SecretError>;
    /// Creates the secret, or stores a new value for it.
    async fn put(&self, name: &str, value: &str) -> Result<(), SecretError>;
}

/// How long a rotated-out webhook secret keeps verifying, unless the operator says otherwise.
pub const DEFAULT_OVERLAP_SECONDS: i64 = 24 * 3600;

/// A tenant's payment-webhook signing secrets: the current one signs and verifies; the previous
/// one, after a rotation, still verifies until `previous_expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookSecrets {
    /// `whsec_` + 64 hex characters.
    pub current: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_expires_at: Option<String>,
}

impl WebhookSecrets {
    /// The secrets that verify a delivery at `now`: the current one, and the previous one until
    /// its overlap ends.
    pub fn active(&self, now: Timestamp) -> Vec<String> {
        let mut out = vec![self.current.clone()];
        let previous_valid = self
            .previous_expires_at
            .as_deref()
            .and_then(|t| Timestamp::parse(t).ok())
            .is_some_and(|expires| now < expires);
        if let (Some(previous), true) = (&self.previous, previous_valid) {
            out.push(previous.clone());
        }
        out
    }
}

/// A new random `whsec_` secret (256 bits).
pub fn new_webhook_secret() -> Result<String, SecretError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| SecretError::Random(e.to_string()))?;
    Ok(format!("whsec_{}", hex::encode(bytes)))
}

/// A new random page-cursor key: 64 hex characters (256 bits).
pub fn new_cursor_key() -> Result<String, SecretError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| SecretError::Random(e.to_string()))?;
    Ok(hex::encode(bytes))
}

pub fn webhook_secret_name(prefix: &str, tenant: &TenantId) -> String {
    format!("{prefix}/tenants/{tenant}/payment-webhook")
}

pub fn cursor_key_name(prefix: &str) -> String {
    format!("{prefix}/cursor-key")
}

/// Secrets in process memory, for unit tests of the rules above (never a stand-in for Secrets
/// Manager in the integration suites).
#[derive(Default)]
pub struct InMemorySecrets(std::sync::Mutex<std::collections::HashMap<String, String>>);

#[async_trait]
impl SecretStore for InMemorySecrets {
    async fn get(&self, name: &str) -> Result<Option<String>, SecretError> {
        Ok(self.0.lock().unwrap_or_else(|p| p.into_inner()).get(name).cloned())
    }
    async fn put(&self, name: &str, value: &str) -> Result<(), SecretError> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_owned(), value.to_owned());
        Ok(())
    }
}
