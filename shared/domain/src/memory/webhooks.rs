//! [`MemoryStore`] as the webhook configuration port ([`WebhookStore`]).
use super::MemoryStore;
use crate::ports::StoreError;
use crate::webhook_endpoints::{EndpointId, WebhookEndpoint};
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

#[async_trait]
impl crate::webhook_endpoints::EndpointStore for MemoryStore {
    async fn insert_endpoint(&self, e: &WebhookEndpoint) -> Result<(), StoreError> {
        let mut st = self.state();
        let key = (e.tenant.clone(), e.id.clone());
        if st.webhook_endpoints.contains_key(&key) {
            return Err(StoreError::Corrupt("endpoint id collision".to_owned()));
        }
        st.webhook_endpoints.insert(key, e.clone());
        Ok(())
    }

    async fn get_endpoint(&self, tenant: &TenantId, id: &EndpointId) -> Result<Option<WebhookEndpoint>, StoreError> {
        Ok(self
            .state()
            .webhook_endpoints
            .get(&(tenant.clone(), id.clone()))
            .cloned())
    }

    async fn list_endpoints(&self, tenant: &TenantId) -> Result<Vec<WebhookEndpoint>, StoreError> {
        Ok(self
            .state()
            .webhook_endpoints
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|(_, e)| e.clone())
            .collect())
    }

    async fn replace_endpoint(&self, e: &WebhookEndpoint) -> Result<bool, StoreError> {
        let mut st = self.state();
        let key = (e.tenant.clone(), e.id.clone());
        match st.webhook_endpoints.get(&key) {
            Some(old) if old.version + 1 == e.version => {
                st.webhook_endpoints.insert(key, e.clone());
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete_endpoint(&self, tenant: &TenantId, id: &EndpointId) -> Result<bool, StoreError> {
        Ok(self
            .state()
            .webhook_endpoints
            .remove(&(tenant.clone(), id.clone()))
            .is_some())
    }
}

impl MemoryStore {
    /// Every webhook message recorded so far, oldest first (what the table's stream would carry).
    pub fn outbox(&self) -> Vec<crate::webhook_messages::WebhookMessage> {
        self.state().outbox.clone()
    }
}

#[async_trait]
impl crate::webhook_delivery::DeliveryStore for MemoryStore {
    async fn subscribers(&self, tenant: &TenantId) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let st = self.state();
        if !st.webhooks.get(tenant).is_some_and(|c| c.enabled) {
            return Ok(Vec::new());
        }
        Ok(st
            .webhook_endpoints
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|(_, e)| e.clone())
            .collect())
    }

    async fn get_message(
        &self,
        tenant: &TenantId,
        id: &crate::webhook_messages::MessageId,
    ) -> Result<Option<crate::webhook_messages::WebhookMessage>, StoreError> {
        Ok(self
            .state()
            .outbox
            .iter()
            .find(|m| &m.tenant == tenant && &m.id == id)
            .cloned())
    }

    async fn record_attempt(&self, attempt: &crate::webhook_delivery::MessageAttempt) -> Result<(), StoreError> {
        self.state().attempts.push(attempt.clone());
        Ok(())
    }

    async fn attempts_by_endpoint(
        &self,
        tenant: &TenantId,
        endpoint: &EndpointId,
        before: Option<&crate::AttemptId>,
        limit: usize,
    ) -> Result<(Vec<crate::webhook_delivery::MessageAttempt>, bool), StoreError> {
        let st = self.state();
        let mut found: Vec<_> = st
            .attempts
            .iter()
            .filter(|a| &a.tenant == tenant && &a.endpoint_id == endpoint)
            .filter(|a| before.is_none_or(|b| a.id < *b))
            .cloned()
            .collect();
        found.sort_by(|a, b| b.id.cmp(&a.id));
        let more = found.len() > limit;
        found.truncate(limit);
        Ok((found, more))
    }
}

#[async_trait]
impl crate::webhook_portal::PortalStore for MemoryStore {
    async fn insert_portal_link(&self, link: &crate::webhook_portal::PortalLink) -> Result<(), StoreError> {
        self.state().portal_links.insert(link.token_hash.clone(), link.clone());
        Ok(())
    }

    async fn find_portal_link(
        &self,
        token_hash: &str,
    ) -> Result<Option<crate::webhook_portal::PortalLink>, StoreError> {
        Ok(self.state().portal_links.get(token_hash).cloned())
    }
}
