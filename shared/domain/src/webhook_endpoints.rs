//! Webhook endpoints (issue 17, item 2): where a tenant's events are delivered, managed as Svix's
//! API manages them (`/api/v1/app/{app_id}/endpoint...`), under the tenant's webhook application
//! ([`crate::webhooks`]).
//!
//! An endpoint has a URL (`http` or `https`; delivery decides what it may reach), a description,
//! the event types it receives (none listed: every type), whether it is disabled, and a signing
//! secret (`whsec_` and the base64 of 24 random bytes, per Standard Webhooks). Rotating the secret
//! keeps the previous one valid for a grace period (Svix's default: 24 hours), during which
//! deliveries carry a signature by each.
pub use crate::ids::EndpointId;
use crate::kernel::StoreError;
use crate::webhooks::{ApplicationId, WebhookStore};
use crate::{Clock, TenantId, Timestamp};
use base64::Engine;
use std::collections::BTreeSet;
use std::fmt;

/// Where an endpoint's deliveries go: an absolute `http` or `https` URL with a host, at most 2,048
/// characters, without credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointUrl(String);

impl EndpointUrl {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        if raw.len() > 2048 {
            return Err("must be at most 2048 characters");
        }
        let url = url::Url::parse(raw).map_err(|_| "must be an absolute http or https URL")?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
            return Err("must be an absolute http or https URL");
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not carry credentials");
        }
        // The stored form (percent-encoded) is what must fit, and what is read back.
        let normalized = url.to_string();
        if normalized.len() > 2048 {
            return Err("must be at most 2048 characters once percent-encoded");
        }
        Ok(Self(normalized))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An event type name as an endpoint filters on it (`invoice.paid.v0`): 1 to 256 characters of
/// letters, digits, `.`, `_` and `-`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventTypeName(String);

impl EventTypeName {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        if raw.is_empty() || raw.len() > 256 || !raw.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
            return Err("must be 1 to 256 letters, digits, '.', '_' or '-'");
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A signing secret: `whsec_` and the standard base64 of 24 to 64 bytes (Standard Webhooks). The
/// key HMAC-SHA256 signs with is the decoded bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(String);

impl SigningSecret {
    pub const PREFIX: &'static str = "whsec_";

    /// A new secret of 24 random bytes.
    pub fn generate() -> Result<Self, StoreError> {
        let mut bytes = [0u8; 24];
        getrandom::fill(&mut bytes).map_err(|e| StoreError::Unavailable(format!("no randomness: {e}")))?;
        Ok(Self(format!(
            "{}{}",
            Self::PREFIX,
            base64::engine::general_purpose::STANDARD.encode(bytes)
        )))
    }

    /// A secret as a client sent it: `whsec_` and base64, or the base64 alone (as Svix accepts).
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let full = if raw.starts_with(Self::PREFIX) {
            raw.to_owned()
        } else {
            format!("{}{raw}", Self::PREFIX)
        };
        let bytes = Self::decode(&full).ok_or("must be whsec_ and the base64 of 24 to 64 bytes")?;
        if !(24..=64).contains(&bytes.len()) {
            return Err("must be whsec_ and the base64 of 24 to 64 bytes");
        }
        Ok(Self(full))
    }

    fn decode(raw: &str) -> Option<Vec<u8>> {
        let b64 = raw.strip_prefix(Self::PREFIX)?;
        base64::engine::general_purpose::STANDARD.decode(b64).ok()
    }

    /// The HMAC key.
    pub fn key(&self) -> Vec<u8> {
        Self::decode(&self.0).unwrap_or_default()
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(..)")
    }
}

/// How long a rotated-out secret still signs, unless the rotation says otherwise (Svix's default).
pub const DEFAULT_GRACE_SECONDS: i64 = 86_400;
/// The longest grace a rotation may ask for (Svix's limit: 7 days).
pub const MAX_GRACE_SECONDS: i64 = 604_800;

/// A webhook endpoint of a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    pub tenant: TenantId,
    pub id: EndpointId,
    pub url: EndpointUrl,
    pub description: String,
    /// The event types it receives; None: every type.
    pub event_types: Option<BTreeSet<EventTypeName>>,
    pub disabled: bool,
    pub secret: SigningSecret,
    /// The secret before the last rotation, and until when it still signs.
    pub previous_secret: Option<(SigningSecret, Timestamp)>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Since when every attempt to it has failed (None: the last attempt succeeded, or none yet).
    pub failing_since: Option<Timestamp>,
    /// Why the service disabled it (it failed for days); None when a person disabled it or it is
    /// enabled. Cleared when it is enabled again.
    pub disabled_reason: Option<String>,
    /// Bumped by every change; a change is written only over the version it read.
    pub version: u64,
}

impl WebhookEndpoint {
    /// The endpoint takes events of this type.
    pub fn wants(&self, event_type: &str) -> bool {
        !self.disabled
            && self
                .event_types
                .as_ref()
                .is_none_or(|types| types.iter().any(|t| t.as_str() == event_type))
    }
}

