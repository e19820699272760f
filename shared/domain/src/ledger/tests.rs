use super::allocation::is_consumable;
use super::*;
use crate::model::{Grant, NewGrantFields};
use crate::{CreditAmount, EntitlementId, GrantId, Priority, TenantId, Timestamp};
use proptest::prelude::*;
use rust_decimal::Decimal;

fn t(secs: i64) -> Timestamp {
    Timestamp::parse("2026-01-01T00:00:00Z")
        .unwrap()
        .plus_seconds(secs)
        .unwrap()
}

fn grant(n: usize, amount: i64, priority: Option<i64>, expires: Option<i64>, effective: i64) -> Grant {
    let mut g = Grant::new(NewGrantFields {
        tenant: TenantId::parse("t1").unwrap(),
        entitlement_id: EntitlementId::parse("ent_00000000000000000000000001").unwrap(),
        customer_id: "c".into(),
        amount: CreditAmount::new(Decimal::from(amount)).unwrap(),
        effective_at: t(effective),
        created_at: t(0),
        credit_type_id: None,
    })
    .with_expiry(expires.map(t))
    .with_priority(priority.map(|p| Priority::new(Decimal::from(p)).unwrap()));
    g.id = GrantId::parse(&format!("grt_{:026}", n)).unwrap();
    g
}

/// Records usage the way the service does: allocate against the current state, then apply.
fn record(grants: &mut [Grant], postings: &mut Vec<Posting>, id: &str, at: Timestamp, amount: Decimal, pending: bool) {
    let a = allocate(grants, at, amount);
    apply(
        grants,
        &a.deductions,
        if pending { Effect::Reserve } else { Effect::Consume },
    );
    postings.push(Posting {
        rollover: false,
        event_id: id.to_owned(),
        occurred_at: at,
        recorded_at: at,
        status: if pending {
            UsageStatus::Pending
        } else {
            UsageStatus::Committed
        },
        deductions: a.deductions,
        overage: a.overage,
    });
}

#[test]
fn burns_lowest_priority_then_soonest_expiry_then_never_expiring() {
    let grants = vec![
        grant(1, 10, Some(2), Some(100), 0),
        grant(2, 10, Some(1), None, 0),
        grant(3, 10, Some(1), Some(200), 0),
        grant(4, 10, Some(1), Some(100), 0),
    ];
    let a = allocate(&grants, t(10), Decimal::from(35));
    let order: Vec<&str> = a.deductions.iter().map(|d| d.grant_id.as_str()).collect();
    assert_eq!(
        order,
        [
            grants[3].id.as_str(),
            grants[2].id.as_str(),
            grants[1].id.as_str(),
            grants[0].id.as_str()
        ]
    );
    assert_eq!(a.deductions[3].amount, Decimal::from(5));
    assert_eq!(a.overage, Decimal::ZERO);
}

#[test]
fn skips_grants_not_yet_effective_expired_or_voided_and_records_overage() {
    let mut voided = grant(3, 10, None, None, 0);
    voided.voided_at = Some(t(5));
    let grants = vec![
        grant(1, 10, None, None, 50),
        grant(2, 10, None, Some(10), 0),
        voided,
        grant(4, 4, None, None, 0),
    ];
    let a = allocate(&grants, t(20), Decimal::from(6));
    assert_eq!(
        a.deductions,
        vec![Deduction {
            grant_id: grants[3].id.clone(),
            amount: Decimal::from(4)
        }]
    );
    assert_eq!(a.overage, Decimal::from(2));
}

#[test]
fn reserved_credits_are_not_available_and_release_returns_them() {
    let mut grants = vec![grant(1, 10, None, None, 0)];
    let mut postings = Vec::new();
    record(&mut grants, &mut postings, "p", t(1), Decimal::from(8), true);
    assert_eq!(grants[0].available(), Decimal::from(2));
    let b = balance_at(&grants, &postings, t(2), t(0));
    assert_eq!(
        (b.excluding_pending, b.including_pending),
        (Decimal::from(10), Decimal::from(2))
    );
    let a = allocate(&grants, t(2), Decimal::from(5));
    assert_eq!(a.overage, Decimal::from(3));
    apply(&mut grants, &postings[0].deductions, Effect::Release);
    assert_eq!(grants[0].available(), Decimal::from(10));
}

