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
mod api_keys;
mod capacity;
mod credit_types;
mod entitlements;
mod events;
mod grants;
mod group_commit;
mod ledger;
mod meters;
mod periods;
mod plans;
mod purchases;
mod tenants;
mod usage;
mod webhooks;

use crate::capacity::CapacityGrant;
use crate::credits::CreditType;
use crate::model::{ApiKeyRecord, Claim, Entitlement, Grant};
use crate::plans::CreditPlan;
use crate::ports::{InsertOutcome, StoreError};
use crate::purchases::Invoice;
use crate::tenants::TenantSettings;
use crate::usage::{CounterDelta, UsageRecord};
use crate::{CapacityGrantId, EntitlementId, GrantId, InvoiceId, SessionId, TenantId, Timestamp};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// DynamoDB's limit on the items of one transaction.
const MAX_TRANSACTION_ITEMS: usize = 100;

/// Every storage port in memory (see the module documentation).
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    busy: crate::group_commit::BusyEntitlements,
    combiner: crate::combining::Combiner,
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
    /// The group-commit lease: (owner, until).
    lease: Option<(String, Timestamp)>,
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
    /// Webhook endpoints, by tenant and id.
    webhook_endpoints:
        BTreeMap<(TenantId, crate::webhook_endpoints::EndpointId), crate::webhook_endpoints::WebhookEndpoint>,
    /// Webhook configurations, by tenant.
    webhooks: BTreeMap<TenantId, crate::webhooks::WebhookConfig>,
    /// Webhook messages, in the order their changes were written (the outbox).
    outbox: Vec<crate::webhook_messages::WebhookMessage>,
    /// Portal links by token hash.
    portal_links: BTreeMap<String, crate::webhook_portal::PortalLink>,
    /// Delivery attempts, in the order they were recorded.
    attempts: Vec<crate::webhook_delivery::MessageAttempt>,
    /// How many events the batch that applied a record applied (records applied by a batch).
    batch_of: BTreeMap<(EntKey, String), usize>,
    /// (partition, scope, key).
    claims: BTreeMap<(Partition, String, String), Claim>,
    /// (entitlement partition, plan id) -> the next period to apply.
    plan_progress: BTreeMap<(EntKey, String), u64>,
    capacity: BTreeMap<(TenantId, CapacityGrantId), CapacityGrant>,
    plans: BTreeMap<(TenantId, String), CreditPlan>,
    invoices: BTreeMap<(TenantId, InvoiceId), Invoice>,
    sessions: BTreeMap<SessionId, (TenantId, InvoiceId)>,
    /// Billable metrics, by (tenant, id).
    metrics: BTreeMap<(TenantId, crate::meters::MetricId), crate::meters::BillableMetric>,
    /// (tenant, event type) -> the metric that meters it: what holds event types unique.
    metric_types: BTreeMap<(TenantId, String), crate::meters::MetricId>,
    /// Ingested events, by (tenant, idempotency key, or the event id when it has none).
    events: BTreeMap<(TenantId, String), crate::ingest::IngestedEvent>,
    /// Per entitlement partition: its log, checkpoints and usage days.
    logs: BTreeMap<EntKey, ledger::Log>,
    /// Per entitlement partition: the queued usage requests, by (queued at, event id hash).
    queues: BTreeMap<EntKey, BTreeMap<(Timestamp, String), UsageRecord>>,
    /// Multi-step applications under way, by (entitlement partition, event id).
    applications: BTreeMap<(EntKey, String), crate::group_commit::Application>,
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
