//! Credit types and the Metronome view of the ledger: a Metronome customer is an entitlement's
//! `customer_id`, and a credit type is an entitlement's pricing unit (none: the default credit type).
//! Grants are the same objects the Paygentic surface shows; only the addressing differs.
use crate::cache::TtlCache;
use crate::entitlements::Label;
use crate::grants::IdempotencyKey;
use crate::ledger::{self, Entry, EntryKind, Posting};
use crate::model::{Claim, Entitlement, Grant, GrantDetails};
use crate::ports::{EditOutcome, InsertOutcome, Store, StoreError};
use crate::usage::UsageRecord;
use crate::{Clock, CreditAmount, EntitlementId, GrantId, NonNegative, Priority, TenantId, Timestamp};
use futures::future::try_join_all;
use rust_decimal::Decimal;
use std::collections::{BTreeMap, BTreeSet, HashMap};

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
    store: &dyn Store,
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
    store: &dyn Store,
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
    store: &dyn Store,
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

pub const UNIQUENESS_SCOPE: &str = "metronome";

/// The entitlement a customer's credits of one type go to: its oldest active one in that type.
fn target_entitlement(entitlements: Vec<Entitlement>, credit_type_id: &str) -> Option<Entitlement> {
    entitlements
        .into_iter()
        .filter(|e| e.is_active() && type_id(e.pricing_unit_id.as_deref()) == credit_type_id)
        .min_by(|a, b| a.id.cmp(&b.id))
}

