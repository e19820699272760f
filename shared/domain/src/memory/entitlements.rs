//! [`MemoryStore`] as the entitlements port ([`EntitlementStore`]).
use super::{condition_failed, ent_key, norm_entitlement, MemoryStore, StoredEntitlement};
use crate::entitlement_store::EntitlementStore;
use crate::model::{Entitlement, EntitlementStatus, Grant};
use crate::ports::StoreError;
use crate::{EntitlementId, TenantId, Timestamp};
use async_trait::async_trait;

#[async_trait]
impl EntitlementStore for MemoryStore {
    async fn put_entitlement(&self, entitlement: &Entitlement) -> Result<(), StoreError> {
        let mut st = self.state();
        let key = ent_key(&entitlement.tenant, &entitlement.id);
        if st.entitlements.contains_key(&key) {
            return Err(condition_failed("entitlement"));
        }
        st.entitlements.insert(
            key,
            StoredEntitlement {
                entitlement: norm_entitlement(entitlement),
                scheduled: entitlement.status == EntitlementStatus::Active,
                reset_blocked: None,
                lease: None,
            },
        );
        Ok(())
    }

    async fn get_entitlement(&self, tenant: &TenantId, id: &EntitlementId) -> Result<Option<Entitlement>, StoreError> {
        Ok(self.state().entitlement(&ent_key(tenant, id)).cloned())
    }

    async fn load_entitlement(
        &self,
        tenant: &TenantId,
        id: &EntitlementId,
    ) -> Result<Option<(Entitlement, Vec<Grant>)>, StoreError> {
        let st = self.state();
        let key = ent_key(tenant, id);
        Ok(st.entitlement(&key).map(|e| {
            let grants = st
                .grants
                .get(&key)
                .map(|m| m.values().cloned().collect())
                .unwrap_or_default();
            (e.clone(), grants)
        }))
    }

    async fn list_entitlements(
        &self,
        tenant: &TenantId,
        customer_id: Option<&str>,
    ) -> Result<Vec<Entitlement>, StoreError> {
        // Keys sort by tenant, then id: the index order.
        Ok(self
            .state()
            .entitlements
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|(_, s)| &s.entitlement)
            .filter(|e| customer_id.is_none_or(|c| e.customer_id == c))
            .cloned()
            .collect())
    }

    async fn set_entitlement_status(
        &self,
        tenant: &TenantId,
        id: &EntitlementId,
        status: EntitlementStatus,
        at: Timestamp,
    ) -> Result<Option<Entitlement>, StoreError> {
        let mut st = self.state();
        let Some(stored) = st.entitlements.get_mut(&ent_key(tenant, id)) else {
            return Ok(None);
        };
        let e = &mut stored.entitlement;
        e.status = status;
        if status == EntitlementStatus::Active {
            // As DynamoStore: the entitlement is not put back in the reset schedule.
            e.active_to = None;
        } else {
            e.active_to = e.active_to.or(Some(at));
            stored.scheduled = false;
        }
        Ok(Some(stored.entitlement.clone()))
    }
}
