//! Entitlement periods: when the current period ends, the entitlement moves to the period that
//! contains now, its period counters start again, and each grant with rollover bounds keeps what is
//! left clamped to `[resetMinRollover, resetMaxRollover]` (a missing bound does not clamp that side).
//! Grants without bounds carry on untouched until they expire. Everything a reset changes is written
//! in one conditional transaction, with a rollover record in the ledger for each clamped grant.
use crate::ledger::{Deduction, UsageStatus};
use crate::model::{Entitlement, Grant};
use crate::ports::{Store, StoreError};
use crate::usage::UsageRecord;
use crate::{Clock, Timestamp};
use chrono::Months;
use rust_decimal::Decimal;

/// The period's length in whole calendar months (1..=12), when `end` is exactly that after `start`.
pub fn whole_months(start: Timestamp, end: Timestamp) -> Option<u32> {
    (1..=12).find(|m| start.as_datetime().checked_add_months(Months::new(*m)) == Some(end.as_datetime()))
}

/// The shortest entitlement period accepted (security review finding 3: a sub-second period made
/// the reset loop advance by zero and stall every tenant's scheduled work).
pub const MIN_PERIOD_SECONDS: i64 = 3600;

/// Start of period `k` of the entitlement's schedule (period 0 starts at the anchor).
fn boundary(e: &Entitlement, k: i64) -> Option<Timestamp> {
    let anchor = e.period_anchor.as_datetime();
    let moved = match e.period_months {
        Some(m) => {
            let months = u32::try_from(i64::from(m).checked_mul(k)?).ok()?;
            anchor.checked_add_months(Months::new(months))?
        }
        None => anchor.checked_add_signed(chrono::TimeDelta::try_seconds(period_seconds(e)?.checked_mul(k)?)?)?,
    };
    Timestamp::from_datetime(moved).ok()
}

/// The length of a period that is not whole months; None when it is shorter than
/// [`MIN_PERIOD_SECONDS`] (data written before the minimum existed).
fn period_seconds(e: &Entitlement) -> Option<i64> {
    let len = e
        .current_period_end
        .unix_seconds()
        .checked_sub(e.current_period_start.unix_seconds())?;
    (len >= MIN_PERIOD_SECONDS).then_some(len)
}

/// The index of the period containing `now`, computed (no stepping loop): a division for fixed
/// lengths; for calendar months the month difference, then at most two corrections each way for
/// days of the month.
fn index_at(e: &Entitlement, now: Timestamp) -> Option<i64> {
    let anchor = e.period_anchor;
    match e.period_months {
        None => now
            .unix_seconds()
            .checked_sub(anchor.unix_seconds())?
            .checked_div_euclid(period_seconds(e)?),
        Some(0) => None,
        Some(m) => {
            use chrono::Datelike;
            let (a, n) = (anchor.as_datetime(), now.as_datetime());
            let months = (i64::from(n.year()) - i64::from(a.year())) * 12 + i64::from(n.month()) - i64::from(a.month());
            let mut k = months.div_euclid(i64::from(m));
            for _ in 0..2 {
                if boundary(e, k)? > now {
                    k -= 1;
                }
            }
            for _ in 0..2 {
                if boundary(e, k + 1)? <= now {
                    k += 1;
                }
            }
            Some(k)
        }
    }
}

/// The period that contains `now`, when the current one has ended. None when it has not, or when
/// the entitlement's period cannot be computed (see [`PeriodStuck`]).
pub fn period_at(e: &Entitlement, now: Timestamp) -> Option<(Timestamp, Timestamp)> {
    if e.current_period_end > now {
        return None;
    }
    let k = index_at(e, now)?;
    let (start, end) = (boundary(e, k)?, boundary(e, k.checked_add(1)?)?);
    (start <= now && now < end && start >= e.current_period_end).then_some((start, end))
}

/// Why an ended period cannot be moved on (bad data, e.g. a period shorter than the minimum).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodStuck(pub String);