pub async fn create_credit_grant(
    store: &dyn Store,
    clock: &dyn Clock,
    catalogue: &[CreditType],
    tenant: &TenantId,
    req: NewCreditGrant,
) -> Result<Grant, CreateCreditGrantError> {
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
    let grant = Grant {
        id: GrantId::generate(),
        tenant: tenant.clone(),
        entitlement_id: entitlement.id.clone(),
        customer_id: customer,
        amount: req.amount,
        remaining: req.amount.value(),
        effective_at,
        expires_at: Some(req.expires_at),
        voided_at: None,
        created_at: clock.now(),
        priority: Some(req.priority),
        reset_max_rollover: None,
        reset_min_rollover: None,
        recurrence_period: None,
        idempotency_key: None,
        reserved: Decimal::ZERO,
        last_used_at: None,
        version: 0,
        credit_type_id: entitlement.pricing_unit_id.clone(),
        details: GrantDetails {
            name: Some(req.name.into_string()),
            reason: req.reason,
            credit_grant_type: req.credit_grant_type,
            custom_fields: req.custom_fields,
            paid_amount: Some(req.paid_amount.value()),
            paid_credit_type_id: (req.paid_credit_type_id != DEFAULT_CREDIT_TYPE_ID).then_some(req.paid_credit_type_id),
            product_ids: req.product_ids,
            uniqueness_key: req.uniqueness_key.as_ref().map(|k| k.as_str().to_owned()),
            invoice_id: None,
        },
    };
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
pub enum CreditGrantError {
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
    store: &dyn Store,
    clock: &dyn Clock,
    tenant: &TenantId,
    id: &GrantId,
    release_uniqueness_key: bool,
) -> Result<Grant, CreditGrantError> {
    let found = store.find_grant(tenant, id).await?.ok_or(CreditGrantError::NotFound)?;
    let voided = store
        .void_grant(tenant, &found.entitlement_id, id, clock.now())
        .await?
        .ok_or(CreditGrantError::NotFound)?;
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

/// A change to a grant's name, expiry or type (Metronome `editGrant`).
#[derive(Debug, Clone)]
pub struct GrantEdit {
    pub entitlement_id: EntitlementId,
    pub id: GrantId,
    pub name: Option<String>,
    pub expires_at: Option<Timestamp>,
    pub credit_grant_type: Option<String>,
}

pub async fn edit_credit_grant(
    store: &dyn Store,
    tenant: &TenantId,
    id: &GrantId,
    name: Option<Label>,
    expires_at: Option<Timestamp>,
    credit_grant_type: Option<String>,
) -> Result<Grant, CreditGrantError> {
    let found = store.find_grant(tenant, id).await?.ok_or(CreditGrantError::NotFound)?;
    if expires_at.is_some_and(|e| e <= found.effective_at) {
        return Err(CreditGrantError::ExpiresNotAfterEffective);
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
        EditOutcome::Missing => Err(CreditGrantError::NotFound),
        EditOutcome::UsedAfterExpiry(t) => Err(CreditGrantError::ExpiresBeforeUsage(t)),
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

/// A grant as of now, with the usage that touched its entitlement (for deductions and balance).
#[derive(Debug, Clone)]
pub struct LedgerGrant {
    pub grant: Grant,
    pub postings: Vec<Posting>,
}

/// One page of grants matching `filter`, ordered by id (creation time), after the grant `after`.
/// Returns the page and the id to continue after, when more remain.
pub async fn list_credit_grants(
    store: &dyn Store,
    tenant: &TenantId,
    filter: &GrantFilter,
    limit: usize,
    after: Option<&str>,
) -> Result<(Vec<LedgerGrant>, Option<String>), StoreError> {
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
    let ledgers = try_join_all(entitlements.into_iter().map(|e| store.load_ledger(tenant, e))).await?;
    let mut fresh: HashMap<GrantId, Grant> = HashMap::new();
    let mut postings: HashMap<EntitlementId, Vec<Posting>> = HashMap::new();
    for (entitlement, grants, usage) in ledgers.into_iter().flatten() {
        postings.insert(entitlement.id.clone(), usage.iter().map(UsageRecord::posting).collect());
        fresh.extend(grants.into_iter().map(|g| (g.id.clone(), g)));
    }
    let page = matching
        .into_iter()
        .map(|g| {
            let grant = fresh.remove(&g.id).unwrap_or(g);
            let postings = postings.get(&grant.entitlement_id).cloned().unwrap_or_default();
            LedgerGrant { grant, postings }
        })
        .collect();
    Ok((page, next))
}

/// Walks the index in id order from `after` until `want` grants pass the filter or it ends. In the
/// common case (most grants pass) that is one index read.
async fn matching_after(
    store: &dyn Store,
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

/// One customer's ledger in one credit type (Metronome `listEntries`).
#[derive(Debug, Clone)]
pub struct CustomerLedger {
    pub credit_type_id: String,
    pub starting_at: Timestamp,
    pub starting_excluding: Decimal,
    pub starting_including: Decimal,
    pub ending_at: Timestamp,
    pub ending_excluding: Decimal,
    pub ending_including: Decimal,
    /// Posted entries in the window, with the running balance across the customer's grants.
    pub entries: Vec<Entry>,
    pub pending: Vec<Entry>,
}

#[derive(Debug, Clone, Default)]
pub struct EntryFilter {
    pub customer_ids: Vec<String>,
    pub credit_type_ids: Vec<String>,
    pub starting_on: Option<Timestamp>,
    pub ending_before: Option<Timestamp>,
}

fn kind_rank(k: EntryKind) -> u8 {
    match k {
        EntryKind::Grant => 0,
        EntryKind::Deduction | EntryKind::Rollover => 1,
        EntryKind::Expiration | EntryKind::Void => 2,
    }
}

/// Builds the ledgers of one customer: per credit type, every grant's entries merged in time order.
fn customer_ledgers(grants: &[(Grant, Vec<Posting>)], filter: &EntryFilter, now: Timestamp) -> Vec<CustomerLedger> {
    let mut by_type: BTreeMap<String, Vec<&(Grant, Vec<Posting>)>> = BTreeMap::new();
    for g in grants {
        let t = type_id(g.0.credit_type_id.as_deref()).to_owned();
        if filter.credit_type_ids.is_empty() || filter.credit_type_ids.contains(&t) {
            by_type.entry(t).or_default().push(g);
        }
    }
    by_type
        .into_iter()
        .map(|(credit_type_id, grants)| {
            let mut all: Vec<Entry> = grants.iter().flat_map(|(g, p)| ledger::grant_entries(g, p)).collect();
            all.sort_by(|a, b| {
                a.effective_at
                    .cmp(&b.effective_at)
                    .then_with(|| kind_rank(a.kind).cmp(&kind_rank(b.kind)))
                    .then_with(|| a.grant_id.cmp(&b.grant_id))
            });
            let mut running = Decimal::ZERO;
            for e in &mut all {
                running += e.amount;
                e.running_balance = running;
            }
            let pending: Vec<Entry> = grants.iter().flat_map(|(g, p)| ledger::pending_entries(g, p)).collect();
            let starting_at = filter
                .starting_on
                .or_else(|| all.first().map(|e| e.effective_at))
                .unwrap_or(now);
            let ending_at = filter.ending_before.unwrap_or(now);
            let before = |t: Timestamp, inclusive: bool| -> Decimal {
                all.iter()
                    .filter(|e| {
                        if inclusive {
                            e.effective_at <= t
                        } else {
                            e.effective_at < t
                        }
                    })
                    .map(|e| e.amount)
                    .sum()
            };
            let pending_by =
                |t: Timestamp| -> Decimal { pending.iter().filter(|e| e.effective_at <= t).map(|e| e.amount).sum() };
            let starting_excluding = before(starting_at, false);
            let ending_excluding = if filter.ending_before.is_some() {
                before(ending_at, false)
            } else {
                before(ending_at, true)
            };
            let entries = all
                .into_iter()
                .filter(|e| e.effective_at >= starting_at)
                .filter(|e| {
                    if filter.ending_before.is_some() {
                        e.effective_at < ending_at
                    } else {
                        e.effective_at <= ending_at
                    }
                })
                .collect();
            CustomerLedger {
                credit_type_id,
                starting_at,
                starting_excluding,
                starting_including: starting_excluding + pending_by(starting_at),
                ending_at,
                ending_excluding,
                ending_including: ending_excluding + pending_by(ending_at),
                entries,
                pending,
            }
        })
        .collect()
}

/// One page of customers' ledgers, by customer id, after the customer `after`.
pub async fn list_entries(
    store: &dyn Store,
    clock: &dyn Clock,
    tenant: &TenantId,
    filter: &EntryFilter,
    limit: usize,
    after: Option<&str>,
) -> Result<(Vec<(String, Vec<CustomerLedger>)>, Option<String>), StoreError> {
    let mut customers: BTreeSet<String> = if filter.customer_ids.is_empty() {
        store
            .list_entitlements(tenant, None)
            .await?
            .into_iter()
            .map(|e| e.customer_id)
            .collect()
    } else {
        filter.customer_ids.iter().cloned().collect()
    };
    customers.retain(|c| after.is_none_or(|a| c.as_str() > a));
    let more = customers.len() > limit;
    let page: Vec<String> = customers.into_iter().take(limit).collect();
    let next = if more { page.last().cloned() } else { None };
    let now = clock.now();
    let results = try_join_all(page.into_iter().map(|customer| async move {
        let entitlements = store.list_entitlements(tenant, Some(&customer)).await?;
        let ledgers = try_join_all(entitlements.iter().map(|e| store.load_ledger(tenant, &e.id))).await?;
        let mut grants = Vec::new();
        for (_, gs, usage) in ledgers.into_iter().flatten() {
            let postings: Vec<Posting> = usage.iter().map(UsageRecord::posting).collect();
            grants.extend(gs.into_iter().map(|g| (g, postings.clone())));
        }
        Ok::<_, StoreError>((customer, customer_ledgers(&grants, filter, now)))
    }))
    .await?;
    Ok((results, next))
}

/// The storage port of this module: The tenant's credit-type catalogue. Implemented by `grants_dynamo::DynamoStore` and
/// [`crate::memory::MemoryStore`]; the contract tests hold both to the same behaviour.
#[async_trait::async_trait]
pub trait CreditTypeStore: Send + Sync {
    /// The tenant's own credit types (the default one is not stored).
    async fn list_credit_types(
        &self,
        tenant: &crate::TenantId,
    ) -> Result<Vec<crate::credits::CreditType>, crate::ports::StoreError>;
    /// Creates a credit type unless the tenant has one of that name; returns the existing one if so.
    async fn insert_credit_type(
        &self,
        tenant: &crate::TenantId,
        ct: &crate::credits::CreditType,
    ) -> Result<Option<crate::credits::CreditType>, crate::ports::StoreError>;
}