#[test]
fn void_and_expiry_take_the_rest_out_from_then_on() {
    let mut g = grant(1, 10, None, Some(100), 0);
    let mut postings = Vec::new();
    record(
        std::slice::from_mut(&mut g),
        &mut postings,
        "u",
        t(10),
        Decimal::from(3),
        false,
    );
    g.voided_at = Some(t(50));
    let entries = grant_entries(&g, &postings);
    let kinds: Vec<EntryKind> = entries.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [EntryKind::Grant, EntryKind::Deduction, EntryKind::Void]);
    assert_eq!(entries[2].amount, Decimal::from(-7));
    assert_eq!(
        grant_balance(&g, &postings, t(49)).unwrap().excluding_pending,
        Decimal::from(7)
    );
    assert!(grant_balance(&g, &postings, t(50)).is_none());
    assert_eq!(
        grant_balance(&g, &postings, t(5)).unwrap().excluding_pending,
        Decimal::from(10)
    );
}

/// Sum of the entries effective at or before `at`: the grant's posted balance then.
fn posted_at(entries: &[Entry], at: Timestamp) -> Decimal {
    entries.iter().filter(|e| e.effective_at <= at).map(|e| e.amount).sum()
}

/// A random grant: amount in cents, small priorities, optional expiry and effective offsets.
fn arb_grant() -> impl Strategy<Value = (i64, Option<i64>, Option<i64>, i64)> {
    (
        1i64..5_000,
        prop::option::of(0i64..3),
        prop::option::of(50i64..400),
        0i64..40,
    )
}

