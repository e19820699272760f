//! Per-tenant settings: the currency purchases are charged in, who may start purchases, the
//! lowest price per credit, and where a checkout may send the customer back to. (The secret that
//! signs the tenant's payment webhooks is not here: it is in the secret store, see
//! [`super::secrets`].)
use crate::cache::TtlCache;
use crate::kernel::StoreError;
use crate::money::Currency;
use crate::{Clock, TenantId, Timestamp};

#[derive(Debug, Clone, PartialEq)]
pub struct TenantSettings {
    pub tenant: TenantId,
    /// The merchant's default currency: every purchase is charged in it.
    pub currency: Currency,
    /// Whether `member` keys may start purchases (default false: admin only).
    pub members_may_purchase: bool,
    /// The lowest price per credit a purchase may have, in the currency's major unit (`"0.01"`):
    /// `price >= amount * min`, else 400 naming `price`. None: no minimum.
    pub min_price_per_credit: Option<rust_decimal::Decimal>,
    /// Origins (`https://shop.example.com`) a purchase's `successUrl` / `cancelUrl` may point at.
    /// Empty: any `https` origin, and only while the payment provider is the sandbox.
    pub allowed_redirect_origins: Vec<String>,
    pub created_at: Timestamp,
}

impl TenantSettings {
    /// Default settings: admin-only purchases, no minimum price, no redirect origins.
    pub fn new(tenant: &TenantId, currency: Currency, clock: &dyn Clock) -> Self {
        Self {
            tenant: tenant.clone(),
            currency,
            members_may_purchase: false,
            min_price_per_credit: None,
            allowed_redirect_origins: Vec::new(),
            created_at: clock.now(),
        }
    }
}

/// The origin (`scheme://host[:port]`, lower-cased) of an absolute http(s) URL.
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // userinfo (`user@host`) is refused: it hides the real host from a reader.
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    Some(format!("{scheme}://{}", authority.to_ascii_lowercase()))
}

pub type TenantCache = TtlCache<TenantSettings>;

#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error("tenant has no settings")]
    NotConfigured,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The tenant's settings, from the instance cache or one read.
pub async fn settings(
    store: &dyn TenantStore,
    cache: &TenantCache,
    tenant: &TenantId,
) -> Result<TenantSettings, TenantError> {
    if let Some(s) = cache.get(tenant.as_str()) {
        return Ok(s);
    }
    let settings = store.get_tenant(tenant).await?.ok_or(TenantError::NotConfigured)?;
    cache.put(tenant.as_str().to_owned(), settings.clone());
    Ok(settings)
}

/// Creates the tenant's settings (USD unless told otherwise) unless it has some; returns them.
pub async fn ensure(
    store: &dyn TenantStore,
    clock: &dyn Clock,
    tenant: &TenantId,
    currency: Option<Currency>,
) -> Result<TenantSettings, TenantError> {
    let fresh = TenantSettings::new(tenant, currency.unwrap_or(Currency::USD), clock);
    if store.put_tenant_if_absent(&fresh).await? {
        return Ok(fresh);
    }
    store.get_tenant(tenant).await?.ok_or(TenantError::NotConfigured)
}

/// The storage port of this module: Tenant settings. Implemented by `grants_dynamo::DynamoStore` and
/// [`crate::memory::MemoryStore`]; the contract tests hold both to the same behaviour.
#[async_trait::async_trait]
pub trait TenantStore: Send + Sync {
    async fn get_tenant(
        &self,
        tenant: &crate::TenantId,
    ) -> Result<Option<crate::tenants::TenantSettings>, crate::kernel::StoreError>;
    /// Writes the settings unless the tenant has some; true when written.
    async fn put_tenant_if_absent(
        &self,
        settings: &crate::tenants::TenantSettings,
    ) -> Result<bool, crate::kernel::StoreError>;
    /// Writes the settings, replacing what the tenant had (operators only).
    async fn put_tenant(&self, settings: &crate::tenants::TenantSettings) -> Result<(), crate::kernel::StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SystemClock;
    use std::sync::Mutex;

    /// A store with only the port these operations take: no entitlements, grants or anything else.
    #[derive(Default)]
    struct OnlyTenants(Mutex<Option<TenantSettings>>);

    #[async_trait::async_trait]
    impl TenantStore for OnlyTenants {
        async fn get_tenant(&self, _tenant: &TenantId) -> Result<Option<TenantSettings>, StoreError> {
            Ok(self.0.lock().map_err(|_| StoreError::Contention)?.clone())
        }
        async fn put_tenant_if_absent(&self, settings: &TenantSettings) -> Result<bool, StoreError> {
            let mut kept = self.0.lock().map_err(|_| StoreError::Contention)?;
            if kept.is_some() {
                return Ok(false);
            }
            *kept = Some(settings.clone());
            Ok(true)
        }
        async fn put_tenant(&self, settings: &TenantSettings) -> Result<(), StoreError> {
            *self.0.lock().map_err(|_| StoreError::Contention)? = Some(settings.clone());
            Ok(())
        }
    }

    #[tokio::test]
    async fn settings_need_only_the_tenant_port() {
        let (store, tenant) = (OnlyTenants::default(), TenantId::parse("acme").unwrap());
        let cache = TenantCache::new(std::time::Duration::from_secs(60));
        assert!(matches!(
            settings(&store, &cache, &tenant).await,
            Err(TenantError::NotConfigured)
        ));
        let eur = Currency::parse("eur").unwrap();
        let made = ensure(&store, &SystemClock, &tenant, Some(eur)).await.unwrap();
        let again = ensure(&store, &SystemClock, &tenant, None).await.unwrap();
        assert_eq!((made.currency, &again), (eur, &made), "the first settings stay");
        assert_eq!(settings(&store, &cache, &tenant).await.unwrap(), made);
    }
}
