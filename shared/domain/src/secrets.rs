//! Secrets that must not live in the table every function reads: each tenant's payment-webhook
//! signing secrets (with a rotation overlap window) and the deployment's page-cursor key.
//!
//! They sit behind [`SecretStore`] (read through `grants_http::secrets::Secrets`, which caches them), a port of exactly what the domain needs: read a named secret,
//! write one. Deployed, that is AWS Secrets Manager, where IAM lets only the functions that need a
//! secret read it (`template.yaml`); locally, moto's Secrets Manager.
//!
//! Names, under the deployment's prefix (`SECRETS_PREFIX`, the stack name):
//! - `<prefix>/tenants/<tenant>/payment-webhook`: JSON [`WebhookSecrets`];
//! - `<prefix>/tenants/<tenant>/stripe-api`: JSON [`StripeApiKeys`] (a tenant that sells through
//!   Stripe: read by the functions that call Stripe's API);
//! - `<prefix>/tenants/<tenant>/stripe-webhook`: JSON [`WebhookSecrets`], the tenant's Stripe
//!   webhook signing secrets (read by the Stripe webhook route alone);
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

/// A tenant's Stripe account keys, set by an operator (`grants-admin set-stripe-keys`): the secret
/// key the service calls Stripe's API with, the publishable key its payment page gives Stripe.js,
/// and the signing secret of the Stripe webhook endpoint pointed at this service. When the signing
/// secret is replaced, the previous one keeps verifying until `previous_webhook_secret_expires_at`
/// (Stripe's own "roll secret" keeps the old one working for up to 24 hours).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StripeKeys {
    /// `sk_live_...`, `sk_test_...` or a restricted `rk_...` key.
    pub secret_key: String,
    /// `pk_live_...` or `pk_test_...`.
    pub publishable_key: String,
    /// `whsec_...`.
    pub webhook_secret: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_webhook_secret: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_webhook_secret_expires_at: Option<String>,
}

/// Never prints a key (these structs reach logs only through `Debug`).
impl std::fmt::Debug for StripeKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeKeys")
            .field("publishable_key", &self.publishable_key)
            .finish_non_exhaustive()
    }
}

impl StripeKeys {
    /// Checks the keys' forms (a typo'd key fails here, not at the first purchase).
    pub fn check(&self) -> Result<(), &'static str> {
        let ok = |v: &str, prefixes: &[&str]| prefixes.iter().any(|p| v.starts_with(p)) && v.len() <= 512;
        if !ok(&self.secret_key, &["sk_", "rk_"]) {
            return Err("the secret key must start with sk_ or rk_");
        }
        if !ok(&self.publishable_key, &["pk_"]) {
            return Err("the publishable key must start with pk_");
        }
        if !ok(&self.webhook_secret, &["whsec_"]) {
            return Err("the webhook signing secret must start with whsec_");
        }
        Ok(())
    }

    /// These keys replacing the webhook secrets `old`: a changed webhook secret leaves the old one
    /// verifying for `overlap_seconds` more.
    pub fn replacing(mut self, old: Option<&WebhookSecrets>, now: Timestamp, overlap_seconds: i64) -> Self {
        if let Some(old) = old.filter(|o| o.current != self.webhook_secret && overlap_seconds > 0) {
            self.previous_webhook_secret = Some(old.current.clone());
            self.previous_webhook_secret_expires_at =
                Some(now.plus_seconds(overlap_seconds).unwrap_or(now).to_rfc3339());
        }
        self
    }

    /// The two secrets these keys are stored as (see the module documentation).
    pub fn split(&self) -> (StripeApiKeys, WebhookSecrets) {
        (
            StripeApiKeys {
                secret_key: self.secret_key.clone(),
                publishable_key: self.publishable_key.clone(),
            },
            WebhookSecrets {
                current: self.webhook_secret.clone(),
                previous: self.previous_webhook_secret.clone(),
                previous_expires_at: self.previous_webhook_secret_expires_at.clone(),
            },
        )
    }
}

/// What the functions that call Stripe's API read: the tenant's secret and publishable keys.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StripeApiKeys {
    pub secret_key: String,
    pub publishable_key: String,
}

/// Never prints the secret key.
impl std::fmt::Debug for StripeApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeApiKeys")
            .field("publishable_key", &self.publishable_key)
            .finish_non_exhaustive()
    }
}

pub fn stripe_api_name(prefix: &str, tenant: &TenantId) -> String {
    format!("{prefix}/tenants/{tenant}/stripe-api")
}

pub fn stripe_webhook_name(prefix: &str, tenant: &TenantId) -> String {
    format!("{prefix}/tenants/{tenant}/stripe-webhook")
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
