//! The credit ledger, as pure functions: the burn-down order, how usage is allocated to grants,
//! and balances and ledger entries at any instant. The store only persists what these decide.
//!
//! **Burn-down order** (one total order, published in the README): priority ascending (a grant
//! without a priority counts as 0), then expiry soonest first with never-expiring grants last, then
//! effective time, then creation time, then id.
//!
//! A grant is **consumable** by usage that occurred at `t` when it is not voided and
//! `effective_at <= t < expires_at`. Usage draws on consumable grants in burn-down order, each up to
//! its available credits (`remaining - reserved`); what no grant covers is overage, recorded on the
//! entitlement and never as a negative grant.
use crate::model::Grant;
use crate::{GrantId, Timestamp};
use rust_decimal::Decimal;
use std::cmp::Ordering;
use std::collections::HashMap;

/// Compares two grants in burn-down order.
pub fn burn_order(a: &Grant, b: &Grant) -> Ordering {
    let priority = |g: &Grant| g.priority.map(|p| p.value()).unwrap_or_default();
    priority(a)
        .cmp(&priority(b))
        .then_with(|| match (a.expires_at, b.expires_at) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        })
        .then_with(|| a.effective_at.cmp(&b.effective_at))
        .then_with(|| a.created_at.cmp(&b.created_at))
        .then_with(|| a.id.as_str().cmp(b.id.as_str()))
}

/// True when usage that occurred at `at` may draw on the grant.
pub fn is_consumable(g: &Grant, at: Timestamp) -> bool {
    g.voided_at.is_none() && g.effective_at <= at && g.expires_at.is_none_or(|e| at < e)
}

/// Credits taken from one grant by one usage event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deduction {
    pub grant_id: GrantId,
    pub amount: Decimal,
}

/// How one usage event is covered: by grants, in burn-down order, and the rest as overage.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Allocation {
    pub deductions: Vec<Deduction>,
    pub overage: Decimal,
}

/// Allocates `amount` of usage that occurred at `at` to the grants. Pure: nothing is changed.
pub fn allocate(grants: &[Grant], at: Timestamp, amount: Decimal) -> Allocation {
    let mut candidates: Vec<&Grant> = grants.iter().filter(|g| is_consumable(g, at)).collect();
    // burn_order is a total order (the id breaks every tie): unstable sort gives the same order.
    candidates.sort_unstable_by(|a, b| burn_order(a, b));
    let mut need = amount;
    let mut deductions = Vec::new();
    for g in candidates {
        if need <= Decimal::ZERO {
            break;
        }
        let take = g.available().min(need);
        if take > Decimal::ZERO {
            deductions.push(Deduction {
                grant_id: g.id.clone(),
                amount: take,
            });
            need -= take;
        }
    }
    Allocation {
        deductions,
        overage: need.max(Decimal::ZERO),
    }
}

/// What a usage event does to the grants it draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Committed usage: credits are consumed.
    Consume,
    /// Pending usage: credits are held.
    Reserve,
    /// A pending event is committed: held credits are consumed.
    Commit,
    /// A pending event is released: held credits become available again.
    Release,
}

/// Applies an allocation's deductions to the grants (in place) as `effect` says.
/// Returns the ids of the grants changed.
pub fn apply(grants: &mut [Grant], deductions: &[Deduction], effect: Effect) -> Vec<GrantId> {
    // Positions by id: one pass (borrowing the ids, not copying them), so an event over many
    // grants stays linear.
    let at: Vec<Option<usize>> = {
        let position: HashMap<&str, usize> = grants.iter().enumerate().map(|(i, g)| (g.id.as_str(), i)).collect();
        deductions
            .iter()
            .map(|d| position.get(d.grant_id.as_str()).copied())
            .collect()
    };
    let mut touched = Vec::new();
    for (d, i) in deductions.iter().zip(at) {
        let Some(g) = i.and_then(|i| grants.get_mut(i)) else {
            continue;
        };
        match effect {
            Effect::Consume => g.remaining -= d.amount,
            Effect::Reserve => g.reserved += d.amount,
            Effect::Commit => {
                g.remaining -= d.amount;
                g.reserved = (g.reserved - d.amount).max(Decimal::ZERO);
            }
            Effect::Release => g.reserved = (g.reserved - d.amount).max(Decimal::ZERO),
        }
        touched.push(g.id.clone());
    }
    touched
}

/// The state of a usage event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageStatus {
    Committed,
    Pending,
    Released,
}

impl UsageStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            UsageStatus::Committed => "committed",
            UsageStatus::Pending => "pending",
            UsageStatus::Released => "released",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "committed" => Some(Self::Committed),
            "pending" => Some(Self::Pending),
            "released" => Some(Self::Released),
            _ => None,
        }
    }
}

/// The part of a usage event the ledger computations need.
#[derive(Debug, Clone, PartialEq)]
pub struct Posting {
    /// A period-reset rollover adjustment rather than usage: its deductions may be negative (a
    /// top-up to the minimum rollover).
    pub rollover: bool,
    pub event_id: String,
    pub occurred_at: Timestamp,
    pub recorded_at: Timestamp,
    pub status: UsageStatus,
    pub deductions: Vec<Deduction>,
    pub overage: Decimal,
}

