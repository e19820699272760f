//! Grant operations: create (idempotent), get, list, void. One error enum per operation.
use crate::cache::TtlCache;
use crate::entitlement_store::EntitlementStore;
use crate::kernel::{claimed_id, insert_claimed, Claim, Claimed, Page, StoreError};
use crate::model::{check_rollover_bounds, EntitlementStatus, Grant, NewGrantFields};
use crate::{Clock, CreditAmount, EntitlementId, GrantId, NonNegative, Priority, TenantId, Timestamp};
use std::collections::BTreeMap;

// Shared by every aggregate; kept here too, where they were first defined (other crates use these
// paths).
pub use crate::kernel::{Created, IdempotencyKey};
// The error of the grant's own rule (its builder asserts it); kept here too (other crates use this path).
pub use crate::model::RolloverBoundsError;

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

const DIRECT_GRANT_SCOPE: &str = "grant";

/// What a grant copies from its entitlement: the customer and credit type, which never change,
/// and the period start (the default `effectiveAt`), which moves at a reset. A warm instance keeps
/// them, so a create is one transaction; a write made from a kept copy is conditional on the period
/// start it used, so a stale copy fails the condition instead of dating the grant wrongly.
#[derive(Debug, Clone)]
pub struct EntitlementFacts {
    customer_id: String,
    pricing_unit_id: Option<String>,
    current_period_start: Timestamp,
}

pub type EntitlementFactsCache = TtlCache<EntitlementFacts>;

