//! The webhook portal (issue 17, item 3): Paygentic's `GET /v0/webhooks/portal` hands out a magic
//! link to a page where a person manages the tenant's endpoints without an API key.
//!
//! The link carries a token of 32 random bytes (base64url); only its SHA-256 is stored, with the
//! tenant and the expiry ([`PORTAL_LINK_SECONDS`] after it was made). The page accepts the token
//! until then, for that tenant's application only; a token that is unknown, expired or whose
//! tenant has no webhook configuration is one answer: not found.
use crate::kernel::StoreError;
use crate::webhooks::{ApplicationId, WebhookStore};
use crate::{Clock, TenantId, Timestamp};
use base64::Engine;
use sha2::{Digest, Sha256};
use std::fmt;

/// How long a portal link works: one hour.
pub const PORTAL_LINK_SECONDS: i64 = 3600;

/// The secret part of a portal link.
#[derive(Clone, PartialEq, Eq)]
pub struct PortalToken(String);

impl PortalToken {
    pub fn generate() -> Result<Self, StoreError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| StoreError::Unavailable(format!("no randomness: {e}")))?;
        Ok(Self(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// A token as a path segment carries it: 43 base64url characters.
    pub fn parse(raw: &str) -> Option<Self> {
        (raw.len() == 43 && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
            .then(|| Self(raw.to_owned()))
    }

    /// What is stored: the hex SHA-256 of the token.
    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PortalToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PortalToken(..)")
    }
}

/// A portal link as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalLink {
    pub tenant: TenantId,
    /// [`PortalToken::hash`].
    pub token_hash: String,
    pub expires_at: Timestamp,
}

/// The storage port of portal links.
#[async_trait::async_trait]
pub trait PortalStore: Send + Sync {
    async fn insert_portal_link(&self, link: &PortalLink) -> Result<(), StoreError>;
    async fn find_portal_link(&self, token_hash: &str) -> Result<Option<PortalLink>, StoreError>;
}

#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    /// `merchantId` is not the key's tenant.
    #[error("no such merchant")]
    MerchantNotFound,
    /// Webhooks were never enabled for the tenant.
    #[error("webhooks have not been enabled")]
    NotConfigured,
    /// The link is unknown or expired.
    #[error("this portal link is not valid (it may have expired)")]
    LinkNotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Makes a portal link for the tenant (its webhooks must have been enabled): the token, to put in
/// the URL, and when it expires.
pub async fn open_portal<S>(
    store: &S,
    clock: &dyn Clock,
    tenant: &TenantId,
    merchant: Option<&str>,
) -> Result<(PortalToken, Timestamp), PortalError>
where
    S: WebhookStore + PortalStore + ?Sized,
{
    if merchant.is_some_and(|m| m != tenant.as_str()) {
        return Err(PortalError::MerchantNotFound);
    }
    store
        .get_webhook_config(tenant)
        .await?
        .ok_or(PortalError::NotConfigured)?;
    let token = PortalToken::generate()?;
    let now = clock.now();
    let expires_at = now.plus_seconds(PORTAL_LINK_SECONDS).unwrap_or(now);
    store
        .insert_portal_link(&PortalLink {
            tenant: tenant.clone(),
            token_hash: token.hash(),
            expires_at,
        })
        .await?;
    Ok((token, expires_at))
}

/// Who a portal page request acts for: the link's tenant and its application, while the link is
/// valid.
pub async fn portal_session<S>(
    store: &S,
    clock: &dyn Clock,
    token: &str,
) -> Result<(TenantId, ApplicationId, Timestamp), PortalError>
where
    S: WebhookStore + PortalStore + ?Sized,
{
    let token = PortalToken::parse(token).ok_or(PortalError::LinkNotFound)?;
    let link = store
        .find_portal_link(&token.hash())
        .await?
        .filter(|l| l.expires_at > clock.now())
        .ok_or(PortalError::LinkNotFound)?;
    let config = store
        .get_webhook_config(&link.tenant)
        .await?
        .ok_or(PortalError::LinkNotFound)?;
    Ok((link.tenant, config.application_id, link.expires_at))
}