/// The storage port of webhook endpoints.
#[async_trait::async_trait]
pub trait EndpointStore: Send + Sync {
    /// Creates the endpoint (its id is new; one conditional write).
    async fn insert_endpoint(&self, endpoint: &WebhookEndpoint) -> Result<(), StoreError>;
    async fn get_endpoint(&self, tenant: &TenantId, id: &EndpointId) -> Result<Option<WebhookEndpoint>, StoreError>;
    /// Every endpoint of the tenant, in id order (creation order, to the millisecond).
    async fn list_endpoints(&self, tenant: &TenantId) -> Result<Vec<WebhookEndpoint>, StoreError>;
    /// Replaces the endpoint if it is still at `version - 1`: false when it moved or is gone.
    async fn replace_endpoint(&self, endpoint: &WebhookEndpoint) -> Result<bool, StoreError>;
    /// Deletes it: false when there was none.
    async fn delete_endpoint(&self, tenant: &TenantId, id: &EndpointId) -> Result<bool, StoreError>;
}

/// A new endpoint as a client asked for it.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    pub url: EndpointUrl,
    pub description: String,
    pub event_types: Option<BTreeSet<EventTypeName>>,
    pub disabled: bool,
    /// None: a new one is generated.
    pub secret: Option<SigningSecret>,
}

/// Changes to an endpoint: None leaves a field as it is; `event_types: Some(None)` clears the
/// filter (every type).
#[derive(Debug, Clone, Default)]
pub struct EndpointPatch {
    pub url: Option<EndpointUrl>,
    pub description: Option<String>,
    pub event_types: Option<Option<BTreeSet<EventTypeName>>>,
    pub disabled: Option<bool>,
}

/// Why an endpoint operation failed.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// The application is not the tenant's (or webhooks were never enabled).
    #[error("application not found")]
    ApplicationNotFound,
    #[error("endpoint not found")]
    EndpointNotFound,
    #[error("message not found")]
    MessageNotFound,
    /// A resend to a disabled endpoint (enable it first).
    #[error("the endpoint is disabled")]
    EndpointDisabled,
    /// Another change won the race, again and again.
    #[error("the endpoint is being changed; try again")]
    Contended,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A page of endpoints, Svix-style: `iterator` is the last id of the page, `done` says no more.
#[derive(Debug, Clone)]
pub struct EndpointPage {
    pub data: Vec<WebhookEndpoint>,
    pub iterator: Option<String>,
    pub prev_iterator: Option<String>,
    pub done: bool,
}

/// The application in the path must be the tenant's.
pub(crate) async fn check_application<S>(store: &S, tenant: &TenantId, app: &str) -> Result<(), EndpointError>
where
    S: WebhookStore + ?Sized,
{
    let config = store.get_webhook_config(tenant).await?;
    match config {
        Some(c) if ApplicationId::parse(app).is_ok_and(|a| a == c.application_id) => Ok(()),
        _ => Err(EndpointError::ApplicationNotFound),
    }
}

pub async fn create_endpoint<S>(
    store: &S,
    clock: &dyn Clock,
    tenant: &TenantId,
    app: &str,
    new: NewEndpoint,
) -> Result<WebhookEndpoint, EndpointError>
where
    S: WebhookStore + EndpointStore + ?Sized,
{
    check_application(store, tenant, app).await?;
    let now = clock.now();
    let endpoint = WebhookEndpoint {
        tenant: tenant.clone(),
        id: EndpointId::generate(),
        url: new.url,
        description: new.description,
        event_types: new.event_types,
        disabled: new.disabled,
        secret: match new.secret {
            Some(s) => s,
            None => SigningSecret::generate()?,
        },
        previous_secret: None,
        created_at: now,
        updated_at: now,
        failing_since: None,
        disabled_reason: None,
        version: 1,
    };
    store.insert_endpoint(&endpoint).await?;
    Ok(endpoint)
}

/// One page of the application's endpoints: `limit` of them after `iterator` (an endpoint id; `-`
/// and an id: the page before it), in creation order (`ascending`) or newest first.
pub async fn list_endpoints<S>(
    store: &S,
    tenant: &TenantId,
    app: &str,
    limit: usize,
    iterator: Option<&str>,
    ascending: bool,
) -> Result<EndpointPage, EndpointError>
where
    S: WebhookStore + EndpointStore + ?Sized,
{
    check_application(store, tenant, app).await?;
    let mut all = store.list_endpoints(tenant).await?;
    if !ascending {
        all.reverse();
    }
    // An iterator `-<id>` (a page's `prevIterator`) pages backwards: the page before that id.
    let (backwards, from) = match iterator {
        Some(it) => match it.strip_prefix('-') {
            Some(id) => (true, Some(id)),
            None => (false, Some(it)),
        },
        None => (false, None),
    };
    let follows = |e: &WebhookEndpoint, it: &str| {
        if ascending {
            e.id.as_str() > it
        } else {
            e.id.as_str() < it
        }
    };
    let (data, done) = match from {
        None => {
            let done = all.len() <= limit;
            (all.into_iter().take(limit).collect::<Vec<_>>(), done)
        }
        Some(it) if !backwards => {
            let rest: Vec<WebhookEndpoint> = all.into_iter().filter(|e| follows(e, it)).collect();
            let done = rest.len() <= limit;
            (rest.into_iter().take(limit).collect(), done)
        }
        Some(it) => {
            let before: Vec<WebhookEndpoint> = all
                .into_iter()
                .filter(|e| e.id.as_str() != it && !follows(e, it))
                .collect();
            let done = before.len() <= limit;
            let skip = before.len().saturating_sub(limit);
            (before.into_iter().skip(skip).collect(), done)
        }
    };
    Ok(EndpointPage {
        iterator: data.last().map(|e| e.id.as_str().to_owned()),
        prev_iterator: data.first().map(|e| format!("-{}", e.id)),
        data,
        done,
    })
}

