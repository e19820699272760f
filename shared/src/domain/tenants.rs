//! Per-tenant settings: the currency purchases are charged in and the secret that signs the
//! tenant's payment webhooks.
use super::cache::TtlCache;
use super::money::Currency;
use super::{Clock, TenantId, Timestamp};
use crate::store::{Store, StoreError};

#[derive(Debug, Clone, PartialEq)]
pub struct TenantSettings {
    pub tenant: TenantId,
    /// The merchant's default currency: every purchase is charged in it.
    pub currency: Currency,
    /// HMAC-SHA256 key of the tenant's payment webhooks (`whsec_` + 64 hex). Never logged.
    pub webhook_secret: String,
    pub created_at: Timestamp,
}

impl TenantSettings {
    /// Fresh settings with a new random webhook secret.
    pub fn generate(tenant: &TenantId, currency: Currency, clock: &dyn Clock) -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        Ok(Self {
            tenant: tenant.clone(),
            currency,
            webhook_secret: format!("whsec_{}", hex::encode(bytes)),
            created_at: clock.now(),
        })
    }
}

pub type TenantCache = TtlCache<TenantSettings>;

#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error("tenant has no settings")]
    NotConfigured,
    #[error("no randomness available: {0}")]
    Random(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The tenant's settings, from the instance cache or one read.
pub async fn settings(store: &dyn Store, cache: &TenantCache, tenant: &TenantId) -> Result<TenantSettings, TenantError> {
    if let Some(s) = cache.get(tenant.as_str()) {
        return Ok(s);
    }
    let settings = store.get_tenant(tenant).await?.ok_or(TenantError::NotConfigured)?;
    cache.put(tenant.as_str().to_owned(), settings.clone());
    Ok(settings)
}

/// Creates the tenant's settings (USD unless told otherwise) unless it has some; returns them.
pub async fn ensure(
    store: &dyn Store,
    clock: &dyn Clock,
    tenant: &TenantId,
    currency: Option<Currency>,
) -> Result<TenantSettings, TenantError> {
    let fresh = TenantSettings::generate(tenant, currency.unwrap_or(Currency::USD), clock)
        .map_err(|e| TenantError::Random(e.to_string()))?;
    if store.put_tenant_if_absent(&fresh).await? {
        return Ok(fresh);
    }
    store.get_tenant(tenant).await?.ok_or(TenantError::NotConfigured)
}
