//! The entitlements' storage port. Grants, usage, periods, purchases and the Metronome view read an
//! entitlement through it, and the entitlement operations ([`crate::entitlements`], which re-export
//! it) read those aggregates' ports; so it stands below them all.
/// The storage port of the entitlements: Entitlements, and an entitlement with its grants. Implemented by `grants_dynamo::DynamoStore` and
/// [`crate::memory::MemoryStore`]; the contract tests hold both to the same behaviour.
#[async_trait::async_trait]
pub trait EntitlementStore: Send + Sync {
    async fn put_entitlement(&self, entitlement: &crate::model::Entitlement) -> Result<(), crate::kernel::StoreError>;
    async fn get_entitlement(
        &self,
        tenant: &crate::TenantId,
        id: &crate::EntitlementId,
    ) -> Result<Option<crate::model::Entitlement>, crate::kernel::StoreError>;
    /// The entitlement and all its grants, in one read.
    async fn load_entitlement(
        &self,
        tenant: &crate::TenantId,
        id: &crate::EntitlementId,
    ) -> Result<Option<(crate::model::Entitlement, Vec<crate::model::Grant>)>, crate::kernel::StoreError>;
    /// The tenant's entitlements, oldest first, optionally of one customer.
    async fn list_entitlements(
        &self,
        tenant: &crate::TenantId,
        customer_id: Option<&str>,
    ) -> Result<Vec<crate::model::Entitlement>, crate::kernel::StoreError>;
    /// Sets the status (and `active_to` = `at` unless already set); returns the entitlement as it
    /// now is, or None when it does not exist.
    async fn set_entitlement_status(
        &self,
        tenant: &crate::TenantId,
        id: &crate::EntitlementId,
        status: crate::model::EntitlementStatus,
        at: crate::Timestamp,
    ) -> Result<Option<crate::model::Entitlement>, crate::kernel::StoreError>;
}
