//! [`MemoryStore`] as the bounded-reads port ([`LedgerStore`]), and the log its usage writes append.
use super::{ent_key, item_key, EntKey, MemoryStore, State};
use crate::balances::{LedgerStore, Present};
use crate::kernel::StoreError;
use crate::ledger::{self, Bound, Checkpoint, Day, LogAppend, LogEntry, LogHead, Start, UsageStatus};
use crate::{EntitlementId, TenantId, Timestamp};
use async_trait::async_trait;
use std::collections::BTreeMap;

/// An entitlement's log, as DynamoStore keeps it in the entitlement's partition.
#[derive(Debug, Default)]
pub(super) struct Log {
    entries: Vec<LogEntry>,
    /// The sequence numbers of the late entries.
    late: Vec<u64>,
    checkpoints: Vec<Checkpoint>,
    days: BTreeMap<Timestamp, Day>,
}

/// The items a log append adds to a transaction (for its size and key checks).
pub(super) fn append_keys(key: &EntKey, log: Option<&LogAppend>) -> Vec<String> {
    let Some(log) = log else { return Vec::new() };
    let mut keys = Vec::new();
    for group in log.groups() {
        if let Some((first, _)) = group.first() {
            keys.push(item_key(key, &format!("L#{}", first.seq)));
        }
    }
    // Per day, the grants drawn on: how many items the day's sums take.
    let mut days: BTreeMap<Timestamp, std::collections::BTreeSet<&crate::GrantId>> = BTreeMap::new();
    for (e, late) in &log.entries {
        if *late {
            keys.push(item_key(key, &format!("LATE#{}", e.seq)));
        }
        if !e.drawn.is_empty() {
            days.entry(e.occurred_at.day_start())
                .or_default()
                .extend(e.drawn.iter().map(|d| &d.grant_id));
        }
    }
    for (d, grants) in &days {
        for part in 0..ledger::day_items(grants.len()) {
            keys.push(item_key(key, &format!("D#{}#{part}", d.to_storage())));
        }
    }
    if let Some(c) = &log.checkpoint {
        keys.push(item_key(key, &format!("K#{}", c.seq)));
    }
    keys
}

impl State {
    /// The entitlement's log is where the append read it (or nothing is appended).
    pub(super) fn log_unmoved(&self, key: &EntKey, log: Option<&LogAppend>) -> bool {
        log.is_none_or(|l| {
            self.entitlement(key)
                .and_then(|e| e.log.as_ref())
                .is_some_and(|h| h.seq == l.read_seq)
        })
    }

    /// Writes the append: the entry (and its late copy), the checkpoint, the day's usage, the head.
    pub(super) fn append_log(&mut self, key: &EntKey, log: Option<&LogAppend>, rollover: bool) {
        let Some(log) = log else { return };
        let stored = self.logs.entry(key.clone()).or_default();
        for (e, late) in &log.entries {
            stored.entries.push(e.clone());
            if *late {
                stored.late.push(e.seq);
            }
            stored
                .days
                .entry(e.occurred_at.day_start())
                .or_insert_with(|| Day::of(e.occurred_at))
                .add(&e.drawn, rollover);
        }
        if let Some(c) = &log.checkpoint {
            stored.checkpoints.push(c.clone());
        }
        if let Some(s) = self.entitlements.get_mut(key) {
            s.entitlement.log = Some(log.head.clone());
        }
    }
}

#[async_trait]
impl LedgerStore for MemoryStore {
    async fn load_present(&self, tenant: &TenantId, id: &EntitlementId) -> Result<Option<Present>, StoreError> {
        let st = self.state();
        let key = ent_key(tenant, id);
        Ok(st.entitlement(&key).map(|e| Present {
            entitlement: e.clone(),
            grants: st
                .grants
                .get(&key)
                .map(|m| m.values().cloned().collect())
                .unwrap_or_default(),
            holds: st
                .usage
                .get(&key)
                .map(|m| {
                    m.values()
                        .filter(|u| u.status == UsageStatus::Pending)
                        .cloned()
                        .collect()
                })
                .unwrap_or_default(),
        }))
    }

    async fn checkpoint_after(
        &self,
        tenant: &TenantId,
        id: &EntitlementId,
        bound: Bound,
    ) -> Result<Option<Checkpoint>, StoreError> {
        let st = self.state();
        Ok(st.logs.get(&ent_key(tenant, id)).and_then(|l| {
            l.checkpoints
                .iter()
                .find(|c| match bound {
                    Bound::Through(t) => c.at > t,
                    Bound::Before(t) => c.at >= t,
                })
                .cloned()
        }))
    }

    /// The reference read ([`ledger::start_for`] over the whole log); `after` is not needed.
    async fn read_log(
        &self,
        tenant: &TenantId,
        id: &EntitlementId,
        head: &LogHead,
        bound: Bound,
        _after: Option<Checkpoint>,
    ) -> Result<(Start, Vec<LogEntry>), StoreError> {
        let st = self.state();
        let Some(log) = st.logs.get(&ent_key(tenant, id)) else {
            return Ok((Start::Last(Checkpoint::origin()), Vec::new()));
        };
        let written: Vec<LogEntry> = log.entries.iter().filter(|e| e.seq <= head.seq).cloned().collect();
        let checkpoints: Vec<Checkpoint> = log.checkpoints.iter().filter(|c| c.seq <= head.seq).cloned().collect();
        let start = ledger::start_for(bound, &checkpoints, &written);
        let later = match &start {
            Start::Last(c) => written.iter().filter(|e| e.seq > c.seq).cloned().collect(),
            Start::After { checkpoint, .. } => written
                .iter()
                .filter(|e| e.seq > checkpoint.seq && log.late.contains(&e.seq) && bound.admits(e.occurred_at))
                .cloned()
                .collect(),
        };
        Ok((start, later))
    }

    async fn load_present_with_days(
        &self,
        tenant: &TenantId,
        id: &EntitlementId,
    ) -> Result<Option<(Present, Vec<Day>)>, StoreError> {
        let Some(present) = self.load_present(tenant, id).await? else {
            return Ok(None);
        };
        let days = self
            .state()
            .logs
            .get(&ent_key(tenant, id))
            .map(|l| l.days.values().cloned().collect())
            .unwrap_or_default();
        Ok(Some((present, days)))
    }
}