fn build(specs: &[(i64, Option<i64>, Option<i64>, i64)]) -> Vec<Grant> {
    specs
        .iter()
        .enumerate()
        .map(|(i, (amt, pr, exp, eff))| {
            let mut g = grant(i + 1, *amt, *pr, exp.map(|e| e + eff), *eff);
            g.amount = CreditAmount::new(Decimal::new(*amt, 2)).unwrap();
            g.remaining = g.amount.value();
            g
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Burn order is respected, no remainder goes negative, and everything adds up.
    #[test]
    fn ledger_invariants(
        specs in prop::collection::vec(arb_grant(), 0..12),
        usage in prop::collection::vec((1i64..3_000, 0i64..500, any::<bool>()), 1..25),
    ) {
        let mut grants = build(&specs);
        let mut postings = Vec::new();
        let mut used = Decimal::ZERO;
        for (i, (cents, at, pending)) in usage.iter().enumerate() {
            let amount = Decimal::new(*cents, 2);
            let at = t(*at);
            let before = grants.clone();
            let a = allocate(&grants, at, amount);
            // Burn order: a grant is drawn on only when every consumable grant before it is exhausted.
            let mut consumable: Vec<&Grant> = before.iter().filter(|g| is_consumable(g, at)).collect();
            consumable.sort_by(|x, y| burn_order(x, y));
            let taken: Decimal = a.deductions.iter().map(|d| d.amount).sum();
            let mut left = amount;
            for g in &consumable {
                let expect = g.available().min(left);
                let got: Decimal = a.deductions.iter().filter(|d| d.grant_id == g.id).map(|d| d.amount).sum();
                prop_assert_eq!(got, expect);
                left -= expect;
            }
            prop_assert_eq!(taken + a.overage, amount);
            prop_assert_eq!(a.overage, left);
            record(&mut grants, &mut postings, &format!("e{i}"), at, amount, *pending);
            if !pending { used += amount; }
            for g in &grants {
                prop_assert!(g.remaining >= Decimal::ZERO);
                prop_assert!(g.reserved >= Decimal::ZERO && g.reserved <= g.remaining);
            }
        }
        // Conservation: granted = remaining + committed deductions; used = committed deductions + overage.
        let granted: Decimal = grants.iter().map(|g| g.amount.value()).sum();
        let remaining: Decimal = grants.iter().map(|g| g.remaining).sum();
        let committed = postings.iter().filter(|p| p.status == UsageStatus::Committed);
        let deducted: Decimal = committed.clone().flat_map(|p| p.deductions.iter()).map(|d| d.amount).sum();
        let overage: Decimal = committed.map(|p| p.overage).sum();
        prop_assert_eq!(granted, remaining + deducted);
        prop_assert_eq!(used, deducted + overage);
        // Running balances: each is the previous plus the entry, ending at what is left.
        for g in &grants {
            let entries = grant_entries(g, &postings);
            let mut running = Decimal::ZERO;
            for e in &entries {
                running += e.amount;
                prop_assert_eq!(e.running_balance, running);
                prop_assert!(e.running_balance >= Decimal::ZERO);
            }
            if g.expires_at.is_none() {
                prop_assert_eq!(running, g.remaining);
            }
        }
        // The balance at any instant is the entries' sum up to it, posted and pending.
        for probe in [0i64, 25, 120, 300, 499] {
            let at = t(probe);
            for g in &grants {
                let Some(b) = grant_balance(g, &postings, at) else { continue };
                let posted = posted_at(&grant_entries(g, &postings), at);
                let held = posted_at(&pending_entries(g, &postings), at);
                prop_assert_eq!(b.excluding_pending, posted);
                prop_assert_eq!(b.including_pending, posted + held);
            }
            // The entitlement's balance gives each active grant exactly that grant's balance.
            for b in balance_at(&grants, &postings, at, t(0)).grants {
                let g = grants.iter().find(|g| g.id == b.grant_id).unwrap();
                prop_assert_eq!(Some(b), grant_balance(g, &postings, at));
            }
        }
    }

    /// Splitting usage at one instant into several events changes nothing.
    #[test]
    fn split_independent(
        specs in prop::collection::vec(arb_grant(), 0..10),
        parts in prop::collection::vec(1i64..2_000, 1..8),
        at in 0i64..500,
    ) {
        let at = t(at);
        let total: i64 = parts.iter().sum();
        let mut whole = build(&specs);
        let mut p1 = Vec::new();
        record(&mut whole, &mut p1, "all", at, Decimal::new(total, 2), false);
        let mut split = build(&specs);
        let mut p2 = Vec::new();
        for (i, c) in parts.iter().enumerate() {
            record(&mut split, &mut p2, &format!("p{i}"), at, Decimal::new(*c, 2), false);
        }
        let rem = |gs: &[Grant]| gs.iter().map(|g| g.remaining).collect::<Vec<_>>();
        prop_assert_eq!(rem(&whole), rem(&split));
        let over = |ps: &[Posting]| ps.iter().map(|p| p.overage).sum::<Decimal>();
        prop_assert_eq!(over(&p1), over(&p2));
        let b1 = balance_at(&whole, &p1, at, t(0));
        let b2 = balance_at(&split, &p2, at, t(0));
        prop_assert_eq!(b1, b2);
    }

    /// The balance now, computed from the entries, matches the grants' stored remainders.
    #[test]
    fn balance_now_matches_remaining(
        specs in prop::collection::vec(arb_grant(), 1..10),
        usage in prop::collection::vec((1i64..3_000, 0i64..200), 1..15),
    ) {
        let mut grants = build(&specs);
        let mut postings = Vec::new();
        for (i, (c, at)) in usage.iter().enumerate() {
            record(&mut grants, &mut postings, &format!("u{i}"), t(*at), Decimal::new(*c, 2), false);
        }
        let now = t(200);
        let b = balance_at(&grants, &postings, now, t(0));
        let expect: Decimal = grants.iter().filter(|g| g.is_active_at(now)).map(|g| g.remaining).sum();
        prop_assert_eq!(b.excluding_pending + b.overage, expect);
    }
}
