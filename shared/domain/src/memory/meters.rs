//! [`MemoryStore`] as the billable metrics port ([`MetricStore`]).
use super::MemoryStore;
use crate::meters::{BillableMetric, MetricId, MetricStore};
use crate::ports::StoreError;
use crate::TenantId;
use async_trait::async_trait;

#[async_trait]
impl MetricStore for MemoryStore {
    async fn insert_metric(&self, metric: &BillableMetric) -> Result<Option<BillableMetric>, StoreError> {
        let mut st = self.state();
        let type_key = (metric.tenant.clone(), metric.definition.event_type.clone());
        if let Some(existing) = st.metric_types.get(&type_key) {
            let existing = st
                .metrics
                .get(&(metric.tenant.clone(), existing.clone()))
                .ok_or_else(|| StoreError::Corrupt("an event type's metric is missing".to_owned()))?;
            return Ok(Some(existing.clone()));
        }
        let key = (metric.tenant.clone(), metric.id.clone());
        if st.metrics.contains_key(&key) {
            return Err(StoreError::Corrupt("billable metric id collision".to_owned()));
        }
        st.metric_types.insert(type_key, metric.id.clone());
        st.metrics.insert(key, metric.clone());
        Ok(None)
    }

    async fn get_metric(&self, tenant: &TenantId, id: &MetricId) -> Result<Option<BillableMetric>, StoreError> {
        Ok(self.state().metrics.get(&(tenant.clone(), id.clone())).cloned())
    }

    async fn list_metrics(&self, tenant: &TenantId) -> Result<Vec<BillableMetric>, StoreError> {
        Ok(self
            .state()
            .metrics
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|(_, m)| m.clone())
            .collect())
    }
}
