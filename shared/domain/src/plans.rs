//! Credit grant plans (Flexprice "credit grants"): a template of credits that is *applied* to
//! entitlements as real grants. SUBSCRIPTION scope applies to the entitlements that carry the
//! subscription id, PLAN scope to those provisioned with the plan id. ONETIME applies once per
//! entitlement; RECURRING once per period from `start_date` until `end_date`. Each application is
//! idempotent per (plan, entitlement, period): a progress item in the entitlement's partition is
//! advanced in the same transaction that writes the grant, so a doubled or retried run never grants
//! twice and a missed run catches up.
use crate::entitlements::Label;
use crate::grants::{Created, IdempotencyKey};
use crate::model::Claim;
use crate::model::{Entitlement, EntitlementStatus, Grant, GrantDetails};
use crate::ports::{InsertOutcome, PlanApply, Store, StoreError};
use crate::{Clock, CreditAmount, GrantId, Priority, TenantId, Timestamp};
use chrono::Months;
use rust_decimal::Decimal;
use std::collections::BTreeMap;

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($variant),* }
        impl $name {
            pub const ALL: &'static [&'static str] = &[$($text),*];
            pub fn as_str(&self) -> &'static str { match self { $(Self::$variant => $text),* } }
            pub fn parse(s: &str) -> Option<Self> { match s { $($text => Some(Self::$variant),)* _ => None } }
        }
    };
}

wire_enum!(PlanScope { Plan => "PLAN", Subscription => "SUBSCRIPTION" });
wire_enum!(Cadence { Onetime => "ONETIME", Recurring => "RECURRING" });
wire_enum!(Period {
    Daily => "DAILY", Weekly => "WEEKLY", Monthly => "MONTHLY", Quarterly => "QUARTERLY",
    HalfYearly => "HALF_YEARLY", Annual => "ANNUAL",
});
wire_enum!(ExpirationType { Never => "NEVER", Duration => "DURATION", BillingCycle => "BILLING_CYCLE" });
wire_enum!(DurationUnit { Day => "DAY", Week => "WEEK", Month => "MONTH", Year => "YEAR" });
wire_enum!(PlanStatus { Published => "published", Archived => "archived", Deleted => "deleted" });

/// A length of calendar time: whole days or whole months.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Span {
    Days(u32),
    Months(u32),
}

impl Span {
    /// `from` moved forward `n` spans, always counted from `from` itself (Jan 31 + 1 month is
    /// Feb 28/29, + 2 months is Mar 31: no drift).
    fn times(self, from: Timestamp, n: u64) -> Option<Timestamp> {
        let dt = from.as_datetime();
        let moved = match self {
            Span::Days(d) => dt.checked_add_days(chrono::Days::new(u64::from(d).checked_mul(n)?))?,
            Span::Months(m) => dt.checked_add_months(Months::new(u32::try_from(u64::from(m).checked_mul(n)?).ok()?))?,
        };
        Timestamp::from_datetime(moved).ok()
    }
}

impl Period {
    fn span(self, count: u32) -> Span {
        match self {
            Period::Daily => Span::Days(count),
            Period::Weekly => Span::Days(7 * count),
            Period::Monthly => Span::Months(count),
            Period::Quarterly => Span::Months(3 * count),
            Period::HalfYearly => Span::Months(6 * count),
            Period::Annual => Span::Months(12 * count),
        }
    }
    /// ISO 8601 duration of `count` periods (the Paygentic grant's `recurrencePeriod`).
    fn iso(self, count: u32) -> String {
        match self.span(count) {
            Span::Days(d) if d % 7 == 0 => format!("P{}W", d / 7),
            Span::Days(d) => format!("P{d}D"),
            Span::Months(m) if m % 12 == 0 => format!("P{}Y", m / 12),
            Span::Months(m) => format!("P{m}M"),
        }
    }
}

impl DurationUnit {
    fn span(self, n: u32) -> Span {
        match self {
            DurationUnit::Day => Span::Days(n),
            DurationUnit::Week => Span::Days(7 * n),
            DurationUnit::Month => Span::Months(n),
            DurationUnit::Year => Span::Months(12 * n),
        }
    }
}

/// How applications expire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiration {
    Never,
    /// `n` units after the application's start.
    After(u32, DurationUnit),
    /// At the entitlement's current period end.
    BillingCycle,
}

