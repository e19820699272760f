//! [`MemoryStore`] as the capacity grants port ([`CapacityStore`]).
use super::{check_transaction, MemoryStore};
use crate::capacity::{CapacityGrant, CapacityStore};
use crate::model::Claim;
use crate::ports::{InsertOutcome, StoreError};
use crate::{CapacityGrantId, TenantId, Timestamp};
use async_trait::async_trait;

#[async_trait]
impl CapacityStore for MemoryStore {
    async fn insert_capacity_grant(
        &self,
        grant: &CapacityGrant,
        claim: Option<&Claim>,
    ) -> Result<InsertOutcome, StoreError> {
        let mut st = self.state();
        let key = (grant.tenant.clone(), grant.fid.clone());
        let exists = st.capacity.contains_key(&key);
        if let Some(outcome) = st.claim_under_tenant(&grant.tenant, claim, exists)? {
            return Ok(outcome);
        }
        st.capacity.insert(key, grant.clone());
        Ok(InsertOutcome::Inserted)
    }

    async fn get_capacity_grant(
        &self,
        tenant: &TenantId,
        fid: &CapacityGrantId,
    ) -> Result<Option<CapacityGrant>, StoreError> {
        Ok(self.state().capacity.get(&(tenant.clone(), fid.clone())).cloned())
    }

    async fn list_capacity_grants(&self, tenant: &TenantId) -> Result<Vec<CapacityGrant>, StoreError> {
        Ok(self
            .state()
            .capacity
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|(_, g)| g.clone())
            .collect())
    }

    async fn delete_capacity_grant(
        &self,
        tenant: &TenantId,
        fid: &CapacityGrantId,
        at: Timestamp,
    ) -> Result<Option<CapacityGrant>, StoreError> {
        let mut st = self.state();
        let Some(g) = st.capacity.get_mut(&(tenant.clone(), fid.clone())) else {
            return Ok(None);
        };
        if g.deleted_at.is_none() {
            g.deleted_at = Some(at);
            g.version += 1;
        }
        Ok(Some(g.clone()))
    }

    async fn resell_capacity_grant(
        &self,
        old: &CapacityGrant,
        expected_version: u64,
        new: &CapacityGrant,
    ) -> Result<bool, StoreError> {
        let old_key = (old.tenant.clone(), old.fid.clone());
        let new_key = (new.tenant.clone(), new.fid.clone());
        check_transaction(&[
            format!("T#{}#CAP#{}", old.tenant, old.fid),
            format!("T#{}#CAP#{}", new.tenant, new.fid),
        ])?;
        let mut st = self.state();
        let unmoved = st
            .capacity
            .get(&old_key)
            .is_some_and(|g| g.version == expected_version && g.deleted_at.is_none());
        if !unmoved || st.capacity.contains_key(&new_key) {
            return Ok(false);
        }
        st.capacity.insert(old_key, old.clone());
        st.capacity.insert(new_key, new.clone());
        Ok(true)
    }
}
