//! [`MemoryStore`] as the tenants port ([`TenantStore`]).
use super::{norm_tenant, MemoryStore};
use crate::ports::StoreError;
use crate::tenants::{TenantSettings, TenantStore};
use crate::TenantId;
use async_trait::async_trait;

#[async_trait]
impl TenantStore for MemoryStore {
    async fn get_tenant(&self, tenant: &TenantId) -> Result<Option<TenantSettings>, StoreError> {
        Ok(self.state().tenants.get(tenant).cloned())
    }

    async fn put_tenant_if_absent(&self, settings: &TenantSettings) -> Result<bool, StoreError> {
        let mut st = self.state();
        if st.tenants.contains_key(&settings.tenant) {
            return Ok(false);
        }
        st.tenants.insert(settings.tenant.clone(), norm_tenant(settings));
        Ok(true)
    }

    async fn put_tenant(&self, settings: &TenantSettings) -> Result<(), StoreError> {
        self.state()
            .tenants
            .insert(settings.tenant.clone(), norm_tenant(settings));
        Ok(())
    }
}
