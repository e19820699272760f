//! Entitlement operations: provisioning (this service's own admin operation), reads, cancellation.
use crate::credits::CreditTypeStore;
use crate::entitlement_store::EntitlementStore;
use crate::grants::GrantStore;
use crate::kernel::{Page, StoreError};
use crate::model::{Entitlement, EntitlementStatus, Grant};
use crate::usage::UsageStore;
use crate::{Clock, EntitlementId, TenantId, Timestamp};
use futures::future::try_join_all;
use rust_decimal::Decimal;
use std::collections::BTreeMap;

// Defined lower down (in the kernel); kept here too, where it was first defined (other crates use this path).
pub use crate::kernel::Label;

#[derive(Debug, Clone)]
pub struct NewEntitlement {
    pub customer_id: Label,
    pub feature_key: Label,
    pub feature_id: Option<Label>,
    pub product_id: Option<Label>,
    pub subscription_id: Option<Label>,
    pub plan_id: Option<Label>,
    pub current_period_start: Option<Timestamp>,
    pub current_period_end: Option<Timestamp>,
    pub metadata: BTreeMap<String, String>,
    pub is_soft_limit: bool,
    /// The credit type its grants are in (a tenant credit type id); None is the default.
    pub pricing_unit_id: Option<Label>,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateEntitlementError {
    #[error("currentPeriodEnd must be after currentPeriodStart")]
    PeriodInverted,
    /// Shorter than `MIN_PERIOD_SECONDS` (one hour).
    #[error("the period must be at least one hour long")]
    PeriodTooShort,
    #[error("pricingUnitId is not one of the tenant's credit types")]
    UnknownPricingUnit,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The start of the UTC calendar month containing `now`: the default period start.
fn month_start(now: Timestamp) -> Timestamp {
    use chrono::{Datelike, TimeZone, Utc};
    let dt = now.as_datetime();
    Utc.with_ymd_and_hms(dt.year(), dt.month(), 1, 0, 0, 0)
        .single()
        .and_then(|t| Timestamp::from_datetime(t).ok())
        .unwrap_or(now)
}

/// One calendar month after `start` (Jan 31 -> Feb 28/29): the default period end.
fn one_month_after(start: Timestamp) -> Option<Timestamp> {
    start
        .as_datetime()
        .checked_add_months(chrono::Months::new(1))
        .and_then(|t| Timestamp::from_datetime(t).ok())
}

/// Provisions an entitlement; a pricing unit must be one of the tenant's credit types.
pub async fn create_entitlement<S>(
    store: &S,
    clock: &dyn Clock,
    tenant: &TenantId,
    req: NewEntitlement,
) -> Result<Entitlement, CreateEntitlementError>
where
    S: EntitlementStore + CreditTypeStore + ?Sized,
{
    let now = clock.now();
    let start = req.current_period_start.unwrap_or_else(|| month_start(now));
    let end = req
        .current_period_end
        .or_else(|| one_month_after(start))
        .unwrap_or(start);
    if end <= start {
        return Err(CreateEntitlementError::PeriodInverted);
    }
    if end.unix_seconds().saturating_sub(start.unix_seconds()) < super::periods::MIN_PERIOD_SECONDS {
        return Err(CreateEntitlementError::PeriodTooShort);
    }
    let pricing_unit_id = req.pricing_unit_id.map(Label::into_string);
    if let Some(id) = pricing_unit_id
        .as_deref()
        .filter(|id| *id != super::credits::DEFAULT_CREDIT_TYPE_ID)
    {
        if !store.list_credit_types(tenant).await?.iter().any(|c| c.id == id) {
            return Err(CreateEntitlementError::UnknownPricingUnit);
        }
    }
    // The default credit type is stored as none, so that both spellings mean one ledger.
    let pricing_unit_id = pricing_unit_id.filter(|id| id != super::credits::DEFAULT_CREDIT_TYPE_ID);
    let feature_key = req.feature_key.into_string();
    let entitlement = Entitlement {
        id: EntitlementId::generate(),
        tenant: tenant.clone(),
        customer_id: req.customer_id.into_string(),
        feature_id: req
            .feature_id
            .map(Label::into_string)
            .unwrap_or_else(|| format!("feat_{feature_key}")),
        feature_key,
        product_id: req
            .product_id
            .map(Label::into_string)
            .unwrap_or_else(|| "prod_default".to_owned()),
        subscription_id: req.subscription_id.map(Label::into_string),
        plan_id: req.plan_id.map(Label::into_string),
        status: EntitlementStatus::Active,
        active_from: now.min(start),
        active_to: None,
        metadata: req.metadata,
        is_soft_limit: req.is_soft_limit,
        pricing_unit_id,
        current_period_start: start,
        current_period_end: end,
        period_anchor: start,
        period_months: super::periods::whole_months(start, end),
        usage_in_period: Decimal::ZERO,
        overage: Decimal::ZERO,
        created_at: now,
        log: Some(crate::ledger::LogHead::default()),
        lease_until: None,
        applying: None,
    };
    store.put_entitlement(&entitlement).await?;
    Ok(entitlement)
}

/// An entitlement with its balance as of `at`.
#[derive(Debug, Clone)]
pub struct EntitlementView {
    pub entitlement: Entitlement,
    pub balance: Decimal,
    pub has_access: bool,
}

impl EntitlementView {
    pub fn new(entitlement: Entitlement, grants: &[Grant], at: Timestamp) -> Self {
        let balance: Decimal = grants
            .iter()
            .filter(|g| g.is_active_at(at))
            .map(|g| g.remaining)
            .sum::<Decimal>()
            - entitlement.overage;
        Self::with_balance(entitlement, balance, at)
    }

    fn with_balance(entitlement: Entitlement, balance: Decimal, at: Timestamp) -> Self {
        let in_window = entitlement.active_from <= at && entitlement.active_to.is_none_or(|t| at < t);
        let has_access = entitlement.is_active() && in_window && (entitlement.is_soft_limit || balance > Decimal::ZERO);
        EntitlementView {
            entitlement,
            balance,
            has_access,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EntitlementLookupError {
    #[error("entitlement not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn get_entitlement(
    store: &dyn EntitlementStore,
    clock: &dyn Clock,
    tenant: &TenantId,
    id: &EntitlementId,
) -> Result<EntitlementView, EntitlementLookupError> {
    let (entitlement, grants) = store
        .load_entitlement(tenant, id)
        .await?
        .ok_or(EntitlementLookupError::NotFound)?;
    Ok(EntitlementView::new(entitlement, &grants, clock.now()))
}

/// An entitlement with its balance as of a past (or present) instant, from the ledger's bounded
/// reads ([`crate::balances::balance`]).
pub async fn get_entitlement_at<S>(
    store: &S,
    clock: &dyn Clock,
    tenant: &TenantId,
    id: &EntitlementId,
    at: Timestamp,
) -> Result<EntitlementView, EntitlementLookupError>
where
    S: crate::balances::LedgerStore + UsageStore + ?Sized,
{
    let (entitlement, balance) = crate::balances::balance(store, clock, tenant, id, Some(at))
        .await?
        .ok_or(EntitlementLookupError::NotFound)?;
    Ok(EntitlementView::with_balance(
        entitlement,
        balance.excluding_pending,
        at,
    ))
}

pub async fn list_entitlements<S>(
    store: &S,
    clock: &dyn Clock,
    tenant: &TenantId,
    customer_id: Option<&str>,
    limit: usize,
    offset: usize,
) -> Result<Page<EntitlementView>, StoreError>
where
    S: EntitlementStore + GrantStore + ?Sized,
{
    let all = store.list_entitlements(tenant, customer_id).await?;
    let page = Page::slice(all, limit, offset);
    let now = clock.now();
    // Balances need each entitlement's grants: one read per item on the page, in parallel.
    let views = try_join_all(page.items.into_iter().map(|e| async move {
        let grants = store.list_grants(tenant, &e.id).await?;
        Ok::<_, StoreError>(EntitlementView::new(e, &grants, now))
    }))
    .await?;
    Ok(Page {
        items: views,
        total: page.total,
        limit: page.limit,
        offset: page.offset,
    })
}

/// Cancels an entitlement: no new grants from then on. Idempotent.
pub async fn cancel_entitlement<S>(
    store: &S,
    clock: &dyn Clock,
    tenant: &TenantId,
    id: &EntitlementId,
) -> Result<EntitlementView, EntitlementLookupError>
where
    S: EntitlementStore + GrantStore + ?Sized,
{
    let now = clock.now();
    let entitlement = store
        .set_entitlement_status(tenant, id, EntitlementStatus::Canceled, now)
        .await?
        .ok_or(EntitlementLookupError::NotFound)?;
    let grants = store.list_grants(tenant, id).await?;
    Ok(EntitlementView::new(entitlement, &grants, now))
}
