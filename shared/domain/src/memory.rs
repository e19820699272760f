//! [`MemoryStore`]: every storage port in process memory.
//!
//! **For unit tests of domain rules only.** It lets the domain's operations (idempotent creates,
//! burn-down, holds, resets, plan recurrence, purchases...) be tested in milliseconds, without a
//! database. It never replaces the suites that run against DynamoDB Local (`tests/api`): those
//! test the real adapter, its key layout, its transactions and its indexes.
//!
//! It behaves as `grants_dynamo::DynamoStore` does, observably: the same conditional writes and
//! outcomes (an existing claim is returned, and decides before the parent's status; a write
//! conditioned on a version or a status writes nothing when the condition fails; a transaction is
//! all or nothing, and one of more than 100 items is refused, as DynamoDB refuses it), the same
//! orderings (listings by id, an entitlement's usage records by the hash of their event ids, the
//! schedule indexes by time), the same `Limit` semantics for the index reads that take one (a read
//! that stops at its limit says "maybe more"; the customer index counts the cursor's own grant),
//! the same quirks (a put of an API key does not write `last_used_at`; an entitlement made active
//! again does not return to the reset schedule), and numbers read back normalised as DynamoDB
//! stores them (`1.50` reads back as `1.5`). Index reads that may lag in DynamoDB are consistent
//! here. Two known differences from DynamoDB Local, where it differs from DynamoDB: a counter sum
//! (`ADD`) keeps its operands' scale there (`3.00`), and two writes to one item in a transaction
//! fail as a condition there (here, as in DynamoDB, the request is refused). The contract suite
//! ([`crate::contract`]) holds both stores to the same behaviour.
//!
//! One mutex guards everything: each port call is one atomic step, as each DynamoDB request is.
use crate::auth::ApiKeyStore;
use crate::capacity::{CapacityGrant, CapacityStore};
use crate::credits::{CreditType, CreditTypeStore, GrantEdit};
use crate::entitlements::EntitlementStore;
use crate::grants::GrantStore;
use crate::model::{ApiKeyRecord, Claim, Entitlement, EntitlementStatus, Grant};
use crate::periods::{PeriodStore, Reset};
use crate::plans::{CreditPlan, PlanScope, PlanStatus, PlanStore};
use crate::ports::{EditOutcome, InsertOutcome, PlanApply, StoreError, UsageWrite};
use crate::purchases::{Invoice, InvoiceStatus, PurchaseStore};
use crate::tenants::{TenantSettings, TenantStore};
use crate::usage::{CounterDelta, UsageRecord, UsageStore};
use crate::{CapacityGrantId, EntitlementId, GrantId, InvoiceId, SessionId, TenantId, Timestamp};
use async_trait::async_trait;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// DynamoDB's limit on the items of one transaction.
const MAX_TRANSACTION_ITEMS: usize = 100;

/// Every storage port in memory (see the module documentation).
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// An entitlement's partition: where its grants, usage, claims and plan progress live.
type EntKey = (TenantId, EntitlementId);

/// Where a claim lives: an entitlement's partition (grants, purchases) or the tenant's (capacity
/// grants, credit plans).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Partition {
    Tenant(TenantId),
    Entitlement(EntKey),
}

