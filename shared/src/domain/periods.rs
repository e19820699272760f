//! Entitlement periods: when the current period ends, the entitlement moves to the period that
//! contains now, its period counters start again, and each grant with rollover bounds keeps what is
//! left clamped to `[resetMinRollover, resetMaxRollover]` (a missing bound does not clamp that side).
//! Grants without bounds carry on untouched until they expire. Everything a reset changes is written
//! in one conditional transaction, with a rollover record in the ledger for each clamped grant.
use super::ledger::{Deduction, UsageStatus};
use super::model::{Entitlement, Grant};
use super::usage::UsageRecord;
use super::{Clock, Timestamp};
use crate::store::{Store, StoreError};
use chrono::Months;
use rust_decimal::Decimal;

/// The period's length in whole calendar months (1..=12), when `end` is exactly that after `start`.
pub fn whole_months(start: Timestamp, end: Timestamp) -> Option<u32> {
    (1..=12).find(|m| start.as_datetime().checked_add_months(Months::new(*m)) == Some(end.as_datetime()))
}

/// Start of period `k` of the entitlement's schedule (period 0 starts at the anchor).
fn boundary(e: &Entitlement, k: u64) -> Option<Timestamp> {
    let anchor = e.period_anchor.as_datetime();
    let moved = match e.period_months {
        Some(m) => anchor.checked_add_months(Months::new(u32::try_from(u64::from(m).checked_mul(k)?).ok()?))?,
        None => {
            let len = e.current_period_end.unix_seconds() - e.current_period_start.unix_seconds();
            anchor.checked_add_signed(chrono::TimeDelta::try_seconds(len.checked_mul(i64::try_from(k).ok()?)?)?)?
        }
    };
    Timestamp::from_datetime(moved).ok()
}

/// The period that contains `now`, when the current one has ended.
pub fn period_at(e: &Entitlement, now: Timestamp) -> Option<(Timestamp, Timestamp)> {
    if e.current_period_end > now {
        return None;
    }
    // Find the current period's index, then step forward (months: from the anchor, no drift).
    let mut k = 0u64;
    while boundary(e, k + 1)? <= e.current_period_start {
        k += 1;
    }
    loop {
        let (start, end) = (boundary(e, k)?, boundary(e, k + 1)?);
        if start <= now && now < end {
            return Some((start, end));
        }
        if start > now {
            return None;
        }
        k += 1;
    }
}

/// What a rollover leaves of a grant: `remaining` clamped to its bounds, never below what pending
/// usage holds.
pub fn rolled_over(g: &Grant) -> Decimal {
    let mut v = g.remaining;
    if let Some(max) = g.reset_max_rollover {
        v = v.min(max.value());
    }
    if let Some(min) = g.reset_min_rollover {
        v = v.max(min.value());
    }
    v.max(g.reserved)
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
        deductions.push(Deduction { grant_id: g.id.clone(), amount: g.remaining - kept });
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
    Some(Reset { old_end: at, start, end, grants: changed, record })
}

/// Resets every entitlement whose period ended by now (up to `limit` per run). Returns how many.
pub async fn reset_due(store: &dyn Store, clock: &dyn Clock, limit: usize) -> Result<usize, StoreError> {
    let now = clock.now();
    let mut done = 0;
    for (tenant, id) in store.entitlements_due_for_reset(now, limit).await? {
        let Some((entitlement, grants)) = store.load_entitlement(&tenant, &id).await? else { continue };
        let Some(reset) = plan_reset(&entitlement, &grants, now) else { continue };
        // False: another run reset it, or a grant moved; the next run looks again.
        if store.reset_period(&entitlement, &reset).await? {
            done += 1;
        }
    }
    Ok(done)
}

/// Resets the ended periods of one tenant's entitlements (the per-tenant form of [`reset_due`],
/// for operators and tests).
pub async fn reset_tenant(store: &dyn Store, clock: &dyn Clock, tenant: &super::TenantId) -> Result<usize, StoreError> {
    let now = clock.now();
    let mut done = 0;
    for e in store.list_entitlements(tenant, None).await? {
        let Some((entitlement, grants)) = store.load_entitlement(tenant, &e.id).await? else { continue };
        if !entitlement.is_active() {
            continue;
        }
        let Some(reset) = plan_reset(&entitlement, &grants, now) else { continue };
        if store.reset_period(&entitlement, &reset).await? {
            done += 1;
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::{EntitlementStatus, GrantDetails};
    use crate::domain::{CreditAmount, EntitlementId, GrantId, NonNegative, TenantId};
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
        assert_eq!(period_at(&e, ts("2026-03-01T00:00:00Z")), Some((ts("2026-02-28T00:00:00Z"), ts("2026-03-31T00:00:00Z"))));
        // Two missed periods: straight to the one containing now.
        let later = period_at(&e, ts("2026-04-30T12:00:00Z")).unwrap();
        assert_eq!(later, (ts("2026-04-30T00:00:00Z"), ts("2026-05-31T00:00:00Z")));
        let mut moved = e.clone();
        (moved.current_period_start, moved.current_period_end) = later;
        assert_eq!(period_at(&moved, ts("2026-06-01T00:00:00Z")).unwrap().0, ts("2026-05-31T00:00:00Z"));
    }

    #[test]
    fn other_lengths_repeat_exactly() {
        let e = entitlement("2026-03-01T00:00:00Z", "2026-03-08T00:00:00Z");
        assert_eq!(e.period_months, None);
        assert_eq!(period_at(&e, ts("2026-03-20T00:00:00Z")), Some((ts("2026-03-15T00:00:00Z"), ts("2026-03-22T00:00:00Z"))));
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
                }
                // The ledger agrees: its entries end at what is left.
                let postings: Vec<_> = reset.record.iter().map(UsageRecord::posting).collect();
                let deducted = before.amount.value() - before.remaining;
                let mut all = postings.clone();
                if !deducted.is_zero() {
                    all.push(crate::domain::ledger::Posting {
                        rollover: false,
                        event_id: "usage".into(),
                        occurred_at: ts("2026-02-01T00:00:00Z"),
                        recorded_at: ts("2026-02-01T00:00:00Z"),
                        status: UsageStatus::Committed,
                        deductions: vec![Deduction { grant_id: before.id.clone(), amount: deducted }],
                        overage: Decimal::ZERO,
                    });
                }
                let entries = crate::domain::ledger::grant_entries(now, &all);
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