/// How often a plan applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recurrence {
    Once,
    Every(Period, u32),
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreditPlan {
    pub id: String,
    pub tenant: TenantId,
    pub name: String,
    pub scope: PlanScope,
    /// The plan or subscription id the scope refers to.
    pub scope_id: String,
    pub credits: CreditAmount,
    pub currency: Option<String>,
    pub recurrence: Recurrence,
    pub expiration: Expiration,
    pub priority: Option<i64>,
    pub metadata: BTreeMap<String, String>,
    pub status: PlanStatus,
    pub start_date: Timestamp,
    pub end_date: Option<Timestamp>,
    pub conversion_rate: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: u64,
}

/// The most applications of one plan to one entitlement made in one run; the rest come next run.
pub const MAX_APPLICATIONS_PER_RUN: usize = 50;

impl CreditPlan {
    pub fn cadence(&self) -> Cadence {
        match self.recurrence {
            Recurrence::Once => Cadence::Onetime,
            Recurrence::Every(..) => Cadence::Recurring,
        }
    }

    /// Start of period `k` (0-based); None past the supported range.
    pub fn period_start(&self, k: u64) -> Option<Timestamp> {
        match self.recurrence {
            Recurrence::Once => (k == 0).then_some(self.start_date),
            Recurrence::Every(p, count) => p.span(count).times(self.start_date, k),
        }
    }

    /// Periods due for an entitlement at `now`, from period `next` on: those that have started,
    /// start before `end_date`, and end after the entitlement was provisioned (an entitlement gets
    /// the period it joined in, not earlier ones). At most [`MAX_APPLICATIONS_PER_RUN`].
    pub fn due_periods(&self, entitlement: &Entitlement, next: u64, now: Timestamp) -> Vec<(u64, Timestamp)> {
        let mut out = Vec::new();
        let mut k = next;
        while out.len() < MAX_APPLICATIONS_PER_RUN {
            let Some(start) = self.period_start(k) else { break };
            if start > now || self.end_date.is_some_and(|e| start >= e) {
                break;
            }
            let end = self.period_start(k + 1);
            let joined = match (self.recurrence, end) {
                (Recurrence::Once, _) => true,
                (_, Some(end)) => end > entitlement.created_at,
                (_, None) => true,
            };
            if joined {
                out.push((k, start));
            }
            k += 1;
            if self.recurrence == Recurrence::Once {
                break;
            }
        }
        out
    }

    /// The grant that applying period `k` (starting at `start`) to the entitlement creates.
    pub fn application(&self, entitlement: &Entitlement, k: u64, start: Timestamp, now: Timestamp) -> Grant {
        let expires_at = match self.expiration {
            Expiration::Never => None,
            Expiration::After(n, unit) => unit.span(n).times(start, 1),
            Expiration::BillingCycle => Some(entitlement.current_period_end)
                .filter(|e| *e > start)
                .or_else(|| Span::Months(1).times(start, 1)),
        };
        Grant {
            id: GrantId::generate(),
            tenant: self.tenant.clone(),
            entitlement_id: entitlement.id.clone(),
            customer_id: entitlement.customer_id.clone(),
            amount: self.credits,
            remaining: self.credits.value(),
            effective_at: start,
            expires_at,
            voided_at: None,
            created_at: now,
            priority: self.priority.and_then(|p| Priority::new(Decimal::from(p)).ok()),
            reset_max_rollover: None,
            reset_min_rollover: None,
            recurrence_period: match self.recurrence {
                Recurrence::Once => None,
                Recurrence::Every(p, c) => Some(p.iso(c)),
            },
            idempotency_key: Some(format!("creditgrant:{}:{k}", self.id)),
            reserved: Decimal::ZERO,
            last_used_at: None,
            version: 0,
            credit_type_id: entitlement.pricing_unit_id.clone(),
            details: GrantDetails {
                name: Some(self.name.clone()),
                reason: Some(format!("credit grant {}", self.id)),
                ..GrantDetails::default()
            },
        }
    }
}

/// A validated create request.
#[derive(Debug, Clone)]
pub struct NewCreditPlan {
    pub name: Label,
    pub scope: PlanScope,
    pub scope_id: Label,
    pub credits: CreditAmount,
    pub currency: Option<String>,
    pub recurrence: Recurrence,
    pub expiration: Expiration,
    pub priority: Option<i64>,
    pub metadata: BTreeMap<String, String>,
    pub start_date: Option<Timestamp>,
    pub end_date: Option<Timestamp>,
    pub conversion_rate: Option<String>,
    /// The `Idempotency-Key` header: a retry with it returns the plan the first request made.
    pub idempotency_key: Option<IdempotencyKey>,
}

