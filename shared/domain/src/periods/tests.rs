use super::*;
use crate::ledger::UsageStatus;
use crate::model::{EntitlementStatus, NewGrantFields};
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
        log: Some(crate::ledger::LogHead::default()),
        lease_until: None,
        applying: None,
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
        let valid = crate::model::check_rollover_bounds(
            g.amount, g.reset_min_rollover, g.reset_max_rollover).is_ok();
        if valid {
            prop_assert!(min.is_none_or(|m| m <= amount));
        }
    }
}

/// A grant with `remaining` left, at version 3. The bounds are set directly, unchecked: the
/// properties also cover bounds stored before [`crate::model::check_rollover_bounds`].
fn grant(n: usize, amount: i64, remaining: i64, min: Option<i64>, max: Option<i64>) -> Grant {
    let mut g = Grant::new(NewGrantFields {
        tenant: TenantId::parse("t").unwrap(),
        entitlement_id: EntitlementId::parse("ent_1").unwrap(),
        customer_id: "c".into(),
        amount: CreditAmount::new(Decimal::from(amount)).unwrap(),
        effective_at: ts("2026-01-01T00:00:00Z"),
        created_at: ts("2026-01-01T00:00:00Z"),
        credit_type_id: None,
    });
    g.id = GrantId::parse(&format!("grt_{n:04}")).unwrap();
    g.remaining = Decimal::from(remaining);
    g.reset_max_rollover = max.map(|v| NonNegative::new(Decimal::from(v)).unwrap());
    g.reset_min_rollover = min.map(|v| NonNegative::new(Decimal::from(v)).unwrap());
    g.version = 3;
    g
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
