//! Persistence behind a trait, so the domain never sees AWS types. [`dynamo::DynamoStore`] is the
//! implementation; every test runs it against a real DynamoDB Local.

use crate::capacity::CapacityGrant;
use crate::credits::{CreditType, GrantEdit};
use crate::model::{ApiKeyRecord, Claim, Entitlement, EntitlementStatus, Grant};
use crate::periods::Reset;
use crate::plans::{CreditPlan, PlanScope};
use crate::purchases::Invoice;
use crate::tenants::TenantSettings;
use crate::usage::{CounterDelta, UsageRecord};
use crate::CapacityGrantId;
use crate::{EntitlementId, GrantId, InvoiceId, SessionId, TenantId, Timestamp};
use async_trait::async_trait;

/// A failure of the storage layer (network, throttling past retries, corrupt item), or storage
/// refusing a request's content.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Storage refused the request's content (DynamoDB's `ValidationException`: a key or value
    /// over its limits). Input is validated before any storage call, so this is a missed check; it
    /// is a non-retryable 400, never a retryable 503.
    #[error("storage refused the request: {0}")]
    Rejected(String),
    #[error("stored item is malformed: {0}")]
    Corrupt(String),
    #[error("too much contention on one object; retry")]
    Contention,
}

/// What happened to an attempt to create an object guarded by an idempotency claim.
#[derive(Debug)]
pub enum InsertOutcome {
    /// The object and its claim were written together.
    Inserted,
    /// The claim already existed: nothing was written. The stored claim is returned.
    ClaimExists(Claim),
    /// The parent (entitlement) is missing or not active: nothing was written.
    ParentUnavailable,
}

/// What happened to one credit-plan application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanApply {
    /// The grant and the plan's progress on the entitlement were written together.
    Applied,
    /// The progress was not where this run read it: another run applied it. Nothing written.
    Moved,
    /// The entitlement is not active: nothing written.
    EntitlementInactive,
}

/// What happened to a grant edit.
#[derive(Debug)]
pub enum EditOutcome {
    Edited(Box<Grant>),
    Missing,
    /// Usage drew on the grant at this instant, not before the requested expiry: nothing written.
    UsedAfterExpiry(Timestamp),
}

/// What happened to a usage write.
#[derive(Debug)]
pub enum UsageWrite {
    /// The record, the entitlement's counters and the grants were written together.
    Written,
    /// A record with this event id exists: nothing was written. It is returned.
    Exists(UsageRecord),
    /// The entitlement is missing or not active: nothing was written.
    EntitlementUnavailable,
    /// A grant changed since it was read: nothing was written; recompute and retry.
    Stale,
}

#[async_trait]
pub trait Store: Send + Sync {
    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError>;
    async fn put_api_key(&self, record: &ApiKeyRecord) -> Result<(), StoreError>;
    /// The tenant's keys (an index read; keys stored before the index had them are not listed).
    async fn list_api_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKeyRecord>, StoreError>;
    /// Makes the tenant's key stop working at `at`, unless it already stops earlier. False: no such
    /// key of that tenant.
    async fn expire_api_key(&self, tenant: &TenantId, key_hash: &str, at: Timestamp) -> Result<bool, StoreError>;
    /// Records a use at `now` unless one at or after `since` is recorded (a conditional write, so
    /// busy keys cost at most one write per interval).
    async fn touch_api_key(&self, key_hash: &str, now: Timestamp, since: Timestamp) -> Result<(), StoreError>;

    async fn put_entitlement(&self, entitlement: &Entitlement) -> Result<(), StoreError>;
    async fn get_entitlement(&self, tenant: &TenantId, id: &EntitlementId) -> Result<Option<Entitlement>, StoreError>;
    /// The entitlement and all its grants, in one read.
    async fn load_entitlement(
        &self,
        tenant: &TenantId,
        id: &EntitlementId,
    ) -> Result<Option<(Entitlement, Vec<Grant>)>, StoreError>;
    /// The tenant's entitlements, oldest first, optionally of one customer.
    async fn list_entitlements(
        &self,
        tenant: &TenantId,
        customer_id: Option<&str>,
    ) -> Result<Vec<Entitlement>, StoreError>;
    /// Sets the status (and `active_to` = `at` unless already set); returns the entitlement as it
    /// now is, or None when it does not exist.
    async fn set_entitlement_status(
        &self,
        tenant: &TenantId,
        id: &EntitlementId,
        status: EntitlementStatus,
        at: Timestamp,
    ) -> Result<Option<Entitlement>, StoreError>;

