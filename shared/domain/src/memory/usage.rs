//! [`MemoryStore`] as the usage port ([`UsageStore`]).
use super::ledger::append_keys;
use super::{check_transaction, ent_key, grant_item_key, item_key, usage_sk, EntKey, MemoryStore};
use crate::ledger::{LogAppend, UsageStatus};
use crate::model::{Entitlement, Grant};
use crate::ports::{StoreError, UsageWrite};
use crate::usage::{CounterDelta, UsageRecord, UsageStore};
use crate::{EntitlementId, TenantId};
use async_trait::async_trait;

/// The transaction's items: the record, the entitlement, the record's hold (written while pending,
/// deleted when settled), the grants, and the log's items.
pub(super) fn usage_transaction(
    record: &UsageRecord,
    grants: &[(Grant, u64)],
    log: Option<&LogAppend>,
    hold: bool,
) -> Result<EntKey, StoreError> {
    let key = ent_key(&record.tenant, &record.entitlement_id);
    let mut items = vec![
        item_key(&key, &format!("U#{}", usage_sk(&record.event_id))),
        item_key(&key, "E"),
    ];
    if hold {
        items.push(item_key(&key, &format!("H#{}", usage_sk(&record.event_id))));
    }
    items.extend(grants.iter().map(|(g, _)| grant_item_key(g)));
    items.extend(append_keys(&key, log));
    check_transaction(&items)?;
    Ok(key)
}

#[async_trait]
impl UsageStore for MemoryStore {
    async fn load_ledger(
        &self,
        tenant: &TenantId,
        id: &EntitlementId,
    ) -> Result<Option<(Entitlement, Vec<Grant>, Vec<UsageRecord>)>, StoreError> {
        let st = self.state();
        let key = ent_key(tenant, id);
        Ok(st.entitlement(&key).map(|e| {
            let grants = st
                .grants
                .get(&key)
                .map(|m| m.values().cloned().collect())
                .unwrap_or_default();
            let usage = st
                .usage
                .get(&key)
                .map(|m| m.values().cloned().collect())
                .unwrap_or_default();
            (e.clone(), grants, usage)
        }))
    }

    async fn get_usage(
        &self,
        tenant: &TenantId,
        entitlement: &EntitlementId,
        event_id: &str,
    ) -> Result<Option<UsageRecord>, StoreError> {
        Ok(self.state().usage(&ent_key(tenant, entitlement), event_id).cloned())
    }

    async fn write_usage(
        &self,
        record: &UsageRecord,
        delta: CounterDelta,
        grants: &[(Grant, u64)],
        log: Option<&LogAppend>,
    ) -> Result<UsageWrite, StoreError> {
        let key = usage_transaction(record, grants, log, record.status == UsageStatus::Pending)?;
        let mut st = self.state();
        if let Some(old) = st.usage(&key, &record.event_id) {
            return Ok(UsageWrite::Exists(old.clone()));
        }
        if !st.is_active(&key) {
            return Ok(UsageWrite::EntitlementUnavailable);
        }
        let applying = st.entitlement(&key).is_some_and(|e| e.applying.is_some());
        if applying
            || !st.grants_unmoved(grants)
            || !st.log_unmoved(&key, log)
            || !st.lease_free(&key, record.recorded_at)
        {
            return Ok(UsageWrite::Stale);
        }
        st.put_usage(record);
        st.add_counters(&key, delta);
        st.append_log(&key, log, record.rollover);
        for (g, _) in grants {
            st.put_grant(g);
        }
        Ok(UsageWrite::Written)
    }

    async fn settle_usage(
        &self,
        record: &UsageRecord,
        delta: CounterDelta,
        grants: &[(Grant, u64)],
        log: Option<&LogAppend>,
    ) -> Result<bool, StoreError> {
        let key = usage_transaction(record, grants, log, true)?;
        let mut st = self.state();
        let pending = st
            .usage(&key, &record.event_id)
            .is_some_and(|u| u.status == crate::ledger::UsageStatus::Pending);
        let applying = st.entitlement(&key).is_some_and(|e| e.applying.is_some());
        if !pending
            || applying
            || st.entitlement(&key).is_none()
            || !st.grants_unmoved(grants)
            || !st.log_unmoved(&key, log)
        {
            return Ok(false);
        }
        st.put_usage(record);
        st.add_counters(&key, delta);
        st.append_log(&key, log, record.rollover);
        for (g, _) in grants {
            st.put_grant(g);
        }
        Ok(true)
    }
}
