//! [`MemoryStore`] as the group-commit port ([`UsageQueue`]): the queue and the lease.
use super::ledger::append_keys;
use super::{check_transaction, ent_key, grant_item_key, item_key, usage_sk, EntKey, MemoryStore, State};
use crate::group_commit::{Application, Batch, BatchWrite, BusyEntitlements, QueueState, Step, UsageQueue};
use crate::kernel::StoreError;
use crate::ledger::UsageStatus;
use crate::usage::UsageRecord;
use crate::{EntitlementId, TenantId, Timestamp};
use async_trait::async_trait;

fn queue_key(r: &UsageRecord) -> (Timestamp, String) {
    (r.recorded_at, usage_sk(&r.event_id))
}

impl State {
    /// Nobody holds a live lease on the entitlement at `now`.
    pub(super) fn lease_free(&self, key: &EntKey, now: Timestamp) -> bool {
        self.entitlements
            .get(key)
            .and_then(|s| s.lease.as_ref())
            .is_none_or(|(_, until)| *until < now)
    }

    fn dequeue(&mut self, key: &EntKey, requests: &[(String, Timestamp)]) {
        if let Some(q) = self.queues.get_mut(key) {
            for (event, at) in requests {
                q.remove(&(*at, usage_sk(event)));
            }
        }
    }

    fn lease_held_by(&self, key: &EntKey, owner: &str) -> bool {
        self.entitlements
            .get(key)
            .and_then(|s| s.lease.as_ref())
            .is_some_and(|(o, _)| o == owner)
    }
}

#[async_trait]
impl UsageQueue for MemoryStore {
    fn busy(&self) -> &BusyEntitlements {
        &self.busy
    }

    fn combiner(&self) -> &crate::combining::Combiner {
        &self.combiner
    }

    async fn enqueue_usage(&self, request: &UsageRecord) -> Result<(), StoreError> {
        let key = ent_key(&request.tenant, &request.entitlement_id);
        self.state()
            .queues
            .entry(key)
            .or_default()
            .entry(queue_key(request))
            .or_insert_with(|| request.clone());
        Ok(())
    }

    async fn queued_usage(
        &self,
        tenant: &TenantId,
        id: &EntitlementId,
        limit: usize,
    ) -> Result<Vec<UsageRecord>, StoreError> {
        Ok(self
            .state()
            .queues
            .get(&ent_key(tenant, id))
            .map(|q| q.values().take(limit).cloned().collect())
            .unwrap_or_default())
    }

    async fn queue_state(&self, request: &UsageRecord, now: Timestamp) -> Result<QueueState, StoreError> {
        let st = self.state();
        let key = ent_key(&request.tenant, &request.entitlement_id);
        Ok(QueueState {
            record: st.usage(&key, &request.event_id).cloned(),
            queued: st.queues.get(&key).is_some_and(|q| q.contains_key(&queue_key(request))),
            lease_free: st.lease_free(&key, now),
            batch_of: st
                .batch_of
                .get(&(key.clone(), request.event_id.clone()))
                .copied()
                .unwrap_or(1),
        })
    }

    async fn applied_usage(&self, request: &UsageRecord) -> Result<Option<(UsageRecord, usize)>, StoreError> {
        let st = self.state();
        let key = ent_key(&request.tenant, &request.entitlement_id);
        let batch_of = st
            .batch_of
            .get(&(key.clone(), request.event_id.clone()))
            .copied()
            .unwrap_or(1);
        Ok(st.usage(&key, &request.event_id).map(|r| (r.clone(), batch_of)))
    }

    async fn withdraw_usage(&self, request: &UsageRecord) -> Result<bool, StoreError> {
        let key = ent_key(&request.tenant, &request.entitlement_id);
        Ok(self
            .state()
            .queues
            .get_mut(&key)
            .and_then(|q| q.remove(&queue_key(request)))
            .is_some())
    }

    async fn take_lease(
        &self,
        tenant: &TenantId,
        id: &EntitlementId,
        owner: &str,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let key = ent_key(tenant, id);
        let mut st = self.state();
        if !st.lease_free(&key, now) {
            return Ok(false);
        }
        Ok(match st.entitlements.get_mut(&key) {
            Some(s) => {
                s.lease = Some((owner.to_owned(), until));
                s.entitlement.lease_until = Some(until);
                true
            }
            None => false,
        })
    }

    async fn release_lease(&self, tenant: &TenantId, id: &EntitlementId, owner: &str) -> Result<(), StoreError> {
        let key = ent_key(tenant, id);
        let mut st = self.state();
        if st.lease_held_by(&key, owner) {
            if let Some(s) = st.entitlements.get_mut(&key) {
                s.lease = None;
                s.entitlement.lease_until = None;
            }
        }
        Ok(())
    }