/// Whether an entitlement whose period has ended can be reset at `now` at all.
pub fn check_resettable(e: &Entitlement, now: Timestamp) -> Result<(), PeriodStuck> {
    if e.current_period_end > now || period_at(e, now).is_some() {
        return Ok(());
    }
    Err(PeriodStuck(format!(
        "period {}..{} (anchor {}) cannot be advanced to {}",
        e.current_period_start.to_rfc3339(),
        e.current_period_end.to_rfc3339(),
        e.period_anchor.to_rfc3339(),
        now.to_rfc3339()
    )))
}

/// What a rollover leaves of a grant: `remaining` clamped to its bounds, never below what pending
/// usage holds.
/// Never more than the grant's amount: the bounds are validated so (`resetMinRollover <= amount`,
/// [`super::grants::check_rollover_bounds`]), and a grant stored before that rule is capped here.
pub fn rolled_over(g: &Grant) -> Decimal {
    let mut v = g.remaining;
    if let Some(max) = g.reset_max_rollover {
        v = v.min(max.value());
    }
    if let Some(min) = g.reset_min_rollover {
        v = v.max(min.value());
    }
    let kept = v.min(g.amount.value()).max(g.reserved);
    debug_assert!(
        kept <= g.amount.value() || g.reserved > g.amount.value(),
        "rollover above the grant's amount"
    );
    kept
}

/// Everything one reset writes.
#[derive(Debug, Clone)]
pub struct Reset {
    /// The period end the reset was computed from (the write is conditional on it).
    pub old_end: Timestamp,
    pub start: Timestamp,
    pub end: Timestamp,
    /// Grants whose rest was clamped (new state, version read).
    pub grants: Vec<(Grant, u64)>,
    /// The ledger record of those adjustments, when there are any.
    pub record: Option<UsageRecord>,
}

/// The reset due for an entitlement at `now`, if its period has ended. Pure.
pub fn plan_reset(e: &Entitlement, grants: &[Grant], now: Timestamp) -> Option<Reset> {
    let (start, end) = period_at(e, now)?;
    let at = e.current_period_end;
    let mut changed = Vec::new();
    let mut deductions = Vec::new();
    for g in grants.iter().filter(|g| g.is_active_at(at)) {
        if g.reset_max_rollover.is_none() && g.reset_min_rollover.is_none() {
            continue;
        }
        let kept = rolled_over(g);
        if kept == g.remaining {
            continue;
        }
        deductions.push(Deduction {
            grant_id: g.id.clone(),
            amount: g.remaining - kept,
        });
        let mut new = g.clone();
        new.remaining = kept;
        new.version += 1;
        changed.push((new, g.version));
    }
    let record = (!deductions.is_empty()).then(|| UsageRecord {
        rollover: true,
        tenant: e.tenant.clone(),
        entitlement_id: e.id.clone(),
        event_id: format!("rollover:{}", at.to_storage()),
        amount: Decimal::ZERO,
        occurred_at: at,
        recorded_at: now,
        status: UsageStatus::Committed,
        deductions,
        overage: Decimal::ZERO,
        settled_at: None,
        fingerprint: Default::default(),
    });
    Some(Reset {
        old_end: at,
        start,
        end,
        grants: changed,
        record,
    })
}

/// What one scheduled reset run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResetRun {
    pub reset: usize,
    /// Entitlements whose reset failed (logged; tried again next run).
    pub failed: usize,
    /// Entitlements whose period cannot be computed: logged and taken out of the schedule.
    pub quarantined: usize,
    /// The run stopped at its deadline and left work for the next run.
    pub out_of_time: bool,
}

