//! Credit types and the Metronome view of the ledger: a Metronome customer is an entitlement's
//! `customer_id`, and a credit type is an entitlement's pricing unit (none: the default credit type).
//! Grants are the same objects the Paygentic surface shows; only the addressing differs.
//!
//! This file holds the credit types; `grants.rs` the Metronome grant operations (create, void,
//! edit, list) and `entries.rs` the customers' ledgers (`listEntries`).
use crate::cache::TtlCache;
use crate::kernel::{Label, StoreError};
use crate::TenantId;

mod entries;
mod grants;

// The grant port's edit; kept here too, where it was first defined (other crates use this path).
pub use crate::grants::GrantEdit;
pub use entries::{list_entries, CustomerLedger, EntryFilter};
pub use grants::{
    create_credit_grant, edit_credit_grant, list_credit_grants, void_credit_grant, CreateCreditGrantError,
    EditCreditGrantError, GrantFilter, LedgerGrant, NewCreditGrant, VoidCreditGrantError,
};

/// Metronome's well-known id of "USD (cents)": every tenant's default credit type.
pub const DEFAULT_CREDIT_TYPE_ID: &str = "2714e483-4ff1-48e4-9e25-ac732e8f24f2";
pub const DEFAULT_CREDIT_TYPE_NAME: &str = "USD (cents)";
/// Metronome grants always expire; a grant that never expires is shown as expiring at this instant.
pub const NEVER_EXPIRES: &str = "9999-12-31T00:00:00Z";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditType {
    pub id: String,
    pub name: String,
}

impl CreditType {
    pub fn default_type() -> Self {
        Self {
            id: DEFAULT_CREDIT_TYPE_ID.to_owned(),
            name: DEFAULT_CREDIT_TYPE_NAME.to_owned(),
        }
    }
}

/// A tenant's credit types, the default first. What a warm instance remembers for 60 s.
pub type CreditTypeCache = TtlCache<Vec<CreditType>>;

/// The credit type id of a grant or entitlement pricing unit (None: the default).
pub fn type_id(pricing_unit: Option<&str>) -> &str {
    pricing_unit.unwrap_or(DEFAULT_CREDIT_TYPE_ID)
}

/// The tenant's credit types (default first), from the instance cache or one read.
pub async fn catalogue(
    store: &dyn CreditTypeStore,
    cache: &CreditTypeCache,
    tenant: &TenantId,
) -> Result<Vec<CreditType>, StoreError> {
    if let Some(c) = cache.get(tenant.as_str()) {
        return Ok(c);
    }
    let mut all = vec![CreditType::default_type()];
    all.extend(store.list_credit_types(tenant).await?);
    cache.put(tenant.as_str().to_owned(), all.clone());
    Ok(all)
}

/// The catalogue, read again when the cached copy lacks one of `ids` (a type created on another
/// instance within the cache's lifetime).
pub async fn catalogue_covering(
    store: &dyn CreditTypeStore,
    cache: &CreditTypeCache,
    tenant: &TenantId,
    ids: &[&str],
) -> Result<Vec<CreditType>, StoreError> {
    let cached = catalogue(store, cache, tenant).await?;
    if ids.iter().all(|id| cached.iter().any(|c| c.id == *id)) {
        return Ok(cached);
    }
    cache.forget(tenant.as_str());
    catalogue(store, cache, tenant).await
}

/// The name of a credit type id, as far as the catalogue knows it.
pub fn name_of(catalogue: &[CreditType], id: &str) -> String {
    catalogue
        .iter()
        .find(|c| c.id == id)
        .map(|c| c.name.clone())
        .unwrap_or_else(|| id.to_owned())
}

#[derive(Debug, thiserror::Error)]
pub enum CreditTypeError {
    #[error("a credit type named {} exists", .0.name)]
    Exists(CreditType),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Adds a credit type to the tenant's catalogue. Names are unique per tenant (case-insensitive).
pub async fn create_credit_type(
    store: &dyn CreditTypeStore,
    cache: &CreditTypeCache,
    tenant: &TenantId,
    name: Label,
) -> Result<CreditType, CreditTypeError> {
    let name = name.into_string();
    if name.eq_ignore_ascii_case(DEFAULT_CREDIT_TYPE_NAME) {
        return Err(CreditTypeError::Exists(CreditType::default_type()));
    }
    let ct = CreditType {
        id: format!("ct_{}", ulid::Ulid::generate()),
        name,
    };
    if let Some(existing) = store.insert_credit_type(tenant, &ct).await? {
        return Err(CreditTypeError::Exists(existing));
    }
    // This instance sees the new type at once; others within the cache's 60 s.
    cache.forget(tenant.as_str());
    Ok(ct)
}

/// The storage port of this module: The tenant's credit-type catalogue. Implemented by `grants_dynamo::DynamoStore` and
/// [`crate::memory::MemoryStore`]; the contract tests hold both to the same behaviour.
#[async_trait::async_trait]
pub trait CreditTypeStore: Send + Sync {
    /// The tenant's own credit types (the default one is not stored).
    async fn list_credit_types(
        &self,
        tenant: &crate::TenantId,
    ) -> Result<Vec<crate::credits::CreditType>, crate::kernel::StoreError>;
    /// Creates a credit type unless the tenant has one of that name; returns the existing one if so.
    async fn insert_credit_type(
        &self,
        tenant: &crate::TenantId,
        ct: &crate::credits::CreditType,
    ) -> Result<Option<crate::credits::CreditType>, crate::kernel::StoreError>;
}