    /// Writes the grant and its claim (if any) in one transaction, conditional on the claim being
    /// new and the entitlement being active, and, when given, its period still starting at
    /// `period_start` (what the caller's possibly cached view of the entitlement said).
    async fn insert_grant(
        &self,
        grant: &Grant,
        claim: Option<&Claim>,
        period_start: Option<Timestamp>,
    ) -> Result<InsertOutcome, StoreError>;
    /// A grant found by id alone (an index read: may lag a just-created grant).
    async fn find_grant(&self, tenant: &TenantId, id: &GrantId) -> Result<Option<Grant>, StoreError>;
    /// Up to `limit` grants of the tenant, or of one customer, whose ids come after `after`, in id
    /// (creation) order: one index read. True when the index has no more after these.
    async fn grants_after(
        &self,
        tenant: &TenantId,
        customer_id: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Grant>, bool), StoreError>;
    /// Changes a grant's descriptive fields and expiry (bumping its version), unless usage already
    /// drew on it at or after the new expiry.
    async fn edit_grant(&self, tenant: &TenantId, edit: &GrantEdit) -> Result<EditOutcome, StoreError>;
    /// Deletes an idempotency claim so that its key can be used again.
    async fn release_claim(
        &self,
        tenant: &TenantId,
        entitlement: &EntitlementId,
        scope: &str,
        key: &str,
    ) -> Result<(), StoreError>;
    /// The tenant's own credit types (the default one is not stored).
    async fn list_credit_types(&self, tenant: &TenantId) -> Result<Vec<CreditType>, StoreError>;
    /// Creates a credit type unless the tenant has one of that name; returns the existing one if so.
    async fn insert_credit_type(&self, tenant: &TenantId, ct: &CreditType) -> Result<Option<CreditType>, StoreError>;
    async fn get_grant(
        &self,
        tenant: &TenantId,
        entitlement: &EntitlementId,
        id: &GrantId,
    ) -> Result<Option<Grant>, StoreError>;
    /// All grants of an entitlement, oldest first.
    async fn list_grants(&self, tenant: &TenantId, entitlement: &EntitlementId) -> Result<Vec<Grant>, StoreError>;
    /// Sets `voided_at` unless already set; returns the grant as it now is, or None when missing.
    async fn void_grant(
        &self,
        tenant: &TenantId,
        entitlement: &EntitlementId,
        id: &GrantId,
        at: Timestamp,
    ) -> Result<Option<Grant>, StoreError>;

    /// The entitlement, its grants and its usage records, in one read.
    async fn load_ledger(
        &self,
        tenant: &TenantId,
        id: &EntitlementId,
    ) -> Result<Option<(Entitlement, Vec<Grant>, Vec<UsageRecord>)>, StoreError>;
    async fn get_usage(
        &self,
        tenant: &TenantId,
        entitlement: &EntitlementId,
        event_id: &str,
    ) -> Result<Option<UsageRecord>, StoreError>;
    /// In one transaction: creates the usage record (unless its event id exists), adds `delta` to
    /// the entitlement's counters (if it is active), and replaces each grant if its version is
    /// still the one read (`(new state, version read)`).
    async fn write_usage(
        &self,
        record: &UsageRecord,
        delta: CounterDelta,
        grants: &[(Grant, u64)],
    ) -> Result<UsageWrite, StoreError>;
    /// In one transaction: replaces a pending usage record with its settled state (if it is still
    /// pending), adds `delta` to the entitlement's counters, and replaces the grants at the versions
    /// read. False when anything moved (nothing written).
    async fn settle_usage(
        &self,
        record: &UsageRecord,
        delta: CounterDelta,
        grants: &[(Grant, u64)],
    ) -> Result<bool, StoreError>;

    /// Writes a capacity grant, with the tenant-level claim of its idempotency key when given.
    async fn insert_capacity_grant(
        &self,
        grant: &CapacityGrant,
        claim: Option<&Claim>,
    ) -> Result<InsertOutcome, StoreError>;
    async fn get_capacity_grant(
        &self,
        tenant: &TenantId,
        fid: &CapacityGrantId,
    ) -> Result<Option<CapacityGrant>, StoreError>;
    /// Every capacity grant of the tenant, oldest first (an index read).
    async fn list_capacity_grants(&self, tenant: &TenantId) -> Result<Vec<CapacityGrant>, StoreError>;
    /// Sets `deleted_at` unless set; returns the grant as it now is, or None when missing.
    async fn delete_capacity_grant(
        &self,
        tenant: &TenantId,
        fid: &CapacityGrantId,
        at: Timestamp,
    ) -> Result<Option<CapacityGrant>, StoreError>;
    /// In one transaction: replaces the old grant (now deleted and linked) if its version is still
    /// `expected_version` and it is not deleted, and creates the new one. False when it moved.
    async fn resell_capacity_grant(
        &self,
        old: &CapacityGrant,
        expected_version: u64,
        new: &CapacityGrant,
    ) -> Result<bool, StoreError>;