impl NewCreditPlan {
    /// The request's parameters as sent, for replay comparison.
    fn fingerprint(&self) -> BTreeMap<String, String> {
        let mut f = BTreeMap::from([
            ("name".to_owned(), self.name.as_str().to_owned()),
            (
                "scope".to_owned(),
                format!("{}:{}", self.scope.as_str(), self.scope_id.as_str()),
            ),
            ("credits".to_owned(), self.credits.value().to_string()),
            ("recurrence".to_owned(), format!("{:?}", self.recurrence)),
            ("expiration".to_owned(), format!("{:?}", self.expiration)),
            ("priority".to_owned(), format!("{:?}", self.priority)),
        ]);
        let mut opt = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                f.insert(k.to_owned(), v);
            }
        };
        opt("start_date", self.start_date.map(|t| t.to_storage()));
        opt("end_date", self.end_date.map(|t| t.to_storage()));
        opt("currency", self.currency.clone());
        f
    }
}

pub const PLAN_SCOPE: &str = "creditplan";

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("credit grant not found")]
    NotFound,
    #[error("end_date must be after start_date")]
    EndNotAfterStart,
    #[error("the credit grant changed at the same time; retry")]
    Concurrent,
    #[error("Idempotency-Key reused with different parameters: {}", .0.join(", "))]
    IdempotencyMismatch(Vec<String>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn create(
    store: &dyn Store,
    clock: &dyn Clock,
    tenant: &TenantId,
    req: NewCreditPlan,
) -> Result<Created<CreditPlan>, PlanError> {
    let now = clock.now();
    let fingerprint = req.fingerprint();
    let start_date = req.start_date.unwrap_or(now);
    if req.end_date.is_some_and(|e| e <= start_date) {
        return Err(PlanError::EndNotAfterStart);
    }
    let id = format!("cgrant_{}", ulid::Ulid::generate());
    let claim = req.idempotency_key.as_ref().map(|k| Claim {
        scope: PLAN_SCOPE.to_owned(),
        key: k.as_str().to_owned(),
        object_id: id.clone(),
        fingerprint: fingerprint.clone(),
    });
    let plan = CreditPlan {
        id,
        tenant: tenant.clone(),
        name: req.name.into_string(),
        scope: req.scope,
        scope_id: req.scope_id.into_string(),
        credits: req.credits,
        currency: req.currency,
        recurrence: req.recurrence,
        expiration: req.expiration,
        priority: req.priority,
        metadata: req.metadata,
        status: PlanStatus::Published,
        start_date,
        end_date: req.end_date,
        conversion_rate: req.conversion_rate,
        created_at: now,
        updated_at: now,
        version: 0,
    };
    let plan = match store.insert_credit_plan(&plan, claim.as_ref()).await? {
        InsertOutcome::Inserted => Created::New(plan),
        InsertOutcome::ClaimExists(existing) => {
            let id = existing
                .replayed_id(&fingerprint)
                .map_err(PlanError::IdempotencyMismatch)?;
            let original = store
                .get_credit_plan(tenant, id)
                .await?
                .ok_or_else(|| StoreError::Corrupt(format!("claimed credit plan {id} is missing")))?;
            Created::Replayed(original)
        }
        InsertOutcome::ParentUnavailable => {
            return Err(StoreError::Corrupt("no parent to be unavailable".to_owned()).into())
        }
    };
    // Apply what is due at once (a replay too: it finishes what a failed first attempt began), so
    // credits show up without waiting for the schedule. Applications are idempotent per period.
    let (Created::New(p) | Created::Replayed(p)) = &plan;
    apply_plan(store, clock, p).await?;
    Ok(plan)
}

pub async fn get(store: &dyn Store, tenant: &TenantId, id: &str) -> Result<CreditPlan, PlanError> {
    store.get_credit_plan(tenant, id).await?.ok_or(PlanError::NotFound)
}

/// A change to name, metadata or end date (Flexprice `PUT`).
#[derive(Debug, Clone, Default)]
pub struct PlanUpdate {
    pub name: Option<Label>,
    pub metadata: Option<BTreeMap<String, String>>,
    pub end_date: Option<Timestamp>,
}

pub async fn update(
    store: &dyn Store,
    clock: &dyn Clock,
    tenant: &TenantId,
    id: &str,
    change: PlanUpdate,
) -> Result<CreditPlan, PlanError> {
    let old = get(store, tenant, id).await?;
    if change.end_date.is_some_and(|e| e <= old.start_date) {
        return Err(PlanError::EndNotAfterStart);
    }
    let new = CreditPlan {
        name: change.name.map(Label::into_string).unwrap_or_else(|| old.name.clone()),
        metadata: change.metadata.unwrap_or_else(|| old.metadata.clone()),
        end_date: change.end_date.or(old.end_date),
        updated_at: clock.now(),
        version: old.version + 1,
        ..old.clone()
    };
    if store.replace_credit_plan(&new, old.version).await? {
        Ok(new)
    } else {
        Err(PlanError::Concurrent)
    }
}

/// Deletes (archives) a plan: no further applications. With `effective_date` (SUBSCRIPTION scope),
/// the plan ends then instead: applications continue until that instant, none after. Grants already
/// applied stay. Idempotent.
pub async fn delete(
    store: &dyn Store,
    clock: &dyn Clock,
    tenant: &TenantId,
    id: &str,
    effective_date: Option<Timestamp>,
) -> Result<CreditPlan, PlanError> {
    let old = get(store, tenant, id).await?;
    let now = clock.now();
    let end = match effective_date {
        Some(e) if old.scope == PlanScope::Subscription && e > now => Some(e.max(old.start_date)),
        _ => None,
    };
    let new = match end {
        Some(e) => CreditPlan {
            end_date: Some(old.end_date.map_or(e, |x| x.min(e))),
            updated_at: now,
            version: old.version + 1,
            ..old.clone()
        },
        None if old.status == PlanStatus::Archived => return Ok(old),
        None => CreditPlan {
            status: PlanStatus::Archived,
            updated_at: now,
            version: old.version + 1,
            ..old.clone()
        },
    };
    if store.replace_credit_plan(&new, old.version).await? {
        Ok(new)
    } else {
        Err(PlanError::Concurrent)
    }
}

/// `GET /v1/creditgrants` filters.
#[derive(Debug, Clone, Default)]
pub struct PlanFilter {
    pub status: Option<PlanStatus>,
    pub scope: Option<PlanScope>,
    pub plan_ids: Vec<String>,
    pub subscription_ids: Vec<String>,
    /// Created at or after.
    pub start_time: Option<Timestamp>,
    /// Created before.
    pub end_time: Option<Timestamp>,
}

impl PlanFilter {
    pub fn keeps(&self, p: &CreditPlan) -> bool {
        self.status.is_none_or(|s| s == p.status)
            && self.scope.is_none_or(|s| s == p.scope)
            && (self.plan_ids.is_empty() || (p.scope == PlanScope::Plan && self.plan_ids.contains(&p.scope_id)))
            && (self.subscription_ids.is_empty()
                || (p.scope == PlanScope::Subscription && self.subscription_ids.contains(&p.scope_id)))
            && self.start_time.is_none_or(|t| p.created_at >= t)
            && self.end_time.is_none_or(|t| p.created_at < t)
    }
}

pub async fn list(store: &dyn Store, tenant: &TenantId, filter: &PlanFilter) -> Result<Vec<CreditPlan>, StoreError> {
    Ok(store
        .list_credit_plans(tenant)
        .await?
        .into_iter()
        .filter(|p| filter.keeps(p))
        .collect())
}

/// What one application run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    pub grants: usize,
    pub entitlements: usize,
}

