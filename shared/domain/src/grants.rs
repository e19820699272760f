//! Grant operations: create (idempotent), get, list, void. One error enum per operation.
use crate::cache::TtlCache;
use crate::model::{Claim, EntitlementStatus, Grant, GrantDetails};
use crate::ports::{InsertOutcome, Store, StoreError};
use crate::{Clock, CreditAmount, EntitlementId, GrantId, NonNegative, Priority, TenantId, Timestamp};
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
        opt(
            "resetMaxRollover",
            self.reset_max_rollover.map(|v| v.value().to_string()),
        );
        opt(
            "resetMinRollover",
            self.reset_min_rollover.map(|v| v.value().to_string()),
        );
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
    #[error(transparent)]
    Rollover(#[from] RolloverBoundsError),
    #[error("idempotency key reused with different parameters: {}", .0.join(", "))]
    IdempotencyMismatch(Vec<String>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a grant's rollover bounds are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RolloverBoundsError {
    #[error("resetMinRollover must not exceed resetMaxRollover")]
    Inverted,
    #[error("resetMinRollover must not exceed the grant's amount")]
    AboveAmount,
}

/// The one rule for rollover bounds, on every surface that accepts them: `resetMinRollover <=
/// resetMaxRollover` and `resetMinRollover <= amount`, so that a period reset, which tops a grant
/// up to its minimum, can never leave more than was granted (the invariant *remaining <= amount*;
/// security review finding 2: a paid grant grew past what was paid for).
pub fn check_rollover_bounds(
    amount: CreditAmount,
    min: Option<NonNegative>,
    max: Option<NonNegative>,
) -> Result<(), RolloverBoundsError> {
    if let (Some(min), Some(max)) = (min, max) {
        if min > max {
            return Err(RolloverBoundsError::Inverted);
        }
    }
    if min.is_some_and(|m| m.value() > amount.value()) {
        return Err(RolloverBoundsError::AboveAmount);
    }
    Ok(())
}

pub const DIRECT_GRANT_SCOPE: &str = "grant";

/// What a grant copies from its entitlement: the customer and credit type, which never change,
/// and the period start (the default `effectiveAt`), which moves at a reset. A warm instance keeps
/// them, so a create is one transaction; a write made from a kept copy is conditional on the period
/// start it used, so a stale copy fails the condition instead of dating the grant wrongly.
#[derive(Debug, Clone)]
pub struct EntitlementFacts {
    pub customer_id: String,
    pub pricing_unit_id: Option<String>,
    pub current_period_start: Timestamp,
}

pub type EntitlementFactsCache = TtlCache<EntitlementFacts>;

pub async fn create_grant(
    store: &dyn Store,
    clock: &dyn Clock,
    facts_cache: &EntitlementFactsCache,
    tenant: &TenantId,
    req: NewGrant,
) -> Result<Created<Grant>, CreateGrantError> {
    check_rollover_bounds(req.amount, req.reset_min_rollover, req.reset_max_rollover)?;
    let cache_key = format!("{}/{}", tenant.as_str(), req.entitlement_id.as_str());
    let fingerprint = req.fingerprint();
    // At most three tries: a kept copy that went stale, then fresh reads that lost a race with a
    // period reset of the same entitlement.
    for attempt in 0..3 {
        let kept = if attempt == 0 {
            facts_cache.get(&cache_key)
        } else {
            None
        };
        let from_cache = kept.is_some();
        let facts = match kept {
            Some(f) => f,
            None => {
                let e = store
                    .get_entitlement(tenant, &req.entitlement_id)
                    .await?
                    .ok_or(CreateGrantError::EntitlementNotFound)?;
                let f = EntitlementFacts {
                    customer_id: e.customer_id,
                    pricing_unit_id: e.pricing_unit_id,
                    current_period_start: e.current_period_start,
                };
                facts_cache.put(cache_key.clone(), f.clone());
                f
            }
        };
        let effective_at = req.effective_at.unwrap_or(facts.current_period_start);
        if req.expires_at.is_some_and(|e| e <= effective_at) {
            return Err(CreateGrantError::ExpiresNotAfterEffective);
        }
        let grant = Grant {
            id: GrantId::generate(),
            tenant: tenant.clone(),
            entitlement_id: req.entitlement_id.clone(),
            customer_id: facts.customer_id.clone(),
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
            credit_type_id: facts.pricing_unit_id.clone(),
            details: GrantDetails::default(),
        };
        let claim = Claim {
            scope: DIRECT_GRANT_SCOPE.to_owned(),
            key: req.idempotency_key.as_str().to_owned(),
            object_id: grant.id.as_str().to_owned(),
            fingerprint: fingerprint.clone(),
        };
        let period_start = req.effective_at.is_none().then_some(facts.current_period_start);
        match store.insert_grant(&grant, Some(&claim), period_start).await? {
            InsertOutcome::Inserted => return Ok(Created::New(grant)),
            InsertOutcome::ClaimExists(existing) => {
                let id = existing
                    .replayed_id(&fingerprint)
                    .map_err(CreateGrantError::IdempotencyMismatch)?;
                let id = GrantId::parse(id).map_err(|_| StoreError::Corrupt(format!("claim points at {id}")))?;
                let original = store
                    .get_grant(tenant, &req.entitlement_id, &id)
                    .await?
                    .ok_or_else(|| StoreError::Corrupt(format!("claimed grant {id} is missing")))?;
                return Ok(Created::Replayed(original));
            }
            InsertOutcome::ParentUnavailable => {
                facts_cache.forget(&cache_key);
                if from_cache {
                    continue;
                }
                // Fresh, yet refused: cancelled, or its period moved on, since the read. Say which.
                match store.get_entitlement(tenant, &req.entitlement_id).await? {
                    None => return Err(CreateGrantError::EntitlementNotFound),
                    Some(e) if e.status != EntitlementStatus::Active => {
                        return Err(CreateGrantError::EntitlementNotActive(e.status.as_str()))
                    }
                    Some(_) => continue,
                }
            }
        }
    }
    Err(CreateGrantError::Store(StoreError::Contention))
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
    store
        .get_grant(tenant, entitlement, id)
        .await?
        .ok_or(GrantLookupError::NotFound)
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
        Page {
            items,
            total,
            limit,
            offset,
        }
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

/// The storage port of this module: Grants and their idempotency claims. Implemented by `grants_dynamo::DynamoStore` and
/// [`crate::memory::MemoryStore`]; the contract tests hold both to the same behaviour.
#[async_trait::async_trait]
pub trait GrantStore: Send + Sync {
    /// Writes the grant and its claim (if any) in one transaction, conditional on the claim being
    /// new and the entitlement being active, and, when given, its period still starting at
    /// `period_start` (what the caller's possibly cached view of the entitlement said).
    async fn insert_grant(
        &self,
        grant: &crate::model::Grant,
        claim: Option<&crate::model::Claim>,
        period_start: Option<crate::Timestamp>,
    ) -> Result<crate::ports::InsertOutcome, crate::ports::StoreError>;
    /// A grant found by id alone (an index read: may lag a just-created grant).
    async fn find_grant(
        &self,
        tenant: &crate::TenantId,
        id: &crate::GrantId,
    ) -> Result<Option<crate::model::Grant>, crate::ports::StoreError>;
    /// Up to `limit` grants of the tenant, or of one customer, whose ids come after `after`, in id
    /// (creation) order: one index read. True when the index has no more after these.
    async fn grants_after(
        &self,
        tenant: &crate::TenantId,
        customer_id: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<crate::model::Grant>, bool), crate::ports::StoreError>;
    /// Changes a grant's descriptive fields and expiry (bumping its version), unless usage already
    /// drew on it at or after the new expiry.
    async fn edit_grant(
        &self,
        tenant: &crate::TenantId,
        edit: &crate::credits::GrantEdit,
    ) -> Result<crate::ports::EditOutcome, crate::ports::StoreError>;
    /// Deletes an idempotency claim so that its key can be used again.
    async fn release_claim(
        &self,
        tenant: &crate::TenantId,
        entitlement: &crate::EntitlementId,
        scope: &str,
        key: &str,
    ) -> Result<(), crate::ports::StoreError>;
    async fn get_grant(
        &self,
        tenant: &crate::TenantId,
        entitlement: &crate::EntitlementId,
        id: &crate::GrantId,
    ) -> Result<Option<crate::model::Grant>, crate::ports::StoreError>;
    /// All grants of an entitlement, oldest first.
    async fn list_grants(
        &self,
        tenant: &crate::TenantId,
        entitlement: &crate::EntitlementId,
    ) -> Result<Vec<crate::model::Grant>, crate::ports::StoreError>;
    /// Sets `voided_at` unless already set; returns the grant as it now is, or None when missing.
    async fn void_grant(
        &self,
        tenant: &crate::TenantId,
        entitlement: &crate::EntitlementId,
        id: &crate::GrantId,
        at: crate::Timestamp,
    ) -> Result<Option<crate::model::Grant>, crate::ports::StoreError>;
}
