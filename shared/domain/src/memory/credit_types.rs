//! [`MemoryStore`] as the credit types port ([`CreditTypeStore`]).
use super::MemoryStore;
use crate::credits::{CreditType, CreditTypeStore};
use crate::ports::StoreError;
use crate::TenantId;
use async_trait::async_trait;

#[async_trait]
impl CreditTypeStore for MemoryStore {
    async fn list_credit_types(&self, tenant: &TenantId) -> Result<Vec<CreditType>, StoreError> {
        Ok(self
            .state()
            .credit_types
            .get(tenant)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn insert_credit_type(&self, tenant: &TenantId, ct: &CreditType) -> Result<Option<CreditType>, StoreError> {
        let mut st = self.state();
        let name = ct.name.to_lowercase();
        if let Some(existing) = st.credit_type_names.get(tenant).and_then(|m| m.get(&name)) {
            return Ok(Some(existing.clone()));
        }
        if st.credit_types.get(tenant).is_some_and(|m| m.contains_key(&ct.id)) {
            return Err(StoreError::Corrupt("credit type id collision".to_owned()));
        }
        st.credit_type_names
            .entry(tenant.clone())
            .or_default()
            .insert(name, ct.clone());
        st.credit_types
            .entry(tenant.clone())
            .or_default()
            .insert(ct.id.clone(), ct.clone());
        Ok(None)
    }
}