#[derive(Debug)]
struct StoredEntitlement {
    entitlement: Entitlement,
    /// In the period-reset schedule (DynamoDB: has its GSI5 keys). Set when written active; removed
    /// when the status leaves active, or the reset is blocked; never restored by a status change.
    scheduled: bool,
    /// Why it was taken out of the schedule.
    reset_blocked: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    /// By key hash.
    api_keys: BTreeMap<String, ApiKeyRecord>,
    tenants: BTreeMap<TenantId, TenantSettings>,
    /// Per tenant, by id.
    credit_types: BTreeMap<TenantId, BTreeMap<String, CreditType>>,
    /// Per tenant, by lower-cased name: what holds names unique.
    credit_type_names: BTreeMap<TenantId, BTreeMap<String, CreditType>>,
    entitlements: BTreeMap<EntKey, StoredEntitlement>,
    /// Per entitlement partition, by id.
    grants: BTreeMap<EntKey, BTreeMap<GrantId, Grant>>,
    /// Per entitlement partition, by the hash of the event id (the record's sort key).
    usage: BTreeMap<EntKey, BTreeMap<String, UsageRecord>>,
    /// (partition, scope, key).
    claims: BTreeMap<(Partition, String, String), Claim>,
    /// (entitlement partition, plan id) -> the next period to apply.
    plan_progress: BTreeMap<(EntKey, String), u64>,
    capacity: BTreeMap<(TenantId, CapacityGrantId), CapacityGrant>,
    plans: BTreeMap<(TenantId, String), CreditPlan>,
    invoices: BTreeMap<(TenantId, InvoiceId), Invoice>,
    sessions: BTreeMap<SessionId, (TenantId, InvoiceId)>,
}

/// The failure DynamoDB reports for a plain conditional write whose condition failed and that the
/// adapter does not turn into an outcome (a put of an item that exists).
fn condition_failed(what: &str) -> StoreError {
    StoreError::Unavailable(format!("ConditionalCheckFailedException: {what} exists"))
}

/// The sort key of a usage record: the hash of its event id (records list in this order).
fn usage_sk(event_id: &str) -> String {
    hex::encode(Sha256::digest(event_id.as_bytes()))
}

fn ent_key(tenant: &TenantId, id: &EntitlementId) -> EntKey {
    (tenant.clone(), id.clone())
}

fn grant_key(g: &Grant) -> EntKey {
    ent_key(&g.tenant, &g.entitlement_id)
}

/// What DynamoDB refuses before evaluating a transaction's conditions: more than 100 items, or two
/// items on one key (`ValidationException`, reported by the adapter as [`StoreError::Rejected`]).
fn check_transaction(keys: &[String]) -> Result<(), StoreError> {
    if keys.len() > MAX_TRANSACTION_ITEMS {
        return Err(StoreError::Rejected(format!(
            "a transaction of {} items is over DynamoDB's {MAX_TRANSACTION_ITEMS}",
            keys.len()
        )));
    }
    let distinct: BTreeSet<&String> = keys.iter().collect();
    if distinct.len() != keys.len() {
        return Err(StoreError::Rejected(
            "Transaction request cannot include multiple operations on one item".to_owned(),
        ));
    }
    Ok(())
}

fn item_key(partition: &EntKey, sort: &str) -> String {
    format!("T#{}#E#{}/{sort}", partition.0, partition.1)
}

fn grant_item_key(g: &Grant) -> String {
    item_key(&grant_key(g), &format!("G#{}", g.id))
}

/// A `Limit` of an index read: DynamoDB refuses 0 (and counts at most `i32::MAX`).
fn query_limit(limit: usize) -> Result<usize, StoreError> {
    if limit == 0 {
        return Err(StoreError::Rejected(
            "Limit: Member must have value greater than or equal to 1".to_owned(),
        ));
    }
    Ok(limit.min(usize::try_from(i32::MAX).unwrap_or(usize::MAX)))
}

// ---- numbers as DynamoDB returns them --------------------------------------------------------

fn norm_grant(g: &Grant) -> Grant {
    let mut g = g.clone();
    g.remaining = g.remaining.normalize();
    g.reserved = g.reserved.normalize();
    g.details.paid_amount = g.details.paid_amount.map(|d| d.normalize());
    g
}

fn norm_entitlement(e: &Entitlement) -> Entitlement {
    let mut e = e.clone();
    e.usage_in_period = e.usage_in_period.normalize();
    e.overage = e.overage.normalize();
    e
}

fn norm_usage(u: &UsageRecord) -> UsageRecord {
    let mut u = u.clone();
    u.amount = u.amount.normalize();
    u.overage = u.overage.normalize();
    for d in &mut u.deductions {
        d.amount = d.amount.normalize();
    }
    u
}

