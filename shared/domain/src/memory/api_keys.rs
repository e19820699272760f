//! [`MemoryStore`] as the API keys port ([`ApiKeyStore`]).
use super::{condition_failed, MemoryStore};
use crate::auth::ApiKeyStore;
use crate::model::ApiKeyRecord;
use crate::ports::StoreError;
use crate::{TenantId, Timestamp};
use async_trait::async_trait;

#[async_trait]
impl ApiKeyStore for MemoryStore {
    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        Ok(self.state().api_keys.get(key_hash).cloned())
    }

    async fn put_api_key(&self, record: &ApiKeyRecord) -> Result<(), StoreError> {
        let mut st = self.state();
        if st.api_keys.contains_key(&record.key_hash) {
            return Err(condition_failed("API key"));
        }
        // As DynamoStore: a put does not write `last_used_at`; only touch_api_key does.
        let stored = ApiKeyRecord {
            last_used_at: None,
            ..record.clone()
        };
        st.api_keys.insert(record.key_hash.clone(), stored);
        Ok(())
    }

    async fn list_api_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let mut keys: Vec<ApiKeyRecord> = self
            .state()
            .api_keys
            .values()
            .filter(|k| &k.tenant == tenant)
            .cloned()
            .collect();
        // The index's sort key is the key id.
        keys.sort_by(|a, b| a.key_id().cmp(&b.key_id()).then_with(|| a.key_hash.cmp(&b.key_hash)));
        Ok(keys)
    }

    async fn expire_api_key(&self, tenant: &TenantId, key_hash: &str, at: Timestamp) -> Result<bool, StoreError> {
        let mut st = self.state();
        match st.api_keys.get_mut(key_hash) {
            Some(k) if &k.tenant == tenant => {
                if k.expires_at.is_none_or(|e| e > at) {
                    k.expires_at = Some(at);
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn touch_api_key(&self, key_hash: &str, now: Timestamp, since: Timestamp) -> Result<(), StoreError> {
        if let Some(k) = self.state().api_keys.get_mut(key_hash) {
            if k.last_used_at.is_none_or(|t| t < since) {
                k.last_used_at = Some(now);
            }
        }
        Ok(())
    }
}
