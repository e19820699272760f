//! Outbound webhooks (issue 17): a tenant's webhook configuration, as Paygentic's `/v0/webhooks`
//! manages it.
//!
//! A tenant has at most one configuration: its **webhook application** (`app_...`, the
//! application id Svix-style endpoint management addresses) and whether delivery is on. Enabling
//! creates it once (a second enable is refused: Paygentic answers 400 `DUPLICATE_RESOURCE`);
//! after that delivery is paused and resumed by setting `enabled`, which keeps the application
//! and its endpoints. The organization a client names (`merchantId`) must be the key's tenant;
//! another organization's configuration is not found.
pub use crate::ids::ApplicationId;
use crate::kernel::StoreError;
use crate::{Clock, TenantId, Timestamp};

/// A tenant's webhook configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    pub tenant: TenantId,
    pub application_id: ApplicationId,
    /// Delivery is on (false: paused; events are still recorded).
    pub enabled: bool,
    /// When webhooks were first enabled.
    pub created_at: Timestamp,
    /// When the configuration last changed.
    pub updated_at: Timestamp,
}

/// The storage port of webhook configurations.
#[async_trait::async_trait]
pub trait WebhookStore: Send + Sync {
    /// Creates the configuration unless the tenant has one: true when created (one conditional
    /// write).
    async fn insert_webhook_config(&self, config: &WebhookConfig) -> Result<bool, StoreError>;
    async fn get_webhook_config(&self, tenant: &TenantId) -> Result<Option<WebhookConfig>, StoreError>;
    /// Sets `enabled` (and `updated_at`) on an existing configuration and returns it as written;
    /// None when the tenant has none (nothing written; one conditional write).
    async fn set_webhooks_enabled(
        &self,
        tenant: &TenantId,
        enabled: bool,
        at: Timestamp,
    ) -> Result<Option<WebhookConfig>, StoreError>;
}

/// Why webhooks could not be enabled.
#[derive(Debug, thiserror::Error)]
pub enum EnableWebhooksError {
    /// `merchantId` is not the key's tenant.
    #[error("no such merchant")]
    MerchantNotFound,
    /// The tenant has a configuration already (enabled or paused): use `enabled` to resume.
    #[error("webhooks are configured already; set enabled to turn delivery on or off")]
    AlreadyConfigured,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a configuration could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum WebhooksLookupError {
    /// `merchantId` is not the key's tenant.
    #[error("no such merchant")]
    MerchantNotFound,
    /// Webhooks were never enabled for the tenant.
    #[error("webhooks have not been enabled")]
    NotConfigured,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `merchant`, when the client named one, must be the key's tenant.
fn same_merchant(tenant: &TenantId, merchant: Option<&str>) -> bool {
    merchant.is_none_or(|m| m == tenant.as_str())
}

/// Enables webhooks: creates the tenant's configuration, delivery on, with a new application.
pub async fn enable_webhooks(
    store: &dyn WebhookStore,
    clock: &dyn Clock,
    tenant: &TenantId,
    merchant: Option<&str>,
) -> Result<WebhookConfig, EnableWebhooksError> {
    if !same_merchant(tenant, merchant) {
        return Err(EnableWebhooksError::MerchantNotFound);
    }
    let now = clock.now();
    let config = WebhookConfig {
        tenant: tenant.clone(),
        application_id: ApplicationId::generate(),
        enabled: true,
        created_at: now,
        updated_at: now,
    };
    if store.insert_webhook_config(&config).await? {
        Ok(config)
    } else {
        Err(EnableWebhooksError::AlreadyConfigured)
    }
}

/// The tenant's configuration.
pub async fn get_webhooks(
    store: &dyn WebhookStore,
    tenant: &TenantId,
    merchant: Option<&str>,
) -> Result<WebhookConfig, WebhooksLookupError> {
    if !same_merchant(tenant, merchant) {
        return Err(WebhooksLookupError::MerchantNotFound);
    }
    store
        .get_webhook_config(tenant)
        .await?
        .ok_or(WebhooksLookupError::NotConfigured)
}

/// Pauses (`false`) or resumes (`true`) delivery; the application and its endpoints are kept.
pub async fn set_webhooks_enabled(
    store: &dyn WebhookStore,
    clock: &dyn Clock,
    tenant: &TenantId,
    merchant: Option<&str>,
    enabled: bool,
) -> Result<WebhookConfig, WebhooksLookupError> {
    if !same_merchant(tenant, merchant) {
        return Err(WebhooksLookupError::MerchantNotFound);
    }
    store
        .set_webhooks_enabled(tenant, enabled, clock.now())
        .await?
        .ok_or(WebhooksLookupError::NotConfigured)
}
