//! [`MemoryStore`] as the webhook configuration port ([`WebhookStore`]).
use super::MemoryStore;
use crate::ports::StoreError;
use crate::webhooks::{WebhookConfig, WebhookStore};
use crate::{TenantId, Timestamp};
use async_trait::async_trait;

#[async_trait]
impl WebhookStore for MemoryStore {
    async fn insert_webhook_config(&self, config: &WebhookConfig) -> Result<bool, StoreError> {
        let mut st = self.state();
        if st.webhooks.contains_key(&config.tenant) {
            return Ok(false);
        }
        st.webhooks.insert(config.tenant.clone(), config.clone());
        Ok(true)
    }

    async fn get_webhook_config(&self, tenant: &TenantId) -> Result<Option<WebhookConfig>, StoreError> {
        Ok(self.state().webhooks.get(tenant).cloned())
    }

    async fn set_webhooks_enabled(
        &self,
        tenant: &TenantId,
        enabled: bool,
        at: Timestamp,
    ) -> Result<Option<WebhookConfig>, StoreError> {
        Ok(self.state().webhooks.get_mut(tenant).map(|c| {
            c.enabled = enabled;
            c.updated_at = at;
            c.clone()
        }))
    }
}
