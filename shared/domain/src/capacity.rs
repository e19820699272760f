//! Capacity grants (`/v2/grants`): an organization's (tenant's) reserved capacity of some kind on a
//! cluster, for a time window, with its unit price and two buy-back prices. Resell returns part of a
//! grant: a new, smaller grant from now to the old end replaces the old one, in one transaction.
use crate::kernel::{claimed_id, insert_claimed, Claim, Created, IdempotencyKey, Label, StoreError};
use crate::{CapacityGrantId, Clock, TenantId, Timestamp};
use rust_decimal::Decimal;
use std::collections::BTreeMap;

/// Largest quantity accepted (units of capacity).
pub const MAX_QUANTITY: u64 = 1_000_000_000_000;

/// A price kept exactly as the client wrote it ("1.50" stays "1.50"): >= 0, at most 12 decimals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExactPrice {
    value: Decimal,
    text: String,
}

impl ExactPrice {
    pub fn parse(text: &str) -> Result<Self, super::amount::AmountError> {
        let text = text.trim();
        let value = Decimal::from_str_exact(text).map_err(|_| super::amount::AmountError::NotANumber)?;
        if text.contains(['e', 'E']) || text.starts_with('+') {
            return Err(super::amount::AmountError::NotANumber);
        }
        super::NonNegative::new(value)?;
        Ok(Self {
            value,
            text: text.to_owned(),
        })
    }
    fn value(&self) -> Decimal {
        self.value
    }
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CapacityGrant {
    pub fid: CapacityGrantId,
    pub tenant: TenantId,
    pub kind: String,
    pub cluster: String,
    pub quantity: u64,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub unit_price: ExactPrice,
    pub early_termination_buyback_price: ExactPrice,
    pub flexible_usage_buyback_price: ExactPrice,
    pub created_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
    /// The grant this one replaced by a resell.
    pub resold_from: Option<CapacityGrantId>,
    /// The grant that replaced this one by a resell.
    pub resold_to: Option<CapacityGrantId>,
    pub version: u64,
}

impl CapacityGrant {
    fn is_expired(&self, now: Timestamp) -> bool {
        self.ends_at <= now
    }
    /// Listed by default: neither deleted nor expired.
    fn is_current(&self, now: Timestamp) -> bool {
        self.deleted_at.is_none_or(|d| d > now) && !self.is_expired(now)
    }
}

#[derive(Debug, Clone)]
pub struct NewCapacityGrant {
    pub kind: Label,
    pub cluster: Label,
    pub quantity: u64,
    /// Default: now.
    pub starts_at: Option<Timestamp>,
    pub ends_at: Timestamp,
    pub unit_price: ExactPrice,
    pub early_termination_buyback_price: ExactPrice,
    pub flexible_usage_buyback_price: ExactPrice,
    /// The `Idempotency-Key` header: a retry with it returns the grant the first request made.
    pub idempotency_key: Option<IdempotencyKey>,
}

impl NewCapacityGrant {
    /// The request's parameters as sent, for replay comparison.
    fn fingerprint(&self) -> BTreeMap<String, String> {
        let mut f = BTreeMap::from([
            ("kind".to_owned(), self.kind.as_str().to_owned()),
            ("cluster".to_owned(), self.cluster.as_str().to_owned()),
            ("quantity".to_owned(), self.quantity.to_string()),
            ("ends_at".to_owned(), self.ends_at.to_storage()),
            ("unit_price".to_owned(), self.unit_price.value().normalize().to_string()),
            (
                "early_termination_buyback_price".to_owned(),
                self.early_termination_buyback_price.value().normalize().to_string(),
            ),
            (
                "flexible_usage_buyback_price".to_owned(),
                self.flexible_usage_buyback_price.value().normalize().to_string(),
            ),
        ]);
        if let Some(t) = self.starts_at {
            f.insert("starts_at".to_owned(), t.to_storage());
        }
        f
    }
}

const CAPACITY_SCOPE: &str = "capacity";

#[derive(Debug, thiserror::Error)]
pub enum CreateCapacityError {
    #[error("ends_at must be after starts_at")]
    EndsNotAfterStart,
    /// Which buy-back price is above the unit price.
    #[error("{0} must not exceed unit_price")]
    BuybackAboveUnitPrice(&'static str),
    #[error("Idempotency-Key reused with different parameters: {}", .0.join(", "))]
    IdempotencyMismatch(Vec<String>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn create(
    store: &dyn CapacityStore,
    clock: &dyn Clock,
    tenant: &TenantId,
    req: NewCapacityGrant,
) -> Result<Created<CapacityGrant>, CreateCapacityError> {
    let starts_at = req.starts_at.unwrap_or_else(|| clock.now());
    if req.ends_at <= starts_at {
        return Err(CreateCapacityError::EndsNotAfterStart);
    }
    if req.early_termination_buyback_price.value() > req.unit_price.value() {
        return Err(CreateCapacityError::BuybackAboveUnitPrice(
            "early_termination_buyback_price",
        ));
    }
    if req.flexible_usage_buyback_price.value() > req.unit_price.value() {
        return Err(CreateCapacityError::BuybackAboveUnitPrice(
            "flexible_usage_buyback_price",
        ));
    }
    let fingerprint = req.fingerprint();
    let fid = CapacityGrantId::generate();
    let claim = req.idempotency_key.as_ref().map(|k| Claim {
        scope: CAPACITY_SCOPE.to_owned(),
        key: k.as_str().to_owned(),
        object_id: fid.as_str().to_owned(),
        fingerprint: fingerprint.clone(),
    });
    let grant = CapacityGrant {
        fid,
        tenant: tenant.clone(),
        kind: req.kind.into_string(),
        cluster: req.cluster.into_string(),
        quantity: req.quantity,
        starts_at,
        ends_at: req.ends_at,
        unit_price: req.unit_price,
        early_termination_buyback_price: req.early_termination_buyback_price,
        flexible_usage_buyback_price: req.flexible_usage_buyback_price,
        created_at: clock.now(),
        deleted_at: None,
        resold_from: None,
        resold_to: None,
        version: 0,
    };
    let claimed = insert_claimed(
        "capacity grant",
        store.insert_capacity_grant(&grant, claim.as_ref()),
        &fingerprint,
        |id| async move {
            store
                .get_capacity_grant(tenant, &claimed_id(CapacityGrantId::parse, &id)?)
                .await
        },
        CreateCapacityError::IdempotencyMismatch,
    )
    .await?;
    // Capacity grants have no parent: the store never reports one unavailable.
    claimed
        .into_created(grant)
        .ok_or_else(|| StoreError::Corrupt("no parent to be unavailable".to_owned()).into())
}

/// `GET /v2/grants` filters.
#[derive(Debug, Clone, Default)]
pub struct CapacityFilter {
    pub cluster: Option<String>,
    pub kinds: Vec<String>,
    pub show_expired: bool,
}

/// The tenant's capacity grants, oldest first: current ones, or all with `show_expired`.
pub async fn list(
    store: &dyn CapacityStore,
    clock: &dyn Clock,
    tenant: &TenantId,
    filter: &CapacityFilter,
) -> Result<Vec<CapacityGrant>, StoreError> {
    let now = clock.now();
    Ok(store
        .list_capacity_grants(tenant)
        .await?
        .into_iter()
        .filter(|g| filter.show_expired || g.is_current(now))
        .filter(|g| filter.cluster.as_ref().is_none_or(|c| *c == g.cluster))
        .filter(|g| filter.kinds.is_empty() || filter.kinds.contains(&g.kind))
        .collect())
}

#[derive(Debug, thiserror::Error)]
pub enum DeleteCapacityError {
    #[error("grant not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum ResellCapacityError {
    #[error("grant not found")]
    NotFound,
    #[error("new_quantity must be greater than 0 and less than the current quantity {0}")]
    QuantityNotLess(u64),
    #[error("the grant was deleted")]
    Deleted,
    #[error("the grant was already resold")]
    AlreadyResold,
    #[error("the grant has expired")]
    Expired,
    #[error("the grant changed at the same time; it was resold or deleted by another request")]
    Concurrent,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Soft-deletes a grant: `deleted_at` is set once; deleting again returns it unchanged.
pub async fn delete(
    store: &dyn CapacityStore,
    clock: &dyn Clock,
    tenant: &TenantId,
    fid: &CapacityGrantId,
) -> Result<CapacityGrant, DeleteCapacityError> {
    store
        .delete_capacity_grant(tenant, fid, clock.now())
        .await?
        .ok_or(DeleteCapacityError::NotFound)
}

/// Resells part of a grant: a new grant of `new_quantity` from now (or the old start, if later) to
/// the old end replaces it; the old one is deleted at the new one's start. Returns the new grant.
pub async fn resell(
    store: &dyn CapacityStore,
    clock: &dyn Clock,
    tenant: &TenantId,
    fid: &CapacityGrantId,
    new_quantity: u64,
) -> Result<(CapacityGrant, CapacityGrant), ResellCapacityError> {
    let old = store
        .get_capacity_grant(tenant, fid)
        .await?
        .ok_or(ResellCapacityError::NotFound)?;
    let now = clock.now();
    if old.resold_to.is_some() {
        return Err(ResellCapacityError::AlreadyResold);
    }
    if old.deleted_at.is_some() {
        return Err(ResellCapacityError::Deleted);
    }
    if old.is_expired(now) {
        return Err(ResellCapacityError::Expired);
    }
    if new_quantity == 0 || new_quantity >= old.quantity {
        return Err(ResellCapacityError::QuantityNotLess(old.quantity));
    }
    let starts_at = now.max(old.starts_at);
    let new = CapacityGrant {
        fid: CapacityGrantId::generate(),
        quantity: new_quantity,
        starts_at,
        created_at: now,
        deleted_at: None,
        resold_from: Some(old.fid.clone()),
        resold_to: None,
        version: 0,
        ..old.clone()
    };
    let retired = CapacityGrant {
        deleted_at: Some(starts_at),
        resold_to: Some(new.fid.clone()),
        version: old.version + 1,
        ..old.clone()
    };
    if store.resell_capacity_grant(&retired, old.version, &new).await? {
        Ok((retired, new))
    } else {
        Err(ResellCapacityError::Concurrent)
    }
}

/// The storage port of this module: Capacity grants. Implemented by `grants_dynamo::DynamoStore` and
/// [`crate::memory::MemoryStore`]; the contract tests hold both to the same behaviour.
#[async_trait::async_trait]
pub trait CapacityStore: Send + Sync {
    /// Writes a capacity grant, with the tenant-level claim of its idempotency key when given.
    async fn insert_capacity_grant(
        &self,
        grant: &crate::capacity::CapacityGrant,
        claim: Option<&crate::kernel::Claim>,
    ) -> Result<crate::kernel::InsertOutcome, crate::kernel::StoreError>;
    async fn get_capacity_grant(
        &self,
        tenant: &crate::TenantId,
        fid: &crate::CapacityGrantId,
    ) -> Result<Option<crate::capacity::CapacityGrant>, crate::kernel::StoreError>;
    /// Every capacity grant of the tenant, oldest first (an index read).
    async fn list_capacity_grants(
        &self,
        tenant: &crate::TenantId,
    ) -> Result<Vec<crate::capacity::CapacityGrant>, crate::kernel::StoreError>;
    /// Sets `deleted_at` unless set; returns the grant as it now is, or None when missing.
    async fn delete_capacity_grant(
        &self,
        tenant: &crate::TenantId,
        fid: &crate::CapacityGrantId,
        at: crate::Timestamp,
    ) -> Result<Option<crate::capacity::CapacityGrant>, crate::kernel::StoreError>;
    /// In one transaction: replaces the old grant (now deleted and linked) if its version is still
    /// `expected_version` and it is not deleted, and creates the new one. False when it moved.
    async fn resell_capacity_grant(
        &self,
        old: &crate::capacity::CapacityGrant,
        expected_version: u64,
        new: &crate::capacity::CapacityGrant,
    ) -> Result<bool, crate::kernel::StoreError>;
}