pub async fn get_endpoint<S>(
    store: &S,
    tenant: &TenantId,
    app: &str,
    id: &str,
) -> Result<WebhookEndpoint, EndpointError>
where
    S: WebhookStore + EndpointStore + ?Sized,
{
    check_application(store, tenant, app).await?;
    let id = EndpointId::parse(id).map_err(|_| EndpointError::EndpointNotFound)?;
    store
        .get_endpoint(tenant, &id)
        .await?
        .ok_or(EndpointError::EndpointNotFound)
}

/// Reads the endpoint, changes it with `change`, and writes it over the version read (again from
/// the read, a few times, if another change got there first).
async fn change_endpoint<S>(
    store: &S,
    clock: &dyn Clock,
    tenant: &TenantId,
    app: &str,
    id: &str,
    change: impl Fn(&mut WebhookEndpoint, Timestamp) -> Result<(), EndpointError>,
) -> Result<WebhookEndpoint, EndpointError>
where
    S: WebhookStore + EndpointStore + ?Sized,
{
    check_application(store, tenant, app).await?;
    let id = EndpointId::parse(id).map_err(|_| EndpointError::EndpointNotFound)?;
    for _ in 0..5 {
        let mut endpoint = store
            .get_endpoint(tenant, &id)
            .await?
            .ok_or(EndpointError::EndpointNotFound)?;
        let now = clock.now();
        change(&mut endpoint, now)?;
        endpoint.updated_at = now;
        endpoint.version += 1;
        if store.replace_endpoint(&endpoint).await? {
            return Ok(endpoint);
        }
    }
    Err(EndpointError::Contended)
}

pub async fn patch_endpoint<S>(
    store: &S,
    clock: &dyn Clock,
    tenant: &TenantId,
    app: &str,
    id: &str,
    patch: EndpointPatch,
) -> Result<WebhookEndpoint, EndpointError>
where
    S: WebhookStore + EndpointStore + ?Sized,
{
    change_endpoint(store, clock, tenant, app, id, |e, _| {
        if let Some(url) = &patch.url {
            e.url = url.clone();
        }
        if let Some(d) = &patch.description {
            e.description = d.clone();
        }
        if let Some(types) = &patch.event_types {
            e.event_types = types.clone();
        }
        if let Some(disabled) = patch.disabled {
            e.disabled = disabled;
            if !disabled {
                // Enabled again by a person: it starts afresh.
                e.disabled_reason = None;
                e.failing_since = None;
            }
        }
        Ok(())
    })
    .await
}

pub async fn delete_endpoint<S>(store: &S, tenant: &TenantId, app: &str, id: &str) -> Result<(), EndpointError>
where
    S: WebhookStore + EndpointStore + ?Sized,
{
    check_application(store, tenant, app).await?;
    let id = EndpointId::parse(id).map_err(|_| EndpointError::EndpointNotFound)?;
    if store.delete_endpoint(tenant, &id).await? {
        Ok(())
    } else {
        Err(EndpointError::EndpointNotFound)
    }
}

/// Replaces the endpoint's secret with `key` (or a new one); the old one still signs for
/// `grace_seconds` ([`DEFAULT_GRACE_SECONDS`] when None). Returns the endpoint with its new secret.
pub async fn rotate_secret<S>(
    store: &S,
    clock: &dyn Clock,
    tenant: &TenantId,
    app: &str,
    id: &str,
    key: Option<SigningSecret>,
    grace_seconds: Option<i64>,
) -> Result<WebhookEndpoint, EndpointError>
where
    S: WebhookStore + EndpointStore + ?Sized,
{
    let next = match key {
        Some(k) => k,
        None => SigningSecret::generate()?,
    };
    let grace = grace_seconds
        .unwrap_or(DEFAULT_GRACE_SECONDS)
        .clamp(0, MAX_GRACE_SECONDS);
    change_endpoint(store, clock, tenant, app, id, |e, now| {
        let until = now.plus_seconds(grace).unwrap_or(now);
        let old = std::mem::replace(&mut e.secret, next.clone());
        e.previous_secret = (grace > 0).then_some((old, until));
        Ok(())
    })
    .await
}
