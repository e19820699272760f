//! The entitlements' storage port. Grants, usage, periods, purchases and the Metronome view read an
//! entitlement through it, and the entitlement operations ([`crate::entitlements`], which re-export
//! it) read those aggregates' ports; so it stands below them all.
use crate::kernel::StoreError;
use crate::model::{Entitlement, EntitlementStatus, Grant};
use crate::{EntitlementId, TenantId, Timestamp};

/// The storage port of entitlements, alone and with their grants. Implemented by
/// `grants_dynamo::DynamoStore` and [`crate::memory::MemoryStore`]; the contract tests hold both to
/// the same behaviour.
#[async_trait::async_trait]
pub trait EntitlementStore: Send + Sync {
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
}
