//! Storage as the domain sees it: each aggregate module declares its own port (a trait of exactly
//! what it needs from storage) with the outcomes of its conditional writes, and the kernel holds
//! what they share (the error, the outcome of an idempotent insert). This module lists them all,
//! and [`Store`], every port at once. It depends on the aggregates; none of them on it.
pub use crate::auth::ApiKeyStore;
pub use crate::balances::LedgerStore;
pub use crate::capacity::CapacityStore;
pub use crate::credits::CreditTypeStore;
pub use crate::entitlement_store::EntitlementStore;
pub use crate::grants::{EditOutcome, GrantStore};
pub use crate::group_commit::UsageQueue;
pub use crate::ingest::EventStore;
pub use crate::kernel::{InsertOutcome, StoreError};
pub use crate::meters::MetricStore;
pub use crate::periods::PeriodStore;
pub use crate::plans::{PlanApply, PlanStore};
pub use crate::purchases::PurchaseStore;
pub use crate::tenants::TenantStore;
pub use crate::usage::{UsageStore, UsageWrite};
pub use crate::webhook_delivery::DeliveryStore;
pub use crate::webhook_endpoints::EndpointStore;
pub use crate::webhook_portal::PortalStore;
pub use crate::webhooks::WebhookStore;

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
    + UsageQueue
    + LedgerStore
    + CapacityStore
    + PlanStore
    + PurchaseStore
    + MetricStore
    + EventStore
    + WebhookStore
    + EndpointStore
    + DeliveryStore
    + PortalStore
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
        + UsageQueue
        + LedgerStore
        + CapacityStore
        + PlanStore
        + PurchaseStore
        + MetricStore
        + EventStore
        + WebhookStore
        + EndpointStore
        + DeliveryStore
        + PortalStore
{
}
