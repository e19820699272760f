//! Grant operations: create (idempotent), get, list, void. One error enum per operation.
use super::model::{Claim, Grant, GrantDetails};
use super::{Clock, CreditAmount, EntitlementId, GrantId, NonNegative, Priority, TenantId, Timestamp};
use crate::store::{InsertOutcome, Store, StoreError};
use std::collections::BTreeMap;

/// A client's idempotency key: 1..=255 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdempotencyKeyError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most 255 characters")]
    TooLong,
}

impl IdempotencyKey {
    pub fn parse(s: &str) -> Result<Self, IdempotencyKeyError> {
        if s.is_empty() {
            return Err(IdempotencyKeyError::Empty);
        }
        if s.chars().count() > 255 {
            return Err(IdempotencyKeyError::TooLong);
        }
        Ok(Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A validated request to create a grant directly (no payment).
#[derive(Debug, Clone)]
pub struct NewGrant {
    pub entitlement_id: EntitlementId,
    pub amount: CreditAmount,
    pub idempotency_key: IdempotencyKey,
    pub effective_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
    pub priority: Option<Priority>,
    pub reset_max_rollover: Option<NonNegative>,
    pub reset_min_rollover: Option<NonNegative>,
}

impl NewGrant {
    /// The request's parameters as sent (defaults not applied), for replay comparison.
    fn fingerprint(&self) -> BTreeMap<String, String> {
        let mut f = BTreeMap::new();
        f.insert("amount".to_owned(), self.amount.value().to_string());
        let mut opt = |name: &str, v: Option<String>| {
            if let Some(v) = v {
                f.insert(name.to_owned(), v);
            }
        };
        opt("effectiveAt", self.effective_at.map(|t| t.to_storage()));
        opt("expiresAt", self.expires_at.map(|t| t.to_storage()));
        opt("priority", self.priority.map(|p| p.value().to_string()));
        opt("resetMaxRollover", self.reset_max_rollover.map(|v| v.value().to_string()));
        opt("resetMinRollover", self.reset_min_rollover.map(|v| v.value().to_string()));
        f
    }
}

/// Whether an idempotent create made something new or found what an earlier identical request made.
#[derive(Debug, Clone)]
pub enum Created<T> {
    New(T),
    Replayed(T),
}

impl<T> Created<T> {
    pub fn into_inner(self) -> T {
        match self {
            Created::New(t) | Created::Replayed(t) => t,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CreateGrantError {
    #[error("entitlement not found")]
    EntitlementNotFound,
    #[error("entitlement is {0}, not active")]
    EntitlementNotActive(&'static str),
    #[error("expiresAt must be after effectiveAt")]
    ExpiresNotAfterEffective,
    #[error("resetMinRollover must not exceed resetMaxRollover")]
    RolloverBoundsInverted,
    #[error("idempotency key reused with different parameters: {}", .0.join(", "))]
    IdempotencyMismatch(Vec<String>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub const DIRECT_GRANT_SCOPE: &str = "grant";

pub async fn create_grant(
    store: &dyn Store,
    clock: &dyn Clock,
    tenant: &TenantId,
    req: NewGrant,
) -> Result<Created<Grant>, CreateGrantError> {
    if let (Some(min), Some(max)) = (req.reset_min_rollover, req.reset_max_rollover) {
        if min > max {
            return Err(CreateGrantError::RolloverBoundsInverted);
        }
    }
    let entitlement = store
        .get_entitlement(tenant, &req.entitlement_id)
        .await?
        .ok_or(CreateGrantError::EntitlementNotFound)?;
    let effective_at = req.effective_at.unwrap_or(entitlement.current_period_start);
    if req.expires_at.is_some_and(|e| e <= effective_at) {
        return Err(CreateGrantError::ExpiresNotAfterEffective);
    }
    let fingerprint = req.fingerprint();
    let grant = Grant {
        id: GrantId::generate(),
        tenant: tenant.clone(),
        entitlement_id: req.entitlement_id.clone(),
        customer_id: entitlement.customer_id.clone(),
        amount: req.amount,
        remaining: req.amount.value(),
        effective_at,
        expires_at: req.expires_at,
        voided_at: None,
        created_at: clock.now(),
        priority: req.priority,
        reset_max_rollover: req.reset_max_rollover,
        reset_min_rollover: req.reset_min_rollover,
        recurrence_period: None,
        idempotency_key: Some(req.idempotency_key.as_str().to_owned()),
        reserved: rust_decimal::Decimal::ZERO,
        last_used_at: None,
        version: 0,
        credit_type_id: entitlement.pricing_unit_id.clone(),
        details: GrantDetails::default(),
    };
    let claim = Claim {
        scope: DIRECT_GRANT_SCOPE.to_owned(),
        key: req.idempotency_key.as_str().to_owned(),
        object_id: grant.id.as_str().to_owned(),
        fingerprint: fingerprint.clone(),
    };
    match store.insert_grant(&grant, Some(&claim)).await? {
        InsertOutcome::Inserted => Ok(Created::New(grant)),
        InsertOutcome::ClaimExists(existing) => {
            let id = existing.replayed_id(&fingerprint).map_err(CreateGrantError::IdempotencyMismatch)?;
            let id = GrantId::parse(id).map_err(|_| StoreError::Corrupt(format!("claim points at {id}")))?;
            let original = store
                .get_grant(tenant, &req.entitlement_id, &id)
                .await?
                .ok_or_else(|| StoreError::Corrupt(format!("claimed grant {id} is missing")))?;
            Ok(Created::Replayed(original))
        }
        InsertOutcome::ParentUnavailable => {
            // Re-read to say why: it was cancelled (or expired) between our read and the write.
            match store.get_entitlement(tenant, &req.entitlement_id).await? {
                None => Err(CreateGrantError::EntitlementNotFound),
                Some(e) => Err(CreateGrantError::EntitlementNotActive(e.status.as_str())),
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GrantLookupError {
    #[error("grant not found")]
    NotFound,
    #[error("entitlement not found")]
    EntitlementNotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn get_grant(
    store: &dyn Store,
    tenant: &TenantId,
    entitlement: &EntitlementId,
    id: &GrantId,
) -> Result<Grant, GrantLookupError> {
    store.get_grant(tenant, entitlement, id).await?.ok_or(GrantLookupError::NotFound)
}

/// Voids a grant: idempotent, `voided_at` is set once and never moves.
pub async fn void_grant(
    store: &dyn Store,
    clock: &dyn Clock,
    tenant: &TenantId,
    entitlement: &EntitlementId,
    id: &GrantId,
) -> Result<Grant, GrantLookupError> {
    store
        .void_grant(tenant, entitlement, id, clock.now())
        .await?
        .ok_or(GrantLookupError::NotFound)
}

/// A page of an offset-paginated listing with its exact total.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: usize,
    pub limit: usize,
    pub offset: usize,
}

impl<T> Page<T> {
    pub fn slice(all: Vec<T>, limit: usize, offset: usize) -> Self {
        let total = all.len();
        let items = all.into_iter().skip(offset).take(limit).collect();
        Page { items, total, limit, offset }
    }
}

pub async fn list_grants(
    store: &dyn Store,
    tenant: &TenantId,
    entitlement: &EntitlementId,
    include_voided: bool,
    limit: usize,
    offset: usize,
) -> Result<Page<Grant>, GrantLookupError> {
    let Some((_, grants)) = store.load_entitlement(tenant, entitlement).await? else {
        return Err(GrantLookupError::EntitlementNotFound);
    };
    let grants: Vec<Grant> = grants
        .into_iter()
        .filter(|g| include_voided || g.voided_at.is_none())
        .collect();
    Ok(Page::slice(grants, limit, offset))
}