    async fn write_batch(&self, batch: &Batch) -> Result<BatchWrite, StoreError> {
        let key = ent_key(&batch.tenant, &batch.entitlement_id);
        let mut items = vec![item_key(&key, "E")];
        for r in &batch.records {
            items.push(item_key(&key, &format!("U#{}", usage_sk(&r.event_id))));
            if r.status == UsageStatus::Pending {
                items.push(item_key(&key, &format!("H#{}", usage_sk(&r.event_id))));
            }
        }
        items.extend(batch.grants.iter().map(|(g, _)| grant_item_key(g)));
        items.extend(append_keys(&key, batch.log.as_ref()));
        check_transaction(&items)?;
        let mut st = self.state();
        if batch.records.is_empty() {
            // Nothing to apply: only the dropped requests are deleted (no transaction).
            st.dequeue(&key, &batch.dequeued);
            return Ok(BatchWrite::Written);
        }
        // In DynamoStore's order: the lease, then a record that exists, then anything else moved.
        if !st.lease_held_by(&key, &batch.owner) {
            return Ok(BatchWrite::LeaseLost);
        }
        if let Some(r) = batch.records.iter().find(|r| st.usage(&key, &r.event_id).is_some()) {
            return Ok(BatchWrite::Exists(r.event_id.clone()));
        }
        let applying = st.entitlement(&key).and_then(|e| e.applying.clone());
        let active_if_needed = batch.finishing.is_some() || st.is_active(&key);
        if applying != batch.finishing
            || !active_if_needed
            || !st.grants_unmoved(&batch.grants)
            || !st.log_unmoved(&key, batch.log.as_ref())
        {
            return Ok(BatchWrite::Stale);
        }
        for r in &batch.records {
            st.put_usage(r);
            st.batch_of
                .insert((key.clone(), r.event_id.clone()), batch.records.len());
        }
        for (g, _) in &batch.grants {
            st.put_grant(g);
        }
        st.add_counters(&key, batch.delta);
        st.append_log(&key, batch.log.as_ref(), false);
        if let Some(s) = st.entitlements.get_mut(&key) {
            s.lease = Some((batch.owner.clone(), batch.lease_until));
            s.entitlement.lease_until = Some(batch.lease_until);
            s.entitlement.applying = None;
        }
        if let Some(event) = &batch.finishing {
            st.applications.remove(&(key.clone(), event.clone()));
        }
        st.dequeue(&key, &batch.dequeued);
        Ok(BatchWrite::Written)
    }

    async fn write_step(&self, step: &Step) -> Result<BatchWrite, StoreError> {
        let record = &step.application.record;
        let key = ent_key(&record.tenant, &record.entitlement_id);
        let mut items = vec![
            item_key(&key, "E"),
            item_key(&key, &format!("A#{}", usage_sk(&record.event_id))),
        ];
        if step.application.done == 0 {
            items.push(item_key(&key, &format!("U#{}", usage_sk(&record.event_id))));
        }
        items.extend(step.grants.iter().map(|(g, _)| grant_item_key(g)));
        check_transaction(&items)?;
        let mut st = self.state();
        let app_key = (key.clone(), record.event_id.clone());
        if !st.lease_held_by(&key, &step.owner) {
            return Ok(BatchWrite::LeaseLost);
        }
        let stored = st.applications.get(&app_key).map(|a| a.done);
        let recorded = st.usage(&key, &record.event_id).is_some();
        match (step.application.done, stored) {
            (0, Some(_)) => return Ok(BatchWrite::Exists(record.event_id.clone())),
            (0, None) if recorded => return Ok(BatchWrite::Exists(record.event_id.clone())),
            (0, None) => {}
            (done, Some(d)) if d == done => {}
            _ => return Ok(BatchWrite::Stale),
        }
        let applying = st.entitlement(&key).and_then(|e| e.applying.clone());
        let marked_ok = if step.application.done == 0 {
            applying.is_none() && st.is_active(&key)
        } else {
            applying.as_deref() == Some(record.event_id.as_str())
        };
        if !marked_ok || !st.grants_unmoved(&step.grants) {
            return Ok(BatchWrite::Stale);
        }
        for (g, _) in &step.grants {
            st.put_grant(g);
        }
        st.applications.insert(
            app_key,
            Application {
                record: record.clone(),
                done: step.application.done + 1,
            },
        );
        if let Some(s) = st.entitlements.get_mut(&key) {
            s.lease = Some((step.owner.clone(), step.lease_until));
            s.entitlement.lease_until = Some(step.lease_until);
            s.entitlement.applying = Some(record.event_id.clone());
        }
        Ok(BatchWrite::Written)
    }

    async fn load_application(
        &self,
        tenant: &TenantId,
        id: &EntitlementId,
        event_id: &str,
    ) -> Result<Option<Application>, StoreError> {
        Ok(self
            .state()
            .applications
            .get(&(ent_key(tenant, id), event_id.to_owned()))
            .cloned())
    }
}
