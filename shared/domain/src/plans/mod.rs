//! Credit grant plans (Flexprice "credit grants"): a template of credits that is *applied* to
//! entitlements as real grants. SUBSCRIPTION scope applies to the entitlements that carry the
//! subscription id, PLAN scope to those provisioned with the plan id. ONETIME applies once per
//! entitlement; RECURRING once per period from `start_date` until `end_date`. Each application is
//! idempotent per (plan, entitlement, period): a progress item in the entitlement's partition is
//! advanced in the same transaction that writes the grant, so a doubled or retried run never grants
//! twice and a missed run catches up.
//!
//! This file holds the model; `operations.rs` the Flexprice operations (create, get, update,
//! delete, list) and `schedule.rs` the applications (due periods, their grants, the runs).
use crate::{CreditAmount, TenantId, Timestamp};
use chrono::Months;
use std::collections::BTreeMap;

mod operations;
mod schedule;

pub use operations::{
    create, delete, get, list, update, CreatePlanError, DeletePlanError, NewCreditPlan, PlanFilter, PlanLookupError,
    PlanUpdate, UpdatePlanError,
};
pub(crate) use schedule::apply_plan;
pub use schedule::{apply_all, apply_tenant, Applied};

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

/// What happened to one credit-plan application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanApply {
    /// The grant and the plan's progress on the entitlement were written together.
    Applied,
    /// The progress was not where this run read it: another run applied it. Nothing written.
    Moved,
    /// The entitlement is not active: nothing written.
    EntitlementInactive,
}

/// The storage port of this module: Credit plans (Flexprice credit grants) and their progress on each entitlement. Implemented by `grants_dynamo::DynamoStore` and
/// [`crate::memory::MemoryStore`]; the contract tests hold both to the same behaviour.
#[async_trait::async_trait]
pub trait PlanStore: Send + Sync {
    /// Writes a new credit plan (Flexprice credit grant).
    async fn insert_credit_plan(
        &self,
        plan: &crate::plans::CreditPlan,
        claim: Option<&crate::kernel::Claim>,
    ) -> Result<crate::kernel::InsertOutcome, crate::kernel::StoreError>;
    async fn get_credit_plan(
        &self,
        tenant: &crate::TenantId,
        id: &str,
    ) -> Result<Option<crate::plans::CreditPlan>, crate::kernel::StoreError>;
    /// The tenant's plans, oldest first (an index read).
    async fn list_credit_plans(
        &self,
        tenant: &crate::TenantId,
    ) -> Result<Vec<crate::plans::CreditPlan>, crate::kernel::StoreError>;
    /// Replaces a plan if its version is still `expected_version`; false otherwise.
    async fn replace_credit_plan(
        &self,
        plan: &crate::plans::CreditPlan,
        expected_version: u64,
    ) -> Result<bool, crate::kernel::StoreError>;
    /// Every published plan of every tenant (the scheduler's index).
    async fn active_credit_plans(&self) -> Result<Vec<crate::plans::CreditPlan>, crate::kernel::StoreError>;
    /// The tenant's entitlements with this plan id or subscription id (an index read).
    async fn entitlements_in_scope(
        &self,
        tenant: &crate::TenantId,
        scope: crate::plans::PlanScope,
        scope_id: &str,
    ) -> Result<Vec<crate::model::Entitlement>, crate::kernel::StoreError>;
    /// The next period of the plan to apply to the entitlement (0 when none was).
    async fn plan_progress(
        &self,
        tenant: &crate::TenantId,
        entitlement: &crate::EntitlementId,
        plan_id: &str,
    ) -> Result<u64, crate::kernel::StoreError>;
    /// In one transaction: the entitlement is active, the plan's progress on it is still `expected`
    /// and becomes `next`, and the grant is written.
    async fn apply_plan_period(
        &self,
        grant: &crate::model::Grant,
        plan_id: &str,
        expected: u64,
        next: u64,
    ) -> Result<crate::plans::PlanApply, crate::kernel::StoreError>;
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
