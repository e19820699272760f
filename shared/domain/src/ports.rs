//! Storage as the domain sees it: each aggregate module declares its own port (a trait of exactly
//! what it needs from storage); this module holds what they share (the error, the outcomes of
//! conditional writes) and [`Store`], every port at once.
pub use crate::auth::ApiKeyStore;
pub use crate::capacity::CapacityStore;
pub use crate::credits::CreditTypeStore;
pub use crate::entitlements::EntitlementStore;
pub use crate::grants::GrantStore;
pub use crate::periods::PeriodStore;
pub use crate::plans::PlanStore;
pub use crate::purchases::PurchaseStore;
pub use crate::tenants::TenantStore;
pub use crate::usage::UsageStore;

use crate::kernel::Claim;
use crate::model::Grant;
use crate::usage::UsageRecord;
use crate::Timestamp;

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

/// Every port at once: what a deployed function's storage offers (`grants_dynamo::DynamoStore`,
/// [`crate::memory::MemoryStore`]). Operations take the narrowest port they need, so that their
/// signature says what storage they touch and a test can hand them a store of only that: one port
/// as `&dyn GrantStore`, several as a generic `S: GrantStore + EntitlementStore + ?Sized`. A
/// `&dyn Store` goes to either (trait upcasting; `?Sized` for the generic).
pub trait Store:
    ApiKeyStore
    + TenantStore
    + EntitlementStore
    + PeriodStore
    + GrantStore
    + CreditTypeStore
    + UsageStore
    + CapacityStore
    + PlanStore
    + PurchaseStore
{
}

impl<T> Store for T where
    T: ApiKeyStore
        + TenantStore
        + EntitlementStore
        + PeriodStore
        + GrantStore
        + CreditTypeStore
        + UsageStore
        + CapacityStore
        + PlanStore
        + PurchaseStore
{
}