    /// Writes a new credit plan (Flexprice credit grant).
    async fn insert_credit_plan(&self, plan: &CreditPlan, claim: Option<&Claim>) -> Result<InsertOutcome, StoreError>;
    async fn get_credit_plan(&self, tenant: &TenantId, id: &str) -> Result<Option<CreditPlan>, StoreError>;
    /// The tenant's plans, oldest first (an index read).
    async fn list_credit_plans(&self, tenant: &TenantId) -> Result<Vec<CreditPlan>, StoreError>;
    /// Replaces a plan if its version is still `expected_version`; false otherwise.
    async fn replace_credit_plan(&self, plan: &CreditPlan, expected_version: u64) -> Result<bool, StoreError>;
    /// Every published plan of every tenant (the scheduler's index).
    async fn active_credit_plans(&self) -> Result<Vec<CreditPlan>, StoreError>;
    /// The tenant's entitlements with this plan id or subscription id (an index read).
    async fn entitlements_in_scope(
        &self,
        tenant: &TenantId,
        scope: PlanScope,
        scope_id: &str,
    ) -> Result<Vec<Entitlement>, StoreError>;
    /// The next period of the plan to apply to the entitlement (0 when none was).
    async fn plan_progress(
        &self,
        tenant: &TenantId,
        entitlement: &EntitlementId,
        plan_id: &str,
    ) -> Result<u64, StoreError>;
    /// In one transaction: the entitlement is active, the plan's progress on it is still `expected`
    /// and becomes `next`, and the grant is written.
    async fn apply_plan_period(
        &self,
        grant: &Grant,
        plan_id: &str,
        expected: u64,
        next: u64,
    ) -> Result<PlanApply, StoreError>;

    /// Active entitlements whose current period ended by `now`, oldest end first (an index read).
    async fn entitlements_due_for_reset(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<(TenantId, EntitlementId)>, StoreError>;
    /// In one transaction: moves the entitlement to the new period and zeroes its counters (if its
    /// period end is still `reset.old_end`), writes the clamped grants at the versions read, and the
    /// rollover record. False when anything moved.
    async fn reset_period(&self, entitlement: &Entitlement, reset: &Reset) -> Result<bool, StoreError>;

    async fn get_tenant(&self, tenant: &TenantId) -> Result<Option<TenantSettings>, StoreError>;
    /// Writes the settings unless the tenant has some; true when written.
    /// Takes an entitlement out of the period-reset schedule (its GSI5 keys) and records why on
    /// it (`reset_blocked`), for an operator to look at.
    async fn block_period_reset(&self, tenant: &TenantId, id: &EntitlementId, reason: &str) -> Result<(), StoreError>;
    async fn put_tenant_if_absent(&self, settings: &TenantSettings) -> Result<bool, StoreError>;
    /// Writes the settings, replacing what the tenant had (operators only).
    async fn put_tenant(&self, settings: &TenantSettings) -> Result<(), StoreError>;

    /// Writes the invoice, its payment-session lookup and its claim in one transaction,
    /// conditional on the claim being new and the entitlement being active.
    async fn insert_purchase(&self, invoice: &Invoice, claim: &Claim) -> Result<InsertOutcome, StoreError>;
    async fn get_invoice(&self, tenant: &TenantId, id: &InvoiceId) -> Result<Option<Invoice>, StoreError>;
    /// The tenant and invoice of a payment session.
    async fn find_session(&self, id: &SessionId) -> Result<Option<(TenantId, InvoiceId)>, StoreError>;
    /// Replaces the invoice if its stored version is still `expected_version`; false otherwise.
    async fn update_invoice(&self, invoice: &Invoice, expected_version: u64) -> Result<bool, StoreError>;
    /// In one transaction: replaces the invoice (now paid) if its version is still
    /// `expected_version`, and creates its grant. False when the version moved (nothing written).
    async fn settle_invoice(&self, invoice: &Invoice, expected_version: u64, grant: &Grant)
        -> Result<bool, StoreError>;
    /// Open invoices whose session expired by `now`, oldest expiry first (an index read: may lag).
    async fn due_open_invoices(&self, now: Timestamp, limit: usize) -> Result<Vec<Invoice>, StoreError>;
}
