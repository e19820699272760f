//! [`MemoryStore`] as the ingested events port ([`EventStore`]).
use super::MemoryStore;
use crate::ingest::{EventStore, IngestedEvent};
use crate::meters::BillableMetric;
use crate::ports::StoreError;
use crate::TenantId;
use async_trait::async_trait;

#[async_trait]
impl EventStore for MemoryStore {
    async fn insert_event(&self, event: &IngestedEvent) -> Result<Option<IngestedEvent>, StoreError> {
        let mut st = self.state();
        let key = (event.tenant.clone(), event.dedup_key());
        if let Some(existing) = st.events.get(&key) {
            return Ok(Some(existing.clone()));
        }
        st.events.insert(key, event.clone());
        Ok(None)
    }

    async fn set_event_outcome(&self, event: &IngestedEvent) -> Result<(), StoreError> {
        let mut st = self.state();
        let stored = st
            .events
            .values_mut()
            .find(|e| e.tenant == event.tenant && e.id == event.id)
            .ok_or_else(|| StoreError::Corrupt(format!("event {} is missing", event.id)))?;
        stored.outcome = event.outcome.clone();
        Ok(())
    }

    async fn metric_for_type(&self, tenant: &TenantId, event_type: &str) -> Result<Option<BillableMetric>, StoreError> {
        let st = self.state();
        Ok(st
            .metric_types
            .get(&(tenant.clone(), event_type.to_owned()))
            .and_then(|id| st.metrics.get(&(tenant.clone(), id.clone())))
            .cloned())
    }
}