/// Resets every entitlement whose period ended by now (up to `limit` per run), until `deadline`.
/// One entitlement's failure, whichever tenant's, is logged and skipped; one whose period cannot
/// be computed is taken out of the reset schedule (`reset_blocked` on the item), so that bad data
/// never stalls the run for everyone else.
pub async fn reset_due(
    store: &dyn Store,
    clock: &dyn Clock,
    limit: usize,
    deadline: std::time::Instant,
) -> Result<ResetRun, StoreError> {
    let now = clock.now();
    let mut run = ResetRun::default();
    for (tenant, id) in store.entitlements_due_for_reset(now, limit).await? {
        if std::time::Instant::now() >= deadline {
            run.out_of_time = true;
            tracing::warn!(
                reset = run.reset,
                "period resets stopped at the run's time budget; the next run goes on"
            );
            break;
        }
        match reset_one(store, &tenant, &id, now).await {
            Ok(true) => run.reset += 1,
            Ok(false) => {}
            Err(ResetFailure::Stuck(why)) => {
                tracing::error!(tenant = %tenant, entitlement = %id, reason = %why.0, "period cannot be reset; taken out of the schedule");
                match store.block_period_reset(&tenant, &id, &why.0).await {
                    Ok(()) => run.quarantined += 1,
                    Err(e) => {
                        tracing::error!(tenant = %tenant, entitlement = %id, error = %e, "could not take it out of the schedule");
                        run.failed += 1;
                    }
                }
            }
            Err(ResetFailure::Store(e)) => {
                tracing::error!(tenant = %tenant, entitlement = %id, error = %e, "period reset failed; skipped");
                run.failed += 1;
            }
        }
    }
    Ok(run)
}

enum ResetFailure {
    Stuck(PeriodStuck),
    Store(StoreError),
}

/// Resets one entitlement if its period has ended: true when written.
async fn reset_one(
    store: &dyn Store,
    tenant: &super::TenantId,
    id: &super::EntitlementId,
    now: Timestamp,
) -> Result<bool, ResetFailure> {
    let Some((entitlement, grants)) = store.load_entitlement(tenant, id).await.map_err(ResetFailure::Store)? else {
        return Ok(false);
    };
    if !entitlement.is_active() {
        return Ok(false);
    }
    check_resettable(&entitlement, now).map_err(ResetFailure::Stuck)?;
    let Some(reset) = plan_reset(&entitlement, &grants, now) else {
        return Ok(false);
    };
    // False: another run reset it, or a grant moved; the next run looks again.
    store
        .reset_period(&entitlement, &reset)
        .await
        .map_err(ResetFailure::Store)
}

/// Resets the ended periods of one tenant's entitlements (the per-tenant form of [`reset_due`],
/// for operators and tests).
pub async fn reset_tenant(store: &dyn Store, clock: &dyn Clock, tenant: &super::TenantId) -> Result<usize, StoreError> {
    let now = clock.now();
    let mut done = 0;
    for e in store.list_entitlements(tenant, None).await? {
        match reset_one(store, tenant, &e.id, now).await {
            Ok(true) => done += 1,
            Ok(false) => {}
            Err(ResetFailure::Store(e)) => return Err(e),
            Err(ResetFailure::Stuck(why)) => {
                tracing::error!(entitlement = %e.id, reason = %why.0, "period cannot be reset")
            }
        }
    }
    Ok(done)
}