/// Creates a grant, idempotently by its key: reads the entitlement (or its kept facts) and writes
/// the grant with its claim.
pub async fn create_grant<S>(
    store: &S,
    clock: &dyn Clock,
    facts_cache: &EntitlementFactsCache,
    tenant: &TenantId,
    req: NewGrant,
) -> Result<Created<Grant>, CreateGrantError>
where
    S: GrantStore + EntitlementStore + ?Sized,
{
    check_rollover_bounds(req.amount, req.reset_min_rollover, req.reset_max_rollover)?;
    let cache_key = format!("{}/{}", tenant.as_str(), req.entitlement_id.as_str());
    let fingerprint = req.fingerprint();
    // At most three tries: a kept copy that went stale, then fresh reads that lost a race with a
    // period reset of the same entitlement.
    for attempt in 0..3 {
        let (facts, from_cache) = entitlement_facts(
            store,
            facts_cache,
            &cache_key,
            tenant,
            &req.entitlement_id,
            attempt == 0,
        )
        .await?;
        let grant = req.grant(tenant, &facts, clock.now())?;
        let claim = Claim {
            scope: DIRECT_GRANT_SCOPE.to_owned(),
            key: req.idempotency_key.as_str().to_owned(),
            object_id: grant.id.as_str().to_owned(),
            fingerprint: fingerprint.clone(),
        };
        let period_start = req.effective_at.is_none().then_some(facts.current_period_start);
        let entitlement = &req.entitlement_id;
        let claimed = insert_claimed(
            "grant",
            store.insert_grant(&grant, Some(&claim), period_start),
            &fingerprint,
            |id| async move {
                store
                    .get_grant(tenant, entitlement, &claimed_id(GrantId::parse, &id)?)
                    .await
            },
            CreateGrantError::IdempotencyMismatch,
        )
        .await?;
        match claimed {
            Claimed::Inserted => return Ok(Created::New(grant)),
            Claimed::Replayed(original) => return Ok(Created::Replayed(original)),
            Claimed::ParentUnavailable => {
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

/// What the grant copies from its entitlement, and whether it is the kept copy: that one when
/// `kept_allowed` and this instance has it, otherwise read now (and kept).
async fn entitlement_facts<S: EntitlementStore + ?Sized>(
    store: &S,
    cache: &EntitlementFactsCache,
    cache_key: &str,
    tenant: &TenantId,
    entitlement: &EntitlementId,
    kept_allowed: bool,
) -> Result<(EntitlementFacts, bool), CreateGrantError> {
    if let Some(kept) = kept_allowed.then(|| cache.get(cache_key)).flatten() {
        return Ok((kept, true));
    }
    let e = store
        .get_entitlement(tenant, entitlement)
        .await?
        .ok_or(CreateGrantError::EntitlementNotFound)?;
    let facts = EntitlementFacts {
        customer_id: e.customer_id,
        pricing_unit_id: e.pricing_unit_id,
        current_period_start: e.current_period_start,
    };
    cache.put(cache_key.to_owned(), facts.clone());
    Ok((facts, false))
}

impl NewGrant {
    /// The grant this request creates on an entitlement with these facts (effective, by default,
    /// from its current period's start).
    fn grant(&self, tenant: &TenantId, facts: &EntitlementFacts, now: Timestamp) -> Result<Grant, CreateGrantError> {
        let effective_at = self.effective_at.unwrap_or(facts.current_period_start);
        if self.expires_at.is_some_and(|e| e <= effective_at) {
            return Err(CreateGrantError::ExpiresNotAfterEffective);
        }
        Ok(Grant::new(NewGrantFields {
            tenant: tenant.clone(),
            entitlement_id: self.entitlement_id.clone(),
            customer_id: facts.customer_id.clone(),
            amount: self.amount,
            effective_at,
            created_at: now,
            credit_type_id: facts.pricing_unit_id.clone(),
        })
        .with_expiry(self.expires_at)
        .with_priority(self.priority)
        .with_rollover_bounds(self.reset_min_rollover, self.reset_max_rollover)
        .with_idempotency_key(Some(self.idempotency_key.as_str().to_owned())))
    }
}

/// Why a grant could not be read or voided.
#[derive(Debug, thiserror::Error)]
pub enum GrantLookupError {
    #[error("grant not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why an entitlement's grants could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum ListGrantsError {
    #[error("entitlement not found")]
    EntitlementNotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn get_grant(
    store: &dyn GrantStore,
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
    store: &dyn GrantStore,
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

/// The entitlement's grants, read with it in one read (so a missing entitlement is told apart
/// from one without grants).
pub async fn list_grants(
    store: &dyn EntitlementStore,
    tenant: &TenantId,
    entitlement: &EntitlementId,
    include_voided: bool,
    limit: usize,
    offset: usize,
) -> Result<Page<Grant>, ListGrantsError> {
    let Some((_, grants)) = store.load_entitlement(tenant, entitlement).await? else {
        return Err(ListGrantsError::EntitlementNotFound);
    };
    let grants: Vec<Grant> = grants
        .into_iter()
        .filter(|g| include_voided || g.voided_at.is_none())
        .collect();
    Ok(Page::slice(grants, limit, offset))
}

/// A change to a grant's name, expiry or type (Metronome `editGrant`).
#[derive(Debug, Clone)]
pub struct GrantEdit {
    pub entitlement_id: EntitlementId,
    pub id: GrantId,
    pub name: Option<String>,
    pub expires_at: Option<Timestamp>,
    pub credit_grant_type: Option<String>,
}

/// What happened to a grant edit.
#[derive(Debug)]
pub enum EditOutcome {
    Edited(Box<Grant>),
    Missing,
    /// Usage drew on the grant at this instant, not before the requested expiry: nothing written.
    UsedAfterExpiry(Timestamp),
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
        claim: Option<&crate::kernel::Claim>,
        period_start: Option<crate::Timestamp>,
    ) -> Result<crate::kernel::InsertOutcome, crate::kernel::StoreError>;
    /// A grant found by id alone (an index read: may lag a just-created grant).
    async fn find_grant(
        &self,
        tenant: &crate::TenantId,
        id: &crate::GrantId,
    ) -> Result<Option<crate::model::Grant>, crate::kernel::StoreError>;
    /// Up to `limit` grants of the tenant, or of one customer, whose ids come after `after`, in id
    /// (creation) order: one index read. True when the index has no more after these.
    async fn grants_after(
        &self,
        tenant: &crate::TenantId,
        customer_id: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<crate::model::Grant>, bool), crate::kernel::StoreError>;
    /// Changes a grant's descriptive fields and expiry (bumping its version), unless usage already
    /// drew on it at or after the new expiry.
    async fn edit_grant(
        &self,
        tenant: &crate::TenantId,
        edit: &crate::grants::GrantEdit,
    ) -> Result<crate::grants::EditOutcome, crate::kernel::StoreError>;
    /// Deletes an idempotency claim so that its key can be used again.
    async fn release_claim(
        &self,
        tenant: &crate::TenantId,
        entitlement: &crate::EntitlementId,
        scope: &str,
        key: &str,
    ) -> Result<(), crate::kernel::StoreError>;
    async fn get_grant(
        &self,
        tenant: &crate::TenantId,
        entitlement: &crate::EntitlementId,
        id: &crate::GrantId,
    ) -> Result<Option<crate::model::Grant>, crate::kernel::StoreError>;
    /// All grants of an entitlement, oldest first.
    async fn list_grants(
        &self,
        tenant: &crate::TenantId,
        entitlement: &crate::EntitlementId,
    ) -> Result<Vec<crate::model::Grant>, crate::kernel::StoreError>;
    /// Sets `voided_at` unless already set; returns the grant as it now is, or None when missing.
    async fn void_grant(
        &self,
        tenant: &crate::TenantId,
        entitlement: &crate::EntitlementId,
        id: &crate::GrantId,
        at: crate::Timestamp,
    ) -> Result<Option<crate::model::Grant>, crate::kernel::StoreError>;
}