impl Posting {
    /// Ledger order of usage: when it occurred, then when it was recorded, then id.
    fn order(a: &Posting, b: &Posting) -> Ordering {
        a.occurred_at
            .cmp(&b.occurred_at)
            .then_with(|| a.recorded_at.cmp(&b.recorded_at))
            .then_with(|| a.event_id.cmp(&b.event_id))
    }
}

/// The kinds of ledger entries of one grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// The grant's credits arrive at `effective_at`.
    Grant,
    /// Usage drew on the grant.
    Deduction,
    /// What was left expired at `expires_at`.
    Expiration,
    /// What was left was voided at `voided_at`.
    Void,
    /// At a period reset, the rest was clamped to the grant's rollover bounds.
    Rollover,
}

/// One change to one grant's balance. `amount` is signed (+ grant, - everything else);
/// `running_balance` is the grant's balance after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub grant_id: GrantId,
    pub kind: EntryKind,
    pub amount: Decimal,
    pub effective_at: Timestamp,
    pub event_id: Option<String>,
    pub running_balance: Decimal,
}

/// The posted entries of one grant, in order, with the grant's running balance: its credits,
/// then every committed deduction, then (if it ended) the expiry or void of what was left.
pub fn grant_entries<'a>(grant: &Grant, postings: impl IntoIterator<Item = &'a Posting>) -> Vec<Entry> {
    let mut mine: Vec<(&Posting, Decimal)> = postings
        .into_iter()
        .filter(|p| p.status == UsageStatus::Committed)
        .filter_map(|p| {
            let amount: Decimal = p
                .deductions
                .iter()
                .filter(|d| d.grant_id == grant.id)
                .map(|d| d.amount)
                .sum();
            (!amount.is_zero()).then_some((p, amount))
        })
        .collect();
    mine.sort_by(|a, b| Posting::order(a.0, b.0));
    let mut balance = grant.amount.value();
    let mut entries = vec![Entry {
        grant_id: grant.id.clone(),
        kind: EntryKind::Grant,
        amount: balance,
        effective_at: grant.effective_at,
        event_id: None,
        running_balance: balance,
    }];
    for (p, amount) in mine {
        balance -= amount;
        entries.push(Entry {
            grant_id: grant.id.clone(),
            kind: if p.rollover {
                EntryKind::Rollover
            } else {
                EntryKind::Deduction
            },
            amount: -amount,
            effective_at: p.occurred_at.max(grant.effective_at),
            event_id: Some(p.event_id.clone()),
            running_balance: balance,
        });
    }
    let end = match (grant.voided_at, grant.expires_at) {
        (Some(v), Some(e)) if e <= v => Some((EntryKind::Expiration, e)),
        (Some(v), _) => Some((EntryKind::Void, v)),
        (None, Some(e)) => Some((EntryKind::Expiration, e)),
        (None, None) => None,
    };
    if let Some((kind, at)) = end {
        let at = at.max(grant.effective_at);
        // Deductions are never later than the end (usage must occur before expiry, and a voided
        // grant takes no new usage), so the end comes last; the whole rest leaves.
        entries.push(Entry {
            grant_id: grant.id.clone(),
            kind,
            amount: -balance,
            effective_at: at,
            event_id: None,
            running_balance: Decimal::ZERO,
        });
    }
    entries
}

/// Pending deductions of one grant (credits held by pending usage), in ledger order.
pub fn pending_entries<'a>(grant: &Grant, postings: impl IntoIterator<Item = &'a Posting>) -> Vec<Entry> {
    let mut mine: Vec<(&Posting, Decimal)> = postings
        .into_iter()
        .filter(|p| p.status == UsageStatus::Pending)
        .filter_map(|p| {
            let amount: Decimal = p
                .deductions
                .iter()
                .filter(|d| d.grant_id == grant.id)
                .map(|d| d.amount)
                .sum();
            (amount > Decimal::ZERO).then_some((p, amount))
        })
        .collect();
    mine.sort_by(|a, b| Posting::order(a.0, b.0));
    let mut balance = grant.remaining;
    mine.into_iter()
        .map(|(p, amount)| {
            balance -= amount;
            Entry {
                grant_id: grant.id.clone(),
                kind: EntryKind::Deduction,
                amount: -amount,
                effective_at: p.occurred_at,
                event_id: Some(p.event_id.clone()),
                running_balance: balance,
            }
        })
        .collect()
}

/// One grant's balance at an instant.
#[derive(Debug, Clone, PartialEq)]
pub struct GrantBalance {
    pub grant_id: GrantId,
    pub excluding_pending: Decimal,
    pub including_pending: Decimal,
}