fn norm_tenant(t: &TenantSettings) -> TenantSettings {
    let mut t = t.clone();
    t.min_price_per_credit = t.min_price_per_credit.map(|d| d.normalize());
    t
}

impl State {
    fn entitlement(&self, key: &EntKey) -> Option<&Entitlement> {
        self.entitlements.get(key).map(|s| &s.entitlement)
    }

    fn is_active(&self, key: &EntKey) -> bool {
        self.entitlement(key).is_some_and(Entitlement::is_active)
    }

    fn grant(&self, key: &EntKey, id: &GrantId) -> Option<&Grant> {
        self.grants.get(key).and_then(|m| m.get(id))
    }

    fn grant_exists(&self, g: &Grant) -> bool {
        self.grant(&grant_key(g), &g.id).is_some()
    }

    fn put_grant(&mut self, g: &Grant) {
        self.grants
            .entry(grant_key(g))
            .or_default()
            .insert(g.id.clone(), norm_grant(g));
    }

    fn usage(&self, key: &EntKey, event_id: &str) -> Option<&UsageRecord> {
        self.usage.get(key).and_then(|m| m.get(&usage_sk(event_id)))
    }

    fn put_usage(&mut self, u: &UsageRecord) {
        self.usage
            .entry(ent_key(&u.tenant, &u.entitlement_id))
            .or_default()
            .insert(usage_sk(&u.event_id), norm_usage(u));
    }

    /// Every grant is stored at the version it was read at (`(new state, version read)`).
    fn grants_unmoved(&self, grants: &[(Grant, u64)]) -> bool {
        grants
            .iter()
            .all(|(g, read)| self.grant(&grant_key(g), &g.id).is_some_and(|s| s.version == *read))
    }

    fn add_counters(&mut self, key: &EntKey, delta: CounterDelta) {
        if let Some(s) = self.entitlements.get_mut(key) {
            let e = &mut s.entitlement;
            e.usage_in_period = (e.usage_in_period + delta.usage).normalize();
            e.overage = (e.overage + delta.overage).normalize();
        }
    }

    /// The checks of a claimed insert into an entitlement's partition, in DynamoStore's order: an
    /// existing claim decides first (a replay is answered even once the entitlement is cancelled),
    /// then the entitlement (active, and at `period_start` when given), then the objects' ids. On
    /// success the claim is written; the caller writes the objects. Some(outcome): nothing written.
    fn claim_under_entitlement(
        &mut self,
        parent: &EntKey,
        claim: Option<&Claim>,
        period_start: Option<Timestamp>,
        objects_exist: bool,
    ) -> Result<Option<InsertOutcome>, StoreError> {
        let partition = Partition::Entitlement(parent.clone());
        if let Some(c) = claim {
            if let Some(stored) = self.claims.get(&(partition.clone(), c.scope.clone(), c.key.clone())) {
                return Ok(Some(InsertOutcome::ClaimExists(stored.clone())));
            }
        }
        let parent_ok = self
            .entitlement(parent)
            .is_some_and(|e| e.is_active() && period_start.is_none_or(|s| e.current_period_start == s));
        if !parent_ok {
            return Ok(Some(InsertOutcome::ParentUnavailable));
        }
        if objects_exist {
            return Err(StoreError::Corrupt("id collision".to_owned()));
        }
        if let Some(c) = claim {
            self.claims
                .insert((partition, c.scope.clone(), c.key.clone()), c.clone());
        }
        Ok(None)
    }

