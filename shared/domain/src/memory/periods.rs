//! [`MemoryStore`] as the periods port ([`PeriodStore`]).
use super::{check_transaction, ent_key, grant_item_key, item_key, query_limit, usage_sk, MemoryStore};
use crate::model::Entitlement;
use crate::periods::{PeriodStore, Reset};
use crate::ports::StoreError;
use crate::{EntitlementId, TenantId, Timestamp};
use async_trait::async_trait;

#[async_trait]
impl PeriodStore for MemoryStore {
    async fn entitlements_due_for_reset(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<(TenantId, EntitlementId)>, StoreError> {
        let limit = query_limit(limit)?;
        let st = self.state();
        let mut due: Vec<(String, &Entitlement)> = st
            .entitlements
            .values()
            .filter(|s| s.scheduled && s.entitlement.current_period_end <= now)
            .map(|s| {
                let e = &s.entitlement;
                // The index's sort key: period end, tenant, id.
                (
                    format!("{}#{}#{}", e.current_period_end.to_storage(), e.tenant, e.id),
                    e,
                )
            })
            .collect();
        due.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(due
            .into_iter()
            .take(limit)
            .map(|(_, e)| (e.tenant.clone(), e.id.clone()))
            .collect())
    }

    async fn reset_period(&self, entitlement: &Entitlement, reset: &Reset) -> Result<bool, StoreError> {
        let key = ent_key(&entitlement.tenant, &entitlement.id);
        let mut items = vec![item_key(&key, "E")];
        items.extend(reset.grants.iter().map(|(g, _)| grant_item_key(g)));
        if let Some(r) = &reset.record {
            items.push(item_key(
                &ent_key(&r.tenant, &r.entitlement_id),
                &format!("U#{}", usage_sk(&r.event_id)),
            ));
        }
        items.extend(super::ledger::append_keys(&key, reset.log.as_ref()));
        check_transaction(&items)?;
        let mut st = self.state();
        let unmoved = st
            .entitlement(&key)
            .is_some_and(|e| e.current_period_end == reset.old_end && e.is_active() && e.applying.is_none());
        let record_new = reset
            .record
            .as_ref()
            .is_none_or(|r| st.usage(&ent_key(&r.tenant, &r.entitlement_id), &r.event_id).is_none());
        if !unmoved || !record_new || !st.grants_unmoved(&reset.grants) || !st.log_unmoved(&key, reset.log.as_ref()) {
            return Ok(false);
        }
        if let Some(s) = st.entitlements.get_mut(&key) {
            let e = &mut s.entitlement;
            e.current_period_start = reset.start;
            e.current_period_end = reset.end;
            e.usage_in_period = rust_decimal::Decimal::ZERO;
            e.overage = rust_decimal::Decimal::ZERO;
        }
        for (g, _) in &reset.grants {
            st.put_grant(g);
        }
        if let Some(r) = &reset.record {
            st.put_usage(r);
        }
        st.append_log(&key, reset.log.as_ref(), true);
        Ok(true)
    }

    async fn block_period_reset(&self, tenant: &TenantId, id: &EntitlementId, reason: &str) -> Result<(), StoreError> {
        if let Some(s) = self.state().entitlements.get_mut(&ent_key(tenant, id)) {
            s.scheduled = false;
            s.reset_blocked = Some(reason.chars().take(500).collect());
        }
        Ok(())
    }
}