/// The storage port of this module: The period-reset schedule and the reset itself. Implemented by `grants_dynamo::DynamoStore` and
/// [`crate::memory::MemoryStore`]; the contract tests hold both to the same behaviour.
#[async_trait::async_trait]
pub trait PeriodStore: Send + Sync {
    /// Active entitlements whose current period ended by `now`, oldest end first (an index read).
    async fn entitlements_due_for_reset(
        &self,
        now: crate::Timestamp,
        limit: usize,
    ) -> Result<Vec<(crate::TenantId, crate::EntitlementId)>, crate::ports::StoreError>;
    /// In one transaction: moves the entitlement to the new period and zeroes its counters (if its
    /// period end is still `reset.old_end`), writes the clamped grants at the versions read, and the
    /// rollover record. False when anything moved.
    async fn reset_period(
        &self,
        entitlement: &crate::model::Entitlement,
        reset: &crate::periods::Reset,
    ) -> Result<bool, crate::ports::StoreError>;
    /// Takes an entitlement out of the period-reset schedule (its GSI5 keys) and records why on
    /// it (`reset_blocked`), for an operator to look at.
    async fn block_period_reset(
        &self,
        tenant: &crate::TenantId,
        id: &crate::EntitlementId,
        reason: &str,
    ) -> Result<(), crate::ports::StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EntitlementStatus, GrantDetails};
    use crate::{CreditAmount, EntitlementId, GrantId, NonNegative, TenantId};
    use proptest::prelude::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    fn entitlement(start: &str, end: &str) -> Entitlement {
        let (start, end) = (ts(start), ts(end));
        Entitlement {
            id: EntitlementId::parse("ent_1").unwrap(),
            tenant: TenantId::parse("t").unwrap(),
            customer_id: "c".into(),
            feature_id: "f".into(),
            feature_key: "f".into(),
            product_id: "p".into(),
            subscription_id: None,
            plan_id: None,
            status: EntitlementStatus::Active,
            active_from: start,
            active_to: None,
            metadata: Default::default(),
            is_soft_limit: false,
            pricing_unit_id: None,
            current_period_start: start,
            current_period_end: end,
            period_anchor: start,
            period_months: whole_months(start, end),
            usage_in_period: Decimal::ZERO,
            overage: Decimal::ZERO,
            created_at: start,
        }
    }

    #[test]
    fn monthly_periods_from_jan_31_do_not_drift() {
        let e = entitlement("2026-01-31T00:00:00Z", "2026-02-28T00:00:00Z");
        assert_eq!(e.period_months, Some(1));
        assert_eq!(period_at(&e, ts("2026-02-27T00:00:00Z")), None);
        assert_eq!(
            period_at(&e, ts("2026-03-01T00:00:00Z")),
            Some((ts("2026-02-28T00:00:00Z"), ts("2026-03-31T00:00:00Z")))
        );
        // Two missed periods: straight to the one containing now.
        let later = period_at(&e, ts("2026-04-30T12:00:00Z")).unwrap();
        assert_eq!(later, (ts("2026-04-30T00:00:00Z"), ts("2026-05-31T00:00:00Z")));
        let mut moved = e.clone();
        (moved.current_period_start, moved.current_period_end) = later;
        assert_eq!(
            period_at(&moved, ts("2026-06-01T00:00:00Z")).unwrap().0,
            ts("2026-05-31T00:00:00Z")
        );
    }

    #[test]
    fn other_lengths_repeat_exactly() {
        let e = entitlement("2026-03-01T00:00:00Z", "2026-03-08T00:00:00Z");
        assert_eq!(e.period_months, None);
        assert_eq!(
            period_at(&e, ts("2026-03-20T00:00:00Z")),
            Some((ts("2026-03-15T00:00:00Z"), ts("2026-03-22T00:00:00Z")))
        );
    }

    fn at_unix(seconds: i64) -> Option<Timestamp> {
        Timestamp::from_datetime(chrono::DateTime::from_timestamp(seconds, 0)?).ok()
    }

    /// Periods are found by arithmetic, not by stepping: a period index millions of periods away
    /// costs the same, and a period under the minimum is reported instead of looping.
    #[test]
    fn the_period_index_is_computed_not_stepped() {
        let e = entitlement("2026-03-01T00:00:00Z", "2026-03-01T01:00:00Z");
        let far = ts("2126-03-01T00:30:00Z");
        let (start, end) = period_at(&e, far).unwrap();
        assert_eq!((start, end), (ts("2126-03-01T00:00:00Z"), ts("2126-03-01T01:00:00Z")));
        let mut stuck = entitlement("2026-03-01T00:00:00Z", "2026-03-01T00:00:00.5Z");
        stuck.period_months = None;
        assert_eq!(period_at(&stuck, ts("2026-03-02T00:00:00Z")), None);
        assert!(check_resettable(&stuck, ts("2026-03-02T00:00:00Z")).is_err());
        assert!(check_resettable(&e, ts("2026-03-02T00:00:00Z")).is_ok());
        // Months, from a 31st, a century on.
        let m = entitlement("2026-01-31T00:00:00Z", "2026-02-28T00:00:00Z");
        assert_eq!(
            period_at(&m, ts("2126-03-15T00:00:00Z")),
            Some((ts("2126-02-28T00:00:00Z"), ts("2126-03-31T00:00:00Z")))
        );
    }

    proptest! {
        /// For any anchor, length and instant, the computed period contains the instant and is a
        /// whole number of periods from the anchor.
        #[test]
        fn computed_periods_contain_now(anchor in 0i64..2_000_000_000, len in 3600i64..40_000_000, ahead in 0i64..4_000_000_000) {
            let start = at_unix(anchor).unwrap();
            let end = at_unix(anchor + len).unwrap();
            let mut e = entitlement(&start.to_rfc3339(), &end.to_rfc3339());
            e.period_months = None;
            let now = at_unix(anchor + len + ahead).unwrap();
            let (s, t) = period_at(&e, now).unwrap();
            prop_assert!(s <= now && now < t);
            prop_assert_eq!((s.unix_seconds() - anchor) % len, 0);
            prop_assert_eq!(t.unix_seconds() - s.unix_seconds(), len);
        }

        /// Monthly periods from any day of any month: the period found contains now and starts on
        /// the anchor's schedule.
        #[test]
        fn computed_month_periods_contain_now(month in 1u32..=12, day in 1u32..=31, months in 1u32..=12, ahead_days in 0i64..20_000) {
            use chrono::TimeZone;
            let Some(a) = chrono::Utc.with_ymd_and_hms(2026, month, day, 0, 0, 0).single() else { return Ok(()) };
            let anchor = Timestamp::from_datetime(a).unwrap();
            let end = Timestamp::from_datetime(a.checked_add_months(Months::new(months)).unwrap()).unwrap();
            let e = entitlement(&anchor.to_rfc3339(), &end.to_rfc3339());
            prop_assert_eq!(e.period_months, Some(months));
            let now = end.plus_seconds(ahead_days * 86_400).unwrap();
            let (s, t) = period_at(&e, now).unwrap();
            prop_assert!(s <= now && now < t);
            let k = (0..=20_000i64).find(|k| boundary(&e, *k) == Some(s));
            prop_assert!(k.is_some());
            prop_assert_eq!(boundary(&e, k.unwrap() + 1), Some(t));
        }

        /// The invariant: whatever its bounds (validated ones, or ones stored before validation), a
        /// rollover never leaves a grant more than its amount.
        #[test]
        fn rollover_never_exceeds_the_amount(amount in 1i64..1000, used in 0i64..1000, min in prop::option::of(0i64..5000), max in prop::option::of(0i64..5000)) {
            let g = grant(1, amount, amount - used.min(amount), min, max);
            prop_assert!(rolled_over(&g) <= g.amount.value());
            let valid = crate::grants::check_rollover_bounds(
                g.amount, g.reset_min_rollover, g.reset_max_rollover).is_ok();
            if valid {
                prop_assert!(min.is_none_or(|m| m <= amount));
            }
        }
    }

    fn grant(n: usize, amount: i64, remaining: i64, min: Option<i64>, max: Option<i64>) -> Grant {
        Grant {
            id: GrantId::parse(&format!("grt_{n:04}")).unwrap(),
            tenant: TenantId::parse("t").unwrap(),
            entitlement_id: EntitlementId::parse("ent_1").unwrap(),
            customer_id: "c".into(),
            amount: CreditAmount::new(Decimal::from(amount)).unwrap(),
            remaining: Decimal::from(remaining),
            effective_at: ts("2026-01-01T00:00:00Z"),
            expires_at: None,
            voided_at: None,
            created_at: ts("2026-01-01T00:00:00Z"),
            priority: None,
            reset_max_rollover: max.map(|v| NonNegative::new(Decimal::from(v)).unwrap()),
            reset_min_rollover: min.map(|v| NonNegative::new(Decimal::from(v)).unwrap()),
            recurrence_period: None,
            idempotency_key: None,
            reserved: Decimal::ZERO,
            last_used_at: None,
            version: 3,
            credit_type_id: None,
            details: GrantDetails::default(),
        }
    }

    proptest! {
        /// Rollover: every bounded grant keeps its rest clamped to [min, max]; unbounded grants are
        /// untouched; the ledger's entries end at the new remainders; a second reset changes nothing.
        #[test]
        fn rollover_clamps_to_the_bounds(
            specs in prop::collection::vec((1i64..1000, 0i64..1000, prop::option::of(0i64..500), prop::option::of(0i64..500)), 1..10),
        ) {
            let e = entitlement("2026-01-31T00:00:00Z", "2026-02-28T00:00:00Z");
            let grants: Vec<Grant> = specs
                .iter()
                .enumerate()
                .map(|(i, (amount, rem, a, b))| {
                    let (min, max) = match (*a, *b) {
                        (Some(x), Some(y)) => (Some(x.min(y)), Some(x.max(y))),
                        other => other,
                    };
                    // Bounds as validated: resetMinRollover <= amount (check_rollover_bounds).
                    let min = min.map(|m| m.min(*amount));
                    grant(i, *amount, (*rem).min(*amount), min, max)
                })
                .collect();
            let reset = plan_reset(&e, &grants, ts("2026-03-02T00:00:00Z")).unwrap();
            prop_assert_eq!((reset.start, reset.end), (ts("2026-02-28T00:00:00Z"), ts("2026-03-31T00:00:00Z")));
            let mut after = grants.clone();
            for (g, read) in &reset.grants {
                prop_assert_eq!(*read, 3);
                let slot = after.iter_mut().find(|x| x.id == g.id).unwrap();
                *slot = g.clone();
            }
            for (before, now) in grants.iter().zip(&after) {
                let lo = before.reset_min_rollover.map(|v| v.value()).unwrap_or(Decimal::MIN);
                let hi = before.reset_max_rollover.map(|v| v.value()).unwrap_or(Decimal::MAX);
                if before.reset_min_rollover.is_none() && before.reset_max_rollover.is_none() {
                    prop_assert_eq!(now.remaining, before.remaining);
                } else {
                    prop_assert_eq!(now.remaining, before.remaining.min(hi).max(lo));
                    prop_assert!(now.remaining >= lo && now.remaining <= hi);
                    prop_assert!(now.remaining <= now.amount.value(), "never more than granted");
                }
                // The ledger agrees: its entries end at what is left.
                let postings: Vec<_> = reset.record.iter().map(UsageRecord::posting).collect();
                let deducted = before.amount.value() - before.remaining;
                let mut all = postings.clone();
                if !deducted.is_zero() {
                    all.push(crate::ledger::Posting {
                        rollover: false,
                        event_id: "usage".into(),
                        occurred_at: ts("2026-02-01T00:00:00Z"),
                        recorded_at: ts("2026-02-01T00:00:00Z"),
                        status: UsageStatus::Committed,
                        deductions: vec![Deduction { grant_id: before.id.clone(), amount: deducted }],
                        overage: Decimal::ZERO,
                    });
                }
                let entries = crate::ledger::grant_entries(now, &all);
                prop_assert_eq!(entries.last().unwrap().running_balance, now.remaining);
            }
            // Idempotent: once clamped, a later reset leaves every grant as it is.
            let mut moved = e.clone();
            (moved.current_period_start, moved.current_period_end) = (reset.start, reset.end);
            let again = plan_reset(&moved, &after, ts("2026-04-01T00:00:00Z")).unwrap();
            prop_assert!(again.grants.is_empty());
        }
    }
}