/// Applies every due period of one plan to every entitlement in its scope.
pub async fn apply_plan(store: &dyn Store, clock: &dyn Clock, plan: &CreditPlan) -> Result<Applied, StoreError> {
    let mut done = Applied::default();
    if plan.status != PlanStatus::Published {
        return Ok(done);
    }
    let now = clock.now();
    for entitlement in store
        .entitlements_in_scope(&plan.tenant, plan.scope, &plan.scope_id)
        .await?
    {
        if entitlement.status != EntitlementStatus::Active {
            continue;
        }
        done.entitlements += 1;
        let mut progress = store.plan_progress(&plan.tenant, &entitlement.id, &plan.id).await?;
        for (k, start) in plan.due_periods(&entitlement, progress, now) {
            let grant = plan.application(&entitlement, k, start, now);
            match store.apply_plan_period(&grant, &plan.id, progress, k + 1).await? {
                PlanApply::Applied => {
                    done.grants += 1;
                    progress = k + 1;
                }
                // Another run got there first, or the entitlement was cancelled: next time.
                PlanApply::Moved | PlanApply::EntitlementInactive => break,
            }
        }
    }
    Ok(done)
}

/// The scheduled run: every published plan of every tenant, until `deadline` (the rest is the
/// next run's: progress is kept per plan and entitlement). One plan's failure, whichever tenant's,
/// is logged and skipped; it never stops the others.
pub async fn apply_all(
    store: &dyn Store,
    clock: &dyn Clock,
    deadline: std::time::Instant,
) -> Result<Applied, StoreError> {
    let mut total = Applied::default();
    for plan in store.active_credit_plans().await? {
        if std::time::Instant::now() >= deadline {
            tracing::warn!(
                grants = total.grants,
                "plan applications stopped at the run's time budget; the next run goes on"
            );
            break;
        }
        match apply_plan(store, clock, &plan).await {
            Ok(done) => {
                total.grants += done.grants;
                total.entitlements += done.entitlements;
            }
            Err(e) => {
                tracing::error!(tenant = %plan.tenant, plan = %plan.id, error = %e, "plan application failed; skipped")
            }
        }
    }
    Ok(total)
}

