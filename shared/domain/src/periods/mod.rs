//! Entitlement periods: when the current period ends, the entitlement moves to the period that
//! contains now, its period counters start again, and each grant with rollover bounds keeps what is
//! left clamped to `[resetMinRollover, resetMaxRollover]` (a missing bound does not clamp that side).
//! Grants without bounds carry on untouched until they expire. Everything a reset changes is written
//! in one conditional transaction, with a rollover record in the ledger for each clamped grant.
use crate::entitlement_store::EntitlementStore;
use crate::kernel::StoreError;
use crate::ledger::Deduction;
use crate::model::{Entitlement, Grant};
use crate::usage::UsageRecord;
use crate::{Clock, Timestamp};
use chrono::Months;
use rust_decimal::Decimal;

/// The period's length in whole calendar months (1..=12), when `end` is exactly that after `start`.
pub(crate) fn whole_months(start: Timestamp, end: Timestamp) -> Option<u32> {
    (1..=12).find(|m| start.as_datetime().checked_add_months(Months::new(*m)) == Some(end.as_datetime()))
}

/// The shortest entitlement period accepted (security review finding 3: a sub-second period made
/// the reset loop advance by zero and stall every tenant's scheduled work).
pub(crate) const MIN_PERIOD_SECONDS: i64 = 3600;

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
fn period_at(e: &Entitlement, now: Timestamp) -> Option<(Timestamp, Timestamp)> {
    if e.current_period_end > now {
        return None;
    }
    let k = index_at(e, now)?;
    let (start, end) = (boundary(e, k)?, boundary(e, k.checked_add(1)?)?);
    (start <= now && now < end && start >= e.current_period_end).then_some((start, end))
}

/// Why an ended period cannot be moved on (bad data, e.g. a period shorter than the minimum).
#[derive(Debug, Clone, PartialEq, Eq)]
struct PeriodStuck(String);

/// Whether an entitlement whose period has ended can be reset at `now` at all.
fn check_resettable(e: &Entitlement, now: Timestamp) -> Result<(), PeriodStuck> {
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
/// [`crate::model::check_rollover_bounds`]), and a grant stored before that rule is capped here.
fn rolled_over(g: &Grant) -> Decimal {
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
    /// That record's entry in the entitlement's log (when it has one).
    pub log: Option<crate::ledger::LogAppend>,
}

/// The reset due for an entitlement at `now`, if its period has ended. Pure.
fn plan_reset(e: &Entitlement, grants: &[Grant], now: Timestamp) -> Option<Reset> {
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
        debug_assert!(new.holds_invariants(), "rollover left grant {} with {kept}", g.id);
        changed.push((new, g.version));
    }
    let record = (!deductions.is_empty()).then(|| {
        UsageRecord::adjustment(
            &e.tenant,
            &e.id,
            format!("rollover:{}", at.to_storage()),
            at,
            now,
            deductions,
        )
    });
    let log = record
        .as_ref()
        .and_then(|r| crate::usage::log_append(e, grants, &changed, &r.posting()));
    Some(Reset {
        old_end: at,
        start,
        end,
        grants: changed,
        record,
        log,
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
pub async fn reset_due<S>(
    store: &S,
    clock: &dyn Clock,
    limit: usize,
    deadline: std::time::Instant,
) -> Result<ResetRun, StoreError>
where
    S: PeriodStore + EntitlementStore + ?Sized,
{
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
async fn reset_one<S: PeriodStore + EntitlementStore + ?Sized>(
    store: &S,
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
pub async fn reset_tenant<S>(store: &S, clock: &dyn Clock, tenant: &super::TenantId) -> Result<usize, StoreError>
where
    S: PeriodStore + EntitlementStore + ?Sized,
{
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
    ) -> Result<Vec<(crate::TenantId, crate::EntitlementId)>, crate::kernel::StoreError>;
    /// In one transaction: moves the entitlement to the new period and zeroes its counters (if its
    /// period end is still `reset.old_end`), writes the clamped grants at the versions read, and the
    /// rollover record. False when anything moved.
    async fn reset_period(
        &self,
        entitlement: &crate::model::Entitlement,
        reset: &crate::periods::Reset,
    ) -> Result<bool, crate::kernel::StoreError>;
    /// Takes an entitlement out of the period-reset schedule (its GSI5 keys) and records why on
    /// it (`reset_blocked`), for an operator to look at.
    async fn block_period_reset(
        &self,
        tenant: &crate::TenantId,
        id: &crate::EntitlementId,
        reason: &str,
    ) -> Result<(), crate::kernel::StoreError>;
}

#[cfg(test)]
mod tests;