    /// The checks of a claimed insert of a tenant-level object (capacity grant, credit plan): an
    /// existing claim is returned; an existing object is an id collision. On success the claim is
    /// written; the caller writes the object.
    fn claim_under_tenant(
        &mut self,
        tenant: &TenantId,
        claim: Option<&Claim>,
        object_exists: bool,
    ) -> Result<Option<InsertOutcome>, StoreError> {
        let partition = Partition::Tenant(tenant.clone());
        if let Some(c) = claim {
            if let Some(stored) = self.claims.get(&(partition.clone(), c.scope.clone(), c.key.clone())) {
                return Ok(Some(InsertOutcome::ClaimExists(stored.clone())));
            }
        }
        if object_exists {
            return Err(StoreError::Corrupt("id collision".to_owned()));
        }
        if let Some(c) = claim {
            self.claims
                .insert((partition, c.scope.clone(), c.key.clone()), c.clone());
        }
        Ok(None)
    }
}

// ---- API keys -------------------------------------------------------------------------------

#[async_trait]
impl ApiKeyStore for MemoryStore {
    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        Ok(self.state().api_keys.get(key_hash).cloned())
    }

    async fn put_api_key(&self, record: &ApiKeyRecord) -> Result<(), StoreError> {
        let mut st = self.state();
        if st.api_keys.contains_key(&record.key_hash) {
            return Err(condition_failed("API key"));
        }
        // As DynamoStore: a put does not write `last_used_at`; only touch_api_key does.
        let stored = ApiKeyRecord {
            last_used_at: None,
            ..record.clone()
        };
        st.api_keys.insert(record.key_hash.clone(), stored);
        Ok(())
    }

    async fn list_api_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let mut keys: Vec<ApiKeyRecord> = self
            .state()
            .api_keys
            .values()
            .filter(|k| &k.tenant == tenant)
            .cloned()
            .collect();
        // The index's sort key is the key id.
        keys.sort_by(|a, b| a.key_id().cmp(&b.key_id()).then_with(|| a.key_hash.cmp(&b.key_hash)));
        Ok(keys)
    }

    async fn expire_api_key(&self, tenant: &TenantId, key_hash: &str, at: Timestamp) -> Result<bool, StoreError> {
        let mut st = self.state();
        match st.api_keys.get_mut(key_hash) {
            Some(k) if &k.tenant == tenant => {
                if k.expires_at.is_none_or(|e| e > at) {
                    k.expires_at = Some(at);
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn touch_api_key(&self, key_hash: &str, now: Timestamp, since: Timestamp) -> Result<(), StoreError> {
        if let Some(k) = self.state().api_keys.get_mut(key_hash) {
            if k.last_used_at.is_none_or(|t| t < since) {
                k.last_used_at = Some(now);
            }
        }
        Ok(())
    }
}

// ---- tenants --------------------------------------------------------------------------------

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

// ---- credit types ---------------------------------------------------------------------------

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

// ---- entitlements ---------------------------------------------------------------------------

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

// ---- grants ---------------------------------------------------------------------------------

#[async_trait]
impl GrantStore for MemoryStore {
    async fn insert_grant(
        &self,
        grant: &Grant,
        claim: Option<&Claim>,
        period_start: Option<Timestamp>,
    ) -> Result<InsertOutcome, StoreError> {
        let mut st = self.state();
        let exists = st.grant_exists(grant);
        if let Some(outcome) = st.claim_under_entitlement(&grant_key(grant), claim, period_start, exists)? {
            return Ok(outcome);
        }
        st.put_grant(grant);
        Ok(InsertOutcome::Inserted)
    }

    async fn find_grant(&self, tenant: &TenantId, id: &GrantId) -> Result<Option<Grant>, StoreError> {
        Ok(self
            .state()
            .grants
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .find_map(|(_, m)| m.get(id).cloned()))
    }

    async fn grants_after(
        &self,
        tenant: &TenantId,
        customer_id: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Grant>, bool), StoreError> {
        let limit = query_limit(limit)?;
        let st = self.state();
        let mut matching: Vec<&Grant> = st
            .grants
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .flat_map(|(_, m)| m.values())
            .filter(|g| customer_id.is_none_or(|c| g.customer_id == c))
            .filter(|g| match (customer_id, after) {
                (_, None) => true,
                // The tenant index reads ids after the cursor.
                (None, Some(a)) => g.id.as_str() > a,
                // The customer index reads from the cursor itself (BETWEEN), so the cursor's own
                // grant counts toward the limit and is dropped afterwards.
                (Some(_), Some(a)) => g.id.as_str() >= a,
            })
            .collect();
        matching.sort_by(|a, b| a.id.cmp(&b.id));
        matching.truncate(limit);
        // DynamoDB says "more" (a LastEvaluatedKey) whenever a read stops at its limit.
        let exhausted = matching.len() < limit;
        let grants = matching
            .into_iter()
            .filter(|g| after.is_none_or(|a| g.id.as_str() != a))
            .cloned()
            .collect();
        Ok((grants, exhausted))
    }

    async fn edit_grant(&self, tenant: &TenantId, edit: &GrantEdit) -> Result<EditOutcome, StoreError> {
        let mut st = self.state();
        let Some(g) = st
            .grants
            .get_mut(&ent_key(tenant, &edit.entitlement_id))
            .and_then(|m| m.get_mut(&edit.id))
        else {
            return Ok(EditOutcome::Missing);
        };
        if let Some(expires) = edit.expires_at {
            if let Some(used) = g.last_used_at.filter(|used| *used >= expires) {
                return Ok(EditOutcome::UsedAfterExpiry(used));
            }
        }
        if let Some(name) = &edit.name {
            g.details.name = Some(name.clone());
        }
        if let Some(expires) = edit.expires_at {
            g.expires_at = Some(expires);
        }
        if let Some(t) = &edit.credit_grant_type {
            g.details.credit_grant_type = Some(t.clone());
        }
        g.version += 1;
        Ok(EditOutcome::Edited(Box::new(g.clone())))
    }

    async fn release_claim(
        &self,
        tenant: &TenantId,
        entitlement: &EntitlementId,
        scope: &str,
        key: &str,
    ) -> Result<(), StoreError> {
        let partition = Partition::Entitlement(ent_key(tenant, entitlement));
        self.state()
            .claims
            .remove(&(partition, scope.to_owned(), key.to_owned()));
        Ok(())
    }

    async fn get_grant(
        &self,
        tenant: &TenantId,
        entitlement: &EntitlementId,
        id: &GrantId,
    ) -> Result<Option<Grant>, StoreError> {
        Ok(self.state().grant(&ent_key(tenant, entitlement), id).cloned())
    }

    async fn list_grants(&self, tenant: &TenantId, entitlement: &EntitlementId) -> Result<Vec<Grant>, StoreError> {
        Ok(self
            .state()
            .grants
            .get(&ent_key(tenant, entitlement))
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn void_grant(
        &self,
        tenant: &TenantId,
        entitlement: &EntitlementId,
        id: &GrantId,
        at: Timestamp,
    ) -> Result<Option<Grant>, StoreError> {
        let mut st = self.state();
        let Some(g) = st
            .grants
            .get_mut(&ent_key(tenant, entitlement))
            .and_then(|m| m.get_mut(id))
        else {
            return Ok(None);
        };
        if g.voided_at.is_none() {
            g.voided_at = Some(at);
            g.version += 1;
        }
        Ok(Some(g.clone()))
    }
}

// ---- usage ----------------------------------------------------------------------------------

fn usage_transaction(record: &UsageRecord, grants: &[(Grant, u64)]) -> Result<EntKey, StoreError> {
    let key = ent_key(&record.tenant, &record.entitlement_id);
    let mut items = vec![
        item_key(&key, &format!("U#{}", usage_sk(&record.event_id))),
        item_key(&key, "E"),
    ];
    items.extend(grants.iter().map(|(g, _)| grant_item_key(g)));
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
    ) -> Result<UsageWrite, StoreError> {
        let key = usage_transaction(record, grants)?;
        let mut st = self.state();
        if let Some(old) = st.usage(&key, &record.event_id) {
            return Ok(UsageWrite::Exists(old.clone()));
        }
        if !st.is_active(&key) {
            return Ok(UsageWrite::EntitlementUnavailable);
        }
        if !st.grants_unmoved(grants) {
            return Ok(UsageWrite::Stale);
        }
        st.put_usage(record);
        st.add_counters(&key, delta);
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
    ) -> Result<bool, StoreError> {
        let key = usage_transaction(record, grants)?;
        let mut st = self.state();
        let pending = st
            .usage(&key, &record.event_id)
            .is_some_and(|u| u.status == crate::ledger::UsageStatus::Pending);
        if !pending || st.entitlement(&key).is_none() || !st.grants_unmoved(grants) {
            return Ok(false);
        }
        st.put_usage(record);
        st.add_counters(&key, delta);
        for (g, _) in grants {
            st.put_grant(g);
        }
        Ok(true)
    }
}

// ---- periods --------------------------------------------------------------------------------

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
        check_transaction(&items)?;
        let mut st = self.state();
        let unmoved = st
            .entitlement(&key)
            .is_some_and(|e| e.current_period_end == reset.old_end && e.is_active());
        let record_new = reset
            .record
            .as_ref()
            .is_none_or(|r| st.usage(&ent_key(&r.tenant, &r.entitlement_id), &r.event_id).is_none());
        if !unmoved || !record_new || !st.grants_unmoved(&reset.grants) {
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

// ---- capacity grants ------------------------------------------------------------------------

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

// ---- credit plans ---------------------------------------------------------------------------

#[async_trait]
impl PlanStore for MemoryStore {
    async fn insert_credit_plan(&self, plan: &CreditPlan, claim: Option<&Claim>) -> Result<InsertOutcome, StoreError> {
        let mut st = self.state();
        let key = (plan.tenant.clone(), plan.id.clone());
        let exists = st.plans.contains_key(&key);
        if let Some(outcome) = st.claim_under_tenant(&plan.tenant, claim, exists)? {
            return Ok(outcome);
        }
        st.plans.insert(key, plan.clone());
        Ok(InsertOutcome::Inserted)
    }

    async fn get_credit_plan(&self, tenant: &TenantId, id: &str) -> Result<Option<CreditPlan>, StoreError> {
        Ok(self.state().plans.get(&(tenant.clone(), id.to_owned())).cloned())
    }

    async fn list_credit_plans(&self, tenant: &TenantId) -> Result<Vec<CreditPlan>, StoreError> {
        Ok(self
            .state()
            .plans
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|(_, p)| p.clone())
            .collect())
    }

    async fn replace_credit_plan(&self, plan: &CreditPlan, expected_version: u64) -> Result<bool, StoreError> {
        let mut st = self.state();
        let key = (plan.tenant.clone(), plan.id.clone());
        match st.plans.get_mut(&key) {
            Some(stored) if stored.version == expected_version => {
                *stored = plan.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn active_credit_plans(&self) -> Result<Vec<CreditPlan>, StoreError> {
        let st = self.state();
        let mut plans: Vec<(String, &CreditPlan)> = st
            .plans
            .values()
            .filter(|p| p.status == PlanStatus::Published)
            .map(|p| (format!("{}#{}", p.tenant, p.id), p))
            .collect();
        plans.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(plans.into_iter().map(|(_, p)| p.clone()).collect())
    }

    async fn entitlements_in_scope(
        &self,
        tenant: &TenantId,
        scope: PlanScope,
        scope_id: &str,
    ) -> Result<Vec<Entitlement>, StoreError> {
        Ok(self
            .state()
            .entitlements
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|(_, s)| &s.entitlement)
            .filter(|e| match scope {
                PlanScope::Subscription => e.subscription_id.as_deref() == Some(scope_id),
                PlanScope::Plan => e.plan_id.as_deref() == Some(scope_id),
            })
            .cloned()
            .collect())
    }

    async fn plan_progress(
        &self,
        tenant: &TenantId,
        entitlement: &EntitlementId,
        plan_id: &str,
    ) -> Result<u64, StoreError> {
        Ok(self
            .state()
            .plan_progress
            .get(&(ent_key(tenant, entitlement), plan_id.to_owned()))
            .copied()
            .unwrap_or(0))
    }

    async fn apply_plan_period(
        &self,
        grant: &Grant,
        plan_id: &str,
        expected: u64,
        next: u64,
    ) -> Result<PlanApply, StoreError> {
        let key = grant_key(grant);
        let mut st = self.state();
        if !st.is_active(&key) {
            return Ok(PlanApply::EntitlementInactive);
        }
        let progress_key = (key, plan_id.to_owned());
        let at_expected = match st.plan_progress.get(&progress_key) {
            None => expected == 0,
            Some(stored) => expected != 0 && *stored == expected,
        };
        if !at_expected || st.grant_exists(grant) {
            return Ok(PlanApply::Moved);
        }
        st.plan_progress.insert(progress_key, next);
        st.put_grant(grant);
        Ok(PlanApply::Applied)
    }
}

// ---- purchases ------------------------------------------------------------------------------

#[async_trait]
impl PurchaseStore for MemoryStore {
    async fn insert_purchase(&self, invoice: &Invoice, claim: &Claim) -> Result<InsertOutcome, StoreError> {
        let mut st = self.state();
        let key = (invoice.tenant.clone(), invoice.id.clone());
        let exists = st.invoices.contains_key(&key) || st.sessions.contains_key(&invoice.session.id);
        let parent = ent_key(&invoice.tenant, &invoice.entitlement_id);
        if let Some(outcome) = st.claim_under_entitlement(&parent, Some(claim), None, exists)? {
            return Ok(outcome);
        }
        st.invoices.insert(key, invoice.clone());
        st.sessions
            .insert(invoice.session.id.clone(), (invoice.tenant.clone(), invoice.id.clone()));
        Ok(InsertOutcome::Inserted)
    }

    async fn get_invoice(&self, tenant: &TenantId, id: &InvoiceId) -> Result<Option<Invoice>, StoreError> {
        Ok(self.state().invoices.get(&(tenant.clone(), id.clone())).cloned())
    }

    async fn find_session(&self, id: &SessionId) -> Result<Option<(TenantId, InvoiceId)>, StoreError> {
        Ok(self.state().sessions.get(id).cloned())
    }

    async fn update_invoice(&self, invoice: &Invoice, expected_version: u64) -> Result<bool, StoreError> {
        let mut st = self.state();
        match st.invoices.get_mut(&(invoice.tenant.clone(), invoice.id.clone())) {
            Some(stored) if stored.version == expected_version => {
                *stored = invoice.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn settle_invoice(
        &self,
        invoice: &Invoice,
        expected_version: u64,
        grant: &Grant,
    ) -> Result<bool, StoreError> {
        let mut st = self.state();
        let key = (invoice.tenant.clone(), invoice.id.clone());
        let unmoved = st.invoices.get(&key).is_some_and(|i| i.version == expected_version);
        if !unmoved || st.grant_exists(grant) {
            return Ok(false);
        }
        st.invoices.insert(key, invoice.clone());
        st.put_grant(grant);
        Ok(true)
    }

    async fn due_open_invoices(&self, now: Timestamp, limit: usize) -> Result<Vec<Invoice>, StoreError> {
        let limit = query_limit(limit)?;
        let st = self.state();
        let mut due: Vec<(String, &Invoice)> = st
            .invoices
            .values()
            .filter(|i| i.status == InvoiceStatus::Open && i.session.expires_at <= now)
            .map(|i| {
                // The index's sort key: session expiry, tenant, id.
                (
                    format!("{}#{}#{}", i.session.expires_at.to_storage(), i.tenant, i.id),
                    i,
                )
            })
            .collect();
        due.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(due.into_iter().take(limit).map(|(_, i)| i.clone()).collect())
    }
}