/// One grant's balance at `at`, or None when the grant is not active then. The same sums as
/// [`grant_entries`] and [`pending_entries`] up to `at`, without building the entries: an
/// active grant has not ended by `at`, so only its credits and the deductions up to `at` count.
pub fn grant_balance<'a, P>(grant: &Grant, postings: P, at: Timestamp) -> Option<GrantBalance>
where
    P: IntoIterator<Item = &'a Posting>,
{
    if !grant.is_active_at(at) {
        return None;
    }
    let mut excluding = grant.amount.value();
    let mut held = Decimal::ZERO;
    for p in postings {
        let amount: Decimal = p
            .deductions
            .iter()
            .filter(|d| d.grant_id == grant.id)
            .map(|d| d.amount)
            .sum();
        match p.status {
            UsageStatus::Committed if p.occurred_at.max(grant.effective_at) <= at => excluding -= amount,
            UsageStatus::Pending if amount > Decimal::ZERO && p.occurred_at <= at => held -= amount,
            _ => {}
        }
    }
    Some(GrantBalance {
        grant_id: grant.id.clone(),
        excluding_pending: excluding,
        including_pending: excluding + held,
    })
}

/// An entitlement's balance at an instant: the active grants' balances less the overage.
#[derive(Debug, Clone, PartialEq)]
pub struct Balance {
    pub at: Timestamp,
    pub excluding_pending: Decimal,
    pub including_pending: Decimal,
    /// Committed usage no grant covered, that occurred in [`since`, at].
    pub overage: Decimal,
    /// Pending usage no grant covered.
    pub pending_overage: Decimal,
    /// Active grants at `at`, in burn-down order.
    pub grants: Vec<GrantBalance>,
}

/// The balance at `at`. Overage counts from `since` (the entitlement's current period start).
pub fn balance_at(grants: &[Grant], postings: &[Posting], at: Timestamp, since: Timestamp) -> Balance {
    let mut active: Vec<&Grant> = grants.iter().filter(|g| g.is_active_at(at)).collect();
    active.sort_unstable_by(|a, b| burn_order(a, b));
    // Each grant sees only the postings that draw on it: linear in grants plus deductions.
    let mut by_grant: HashMap<&GrantId, Vec<&Posting>> = HashMap::new();
    for p in postings {
        for d in &p.deductions {
            let list = by_grant.entry(&d.grant_id).or_default();
            if !list.last().is_some_and(|last| std::ptr::eq(*last, p)) {
                list.push(p);
            }
        }
    }
    let none: Vec<&Posting> = Vec::new();
    let per_grant: Vec<GrantBalance> = active
        .iter()
        .filter_map(|g| grant_balance(g, by_grant.get(&g.id).unwrap_or(&none).iter().copied(), at))
        .collect();
    let in_window = |p: &&Posting| p.occurred_at <= at && p.occurred_at >= since;
    let overage: Decimal = postings
        .iter()
        .filter(|p| p.status == UsageStatus::Committed)
        .filter(in_window)
        .map(|p| p.overage)
        .sum();
    let pending_overage: Decimal = postings
        .iter()
        .filter(|p| p.status == UsageStatus::Pending)
        .filter(in_window)
        .map(|p| p.overage)
        .sum();
    let excluding: Decimal = per_grant.iter().map(|g| g.excluding_pending).sum::<Decimal>() - overage;
    let including: Decimal = per_grant.iter().map(|g| g.including_pending).sum::<Decimal>() - overage - pending_overage;
    Balance {
        at,
        excluding_pending: excluding,
        including_pending: including,
        overage,
        pending_overage,
        grants: per_grant,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::GrantDetails;
    use crate::{CreditAmount, EntitlementId, Priority, TenantId};
    use proptest::prelude::*;

    fn t(secs: i64) -> Timestamp {
        Timestamp::parse("2026-01-01T00:00:00Z")
            .unwrap()
            .plus_seconds(secs)
            .unwrap()
    }

    fn grant(n: usize, amount: i64, priority: Option<i64>, expires: Option<i64>, effective: i64) -> Grant {
        Grant {
            id: GrantId::parse(&format!("grt_{:026}", n)).unwrap(),
            tenant: TenantId::parse("t1").unwrap(),
            entitlement_id: EntitlementId::parse("ent_00000000000000000000000001").unwrap(),
            customer_id: "c".into(),
            amount: CreditAmount::new(Decimal::from(amount)).unwrap(),
            remaining: Decimal::from(amount),
            effective_at: t(effective),
            expires_at: expires.map(t),
            voided_at: None,
            created_at: t(0),
            priority: priority.map(|p| Priority::new(Decimal::from(p)).unwrap()),
            reset_max_rollover: None,
            reset_min_rollover: None,
            recurrence_period: None,
            idempotency_key: None,
            reserved: Decimal::ZERO,
            last_used_at: None,
            version: 0,
            credit_type_id: None,
            details: GrantDetails::default(),
        }
    }

    /// Records usage the way the service does: allocate against the current state, then apply.
    fn record(
        grants: &mut [Grant],
        postings: &mut Vec<Posting>,
        id: &str,
        at: Timestamp,
        amount: Decimal,
        pending: bool,
    ) {
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
}