/// Every published plan of one tenant (the per-tenant form of [`apply_all`]).
pub async fn apply_tenant(store: &dyn Store, clock: &dyn Clock, tenant: &TenantId) -> Result<Applied, StoreError> {
    let mut total = Applied::default();
    for plan in store
        .list_credit_plans(tenant)
        .await?
        .into_iter()
        .filter(|p| p.status == PlanStatus::Published)
    {
        let done = apply_plan(store, clock, &plan).await?;
        total.grants += done.grants;
        total.entitlements += done.entitlements;
    }
    Ok(total)
}

/// The storage port of this module: Credit plans (Flexprice credit grants) and their progress on each entitlement. Implemented by `grants_dynamo::DynamoStore` and
/// [`crate::memory::MemoryStore`]; the contract tests hold both to the same behaviour.
#[async_trait::async_trait]
pub trait PlanStore: Send + Sync {
    /// Writes a new credit plan (Flexprice credit grant).
    async fn insert_credit_plan(
        &self,
        plan: &crate::plans::CreditPlan,
        claim: Option<&crate::model::Claim>,
    ) -> Result<crate::ports::InsertOutcome, crate::ports::StoreError>;
    async fn get_credit_plan(
        &self,
        tenant: &crate::TenantId,
        id: &str,
    ) -> Result<Option<crate::plans::CreditPlan>, crate::ports::StoreError>;
    /// The tenant's plans, oldest first (an index read).
    async fn list_credit_plans(
        &self,
        tenant: &crate::TenantId,
    ) -> Result<Vec<crate::plans::CreditPlan>, crate::ports::StoreError>;
    /// Replaces a plan if its version is still `expected_version`; false otherwise.
    async fn replace_credit_plan(
        &self,
        plan: &crate::plans::CreditPlan,
        expected_version: u64,
    ) -> Result<bool, crate::ports::StoreError>;
    /// Every published plan of every tenant (the scheduler's index).
    async fn active_credit_plans(&self) -> Result<Vec<crate::plans::CreditPlan>, crate::ports::StoreError>;
    /// The tenant's entitlements with this plan id or subscription id (an index read).
    async fn entitlements_in_scope(
        &self,
        tenant: &crate::TenantId,
        scope: crate::plans::PlanScope,
        scope_id: &str,
    ) -> Result<Vec<crate::model::Entitlement>, crate::ports::StoreError>;
    /// The next period of the plan to apply to the entitlement (0 when none was).
    async fn plan_progress(
        &self,
        tenant: &crate::TenantId,
        entitlement: &crate::EntitlementId,
        plan_id: &str,
    ) -> Result<u64, crate::ports::StoreError>;
    /// In one transaction: the entitlement is active, the plan's progress on it is still `expected`
    /// and becomes `next`, and the grant is written.
    async fn apply_plan_period(
        &self,
        grant: &crate::model::Grant,
        plan_id: &str,
        expected: u64,
        next: u64,
    ) -> Result<crate::ports::PlanApply, crate::ports::StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    #[test]
    fn months_count_from_the_start_so_month_ends_do_not_drift() {
        let s = Span::Months(1);
        let jan31 = ts("2026-01-31T10:00:00Z");
        assert_eq!(s.times(jan31, 1), Some(ts("2026-02-28T10:00:00Z")));
        assert_eq!(s.times(jan31, 2), Some(ts("2026-03-31T10:00:00Z")));
        assert_eq!(s.times(ts("2028-01-31T00:00:00Z"), 1), Some(ts("2028-02-29T00:00:00Z")));
        assert_eq!(
            Span::Months(12).times(ts("2028-02-29T00:00:00Z"), 1),
            Some(ts("2029-02-28T00:00:00Z"))
        );
        assert_eq!(Span::Days(7).times(jan31, 2), Some(ts("2026-02-14T10:00:00Z")));
    }

    #[test]
    fn iso_periods() {
        assert_eq!(Period::Monthly.iso(1), "P1M");
        assert_eq!(Period::Quarterly.iso(2), "P6M");
        assert_eq!(Period::Annual.iso(1), "P1Y");
        assert_eq!(Period::Weekly.iso(3), "P3W");
        assert_eq!(Period::Daily.iso(10), "P10D");
    }
}
