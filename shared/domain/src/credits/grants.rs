//! Metronome's grant operations: create (with an optional uniqueness key), void, edit, and the
//! paginated listing with each grant's usage.
use super::{type_id, CreditType, DEFAULT_CREDIT_TYPE_ID};
use crate::balances::{present_with_days, LedgerStore};
use crate::entitlement_store::EntitlementStore;
use crate::grants::{EditOutcome, GrantEdit, GrantStore};
use crate::kernel::{Claim, IdempotencyKey, InsertOutcome, Label, StoreError};
use crate::ledger::{Day, Posting};
use crate::model::{Entitlement, Grant, GrantDetails, NewGrantFields};
use crate::usage::UsageStore;
use crate::{Clock, CreditAmount, EntitlementId, GrantId, NonNegative, Priority, TenantId, Timestamp};
use futures::future::try_join_all;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A validated Metronome `createGrant`.
#[derive(Debug, Clone)]
pub struct NewCreditGrant {
    pub customer_id: Label,
    pub amount: CreditAmount,
    pub credit_type_id: String,
    pub paid_amount: NonNegative,
    pub paid_credit_type_id: String,
    pub name: Label,
    pub priority: Priority,
    pub expires_at: Timestamp,
    pub effective_at: Option<Timestamp>,
    pub reason: Option<String>,
    pub uniqueness_key: Option<IdempotencyKey>,
    pub custom_fields: BTreeMap<String, String>,
    pub credit_grant_type: Option<String>,
    pub product_ids: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateCreditGrantError {
    /// The named field holds a credit type id the tenant does not have.
    #[error("unknown credit type in {0}")]
    UnknownCreditType(&'static str),
    #[error("customer has no active entitlement in that credit type")]
    CustomerNotFound,
    #[error("expires_at must be after effective_at")]
    ExpiresNotAfterEffective,
    #[error("uniqueness_key was already used")]
    UniquenessKeyUsed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

const UNIQUENESS_SCOPE: &str = "metronome";

/// The entitlement a customer's credits of one type go to: its oldest active one in that type.
fn target_entitlement(entitlements: Vec<Entitlement>, credit_type_id: &str) -> Option<Entitlement> {
    entitlements
        .into_iter()
        .filter(|e| e.is_active() && type_id(e.pricing_unit_id.as_deref()) == credit_type_id)
        .min_by(|a, b| a.id.cmp(&b.id))
}

/// Creates a grant on the customer's oldest active entitlement in the grant's credit type.
pub async fn create_credit_grant<S>(
    store: &S,
    clock: &dyn Clock,
    catalogue: &[CreditType],
    tenant: &TenantId,
    req: NewCreditGrant,
) -> Result<Grant, CreateCreditGrantError>
where
    S: GrantStore + EntitlementStore + ?Sized,
{
    let known = |id: &str| catalogue.iter().any(|c| c.id == id);
    if !known(&req.credit_type_id) {
        return Err(CreateCreditGrantError::UnknownCreditType("grant_amount.credit_type_id"));
    }
    if !known(&req.paid_credit_type_id) {
        return Err(CreateCreditGrantError::UnknownCreditType("paid_amount.credit_type_id"));
    }
    let customer = req.customer_id.into_string();
    let entitlement = target_entitlement(
        store.list_entitlements(tenant, Some(&customer)).await?,
        &req.credit_type_id,
    )
    .ok_or(CreateCreditGrantError::CustomerNotFound)?;
    let effective_at = req.effective_at.unwrap_or(entitlement.current_period_start);
    if req.expires_at <= effective_at {
        return Err(CreateCreditGrantError::ExpiresNotAfterEffective);
    }
    let grant = Grant::new(NewGrantFields {
        tenant: tenant.clone(),
        entitlement_id: entitlement.id.clone(),
        customer_id: customer,
        amount: req.amount,
        effective_at,
        created_at: clock.now(),
        credit_type_id: entitlement.pricing_unit_id.clone(),
    })
    .with_expiry(Some(req.expires_at))
    .with_priority(Some(req.priority))
    .with_details(GrantDetails {
        name: Some(req.name.into_string()),
        reason: req.reason,
        credit_grant_type: req.credit_grant_type,
        custom_fields: req.custom_fields,
        paid_amount: Some(req.paid_amount.value()),
        paid_credit_type_id: (req.paid_credit_type_id != DEFAULT_CREDIT_TYPE_ID).then_some(req.paid_credit_type_id),
        product_ids: req.product_ids,
        uniqueness_key: req.uniqueness_key.as_ref().map(|k| k.as_str().to_owned()),
        invoice_id: None,
    });
    let claim = req.uniqueness_key.map(|k| Claim {
        scope: UNIQUENESS_SCOPE.to_owned(),
        key: k.as_str().to_owned(),
        object_id: grant.id.as_str().to_owned(),
        fingerprint: BTreeMap::new(),
    });
    match store.insert_grant(&grant, claim.as_ref(), None).await? {
        InsertOutcome::Inserted => Ok(grant),
        // Metronome: a reused uniqueness key is a 409, whatever the parameters.
        InsertOutcome::ClaimExists(_) => Err(CreateCreditGrantError::UniquenessKeyUsed),
        InsertOutcome::ParentUnavailable => Err(CreateCreditGrantError::CustomerNotFound),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VoidCreditGrantError {
    #[error("credit grant not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum EditCreditGrantError {
    #[error("credit grant not found")]
    NotFound,
    #[error("expires_at must be after effective_at")]
    ExpiresNotAfterEffective,
    #[error("usage drew on the grant at {0}; expires_at must be after it")]
    ExpiresBeforeUsage(Timestamp),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Voids a grant by id; optionally frees its uniqueness key for reuse. Idempotent.
pub async fn void_credit_grant(
    store: &dyn GrantStore,
    clock: &dyn Clock,
    tenant: &TenantId,
    id: &GrantId,
    release_uniqueness_key: bool,
) -> Result<Grant, VoidCreditGrantError> {
    let found = store
        .find_grant(tenant, id)
        .await?
        .ok_or(VoidCreditGrantError::NotFound)?;
    let voided = store
        .void_grant(tenant, &found.entitlement_id, id, clock.now())
        .await?
        .ok_or(VoidCreditGrantError::NotFound)?;
    if release_uniqueness_key {
        if let Some(key) = &voided.details.uniqueness_key {
            // After the void: a crash between the two leaves the key held, never a live duplicate.
            store
                .release_claim(tenant, &voided.entitlement_id, UNIQUENESS_SCOPE, key)
                .await?;
        }
    }
    Ok(voided)
}

pub async fn edit_credit_grant(
    store: &dyn GrantStore,
    tenant: &TenantId,
    id: &GrantId,
    name: Option<Label>,
    expires_at: Option<Timestamp>,
    credit_grant_type: Option<String>,
) -> Result<Grant, EditCreditGrantError> {
    let found = store
        .find_grant(tenant, id)
        .await?
        .ok_or(EditCreditGrantError::NotFound)?;
    if expires_at.is_some_and(|e| e <= found.effective_at) {
        return Err(EditCreditGrantError::ExpiresNotAfterEffective);
    }
    let edit = GrantEdit {
        entitlement_id: found.entitlement_id,
        id: id.clone(),
        name: name.map(Label::into_string),
        expires_at,
        credit_grant_type,
    };
    match store.edit_grant(tenant, &edit).await? {
        EditOutcome::Edited(g) => Ok(*g),
        EditOutcome::Missing => Err(EditCreditGrantError::NotFound),
        EditOutcome::UsedAfterExpiry(t) => Err(EditCreditGrantError::ExpiresBeforeUsage(t)),
    }
}

/// `listGrants` filters.
#[derive(Debug, Clone, Default)]
pub struct GrantFilter {
    pub grant_ids: Vec<String>,
    pub customer_ids: Vec<String>,
    pub credit_type_ids: Vec<String>,
    /// Effective strictly before.
    pub effective_before: Option<Timestamp>,
    /// Expiring at or after (never-expiring grants always pass).
    pub not_expiring_before: Option<Timestamp>,
}

impl GrantFilter {
    fn keeps(&self, g: &Grant) -> bool {
        g.voided_at.is_none()
            && (self.grant_ids.is_empty() || self.grant_ids.iter().any(|id| id == g.id.as_str()))
            && (self.customer_ids.is_empty() || self.customer_ids.contains(&g.customer_id))
            && (self.credit_type_ids.is_empty()
                || self
                    .credit_type_ids
                    .iter()
                    .any(|c| c == type_id(g.credit_type_id.as_deref())))
            && self.effective_before.is_none_or(|t| g.effective_at < t)
            && self
                .not_expiring_before
                .is_none_or(|t| g.expires_at.is_none_or(|e| e >= t))
    }
}

/// A grant as of now, with its entitlement's usage per day (its deductions) and pending usage.
#[derive(Debug, Clone)]
pub struct LedgerGrant {
    pub grant: Grant,
    pub days: Vec<Day>,
    pub holds: Vec<Posting>,
}

/// One page of grants matching `filter`, ordered by id (creation time), after the grant `after`.
/// Returns the page and the id to continue after, when more remain.
pub async fn list_credit_grants<S>(
    store: &S,
    tenant: &TenantId,
    filter: &GrantFilter,
    limit: usize,
    after: Option<&str>,
) -> Result<(Vec<LedgerGrant>, Option<String>), StoreError>
where
    S: GrantStore + UsageStore + LedgerStore + ?Sized,
{
    let want = limit + 1;
    let mut matching: Vec<Grant> = if !filter.grant_ids.is_empty() {
        let ids: Vec<GrantId> = filter
            .grant_ids
            .iter()
            .filter_map(|id| GrantId::parse(id).ok())
            .collect();
        let found = try_join_all(ids.iter().map(|id| store.find_grant(tenant, id))).await?;
        found
            .into_iter()
            .flatten()
            .filter(|g| filter.keeps(g))
            .filter(|g| after.is_none_or(|a| g.id.as_str() > a))
            .collect()
    } else if !filter.customer_ids.is_empty() {
        let unique: BTreeSet<&String> = filter.customer_ids.iter().collect();
        let per_customer = try_join_all(
            unique
                .into_iter()
                .map(|c| matching_after(store, tenant, Some(c), after, want, filter)),
        )
        .await?;
        per_customer.into_iter().flatten().collect()
    } else {
        matching_after(store, tenant, None, after, want, filter).await?
    };
    matching.sort_by(|a, b| a.id.cmp(&b.id));
    matching.dedup_by(|a, b| a.id == b.id);
    let more = matching.len() > limit;
    matching.truncate(limit);
    let next = if more {
        matching.last().map(|g| g.id.as_str().to_owned())
    } else {
        None
    };
    // The index copies may lag: read each entitlement on the page once, strongly consistent.
    let entitlements: BTreeSet<&EntitlementId> = matching.iter().map(|g| &g.entitlement_id).collect();
    let ledgers = try_join_all(entitlements.into_iter().map(|e| present_with_days(store, tenant, e))).await?;
    let mut fresh: HashMap<GrantId, Grant> = HashMap::new();
    let mut usage: HashMap<EntitlementId, (Vec<Day>, Vec<Posting>)> = HashMap::new();
    for (present, days) in ledgers.into_iter().flatten() {
        let holds = present.hold_postings();
        usage.insert(present.entitlement.id.clone(), (days, holds));
        fresh.extend(present.grants.into_iter().map(|g| (g.id.clone(), g)));
    }
    let page = matching
        .into_iter()
        .map(|g| {
            let grant = fresh.remove(&g.id).unwrap_or(g);
            let (days, holds) = usage.get(&grant.entitlement_id).cloned().unwrap_or_default();
            LedgerGrant { grant, days, holds }
        })
        .collect();
    Ok((page, next))
}

/// Walks the index in id order from `after` until `want` grants pass the filter or it ends. In the
/// common case (most grants pass) that is one index read.
async fn matching_after<S: GrantStore + ?Sized>(
    store: &S,
    tenant: &TenantId,
    customer: Option<&str>,
    after: Option<&str>,
    want: usize,
    filter: &GrantFilter,
) -> Result<Vec<Grant>, StoreError> {
    let mut out = Vec::new();
    let mut cursor = after.map(str::to_owned);
    loop {
        let (batch, exhausted) = store
            .grants_after(tenant, customer, cursor.as_deref(), want.max(50))
            .await?;
        cursor = batch.last().map(|g| g.id.as_str().to_owned()).or(cursor);
        let empty = batch.is_empty();
        out.extend(batch.into_iter().filter(|g| filter.keeps(g)));
        if out.len() >= want || exhausted || empty {
            out.truncate(want);
            return Ok(out);
        }
    }
}
