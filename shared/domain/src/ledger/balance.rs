//! Balances at an instant: one grant's, and an entitlement's across its grants.
use super::entries::drawn_from;
use super::{burn_order, Posting, Totals, UsageStatus};
use crate::model::Grant;
use crate::{GrantId, Timestamp};
use rust_decimal::Decimal;
use std::collections::HashMap;

/// One grant's balance at an instant.
#[derive(Debug, Clone, PartialEq)]
pub struct GrantBalance {
    pub grant_id: GrantId,
    pub excluding_pending: Decimal,
    pub including_pending: Decimal,
}

/// What one grant's balance at an instant takes away from its amount.
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    /// Committed usage that occurred by the instant (and not before the grant took effect).
    drawn: Decimal,
    /// Pending holds on it that occurred by the instant.
    held: Decimal,
}

impl Sums {
    /// Counts what posting `p` drew from `grant` (`amount`) in the balance at `at`: the one rule
    /// [`grant_balance`] and [`balance_at`] share.
    fn count(&mut self, p: &Posting, grant: &Grant, amount: Decimal, at: Timestamp) {
        match p.status {
            UsageStatus::Committed if p.occurred_at.max(grant.effective_at) <= at => self.drawn += amount,
            UsageStatus::Pending if amount > Decimal::ZERO && p.occurred_at <= at => self.held += amount,
            _ => {}
        }
    }

    fn balance(self, grant: &Grant) -> GrantBalance {
        let excluding = grant.amount.value() - self.drawn;
        GrantBalance {
            grant_id: grant.id.clone(),
            excluding_pending: excluding,
            including_pending: excluding - self.held,
        }
    }
}

/// One grant's balance at `at`, or None when the grant is not active then. The same sums as
/// [`super::grant_entries`] and [`super::pending_entries`] up to `at`, without building the entries: an
/// active grant has not ended by `at`, so only its credits and the deductions up to `at` count.
pub fn grant_balance<'a, P>(grant: &Grant, postings: P, at: Timestamp) -> Option<GrantBalance>
where
    P: IntoIterator<Item = &'a Posting>,
{
    if !grant.is_active_at(at) {
        return None;
    }
    let mut sums = Sums::default();
    for p in postings {
        sums.count(p, grant, drawn_from(grant, p), at);
    }
    Some(sums.balance(grant))
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
///
/// The same per-grant sums as [`grant_balance`], in one pass over the deductions: each active
/// grant gets a position (one hash per grant), and each deduction is counted at its grant's
/// position (one hash per deduction), with no list per grant.
pub fn balance_at(grants: &[Grant], postings: &[Posting], at: Timestamp, since: Timestamp) -> Balance {
    let mut active: Vec<&Grant> = grants.iter().filter(|g| g.is_active_at(at)).collect();
    active.sort_unstable_by(|a, b| burn_order(a, b));
    let position: HashMap<&GrantId, usize> = active.iter().enumerate().map(|(i, g)| (&g.id, i)).collect();
    let mut sums = vec![Sums::default(); active.len()];
    for p in postings {
        // Allocation gives a posting at most one deduction per grant, so each is that posting's
        // whole draw on its grant (what `grant_balance` sums first).
        for d in &p.deductions {
            let Some(&i) = position.get(&d.grant_id) else { continue };
            if let (Some(g), Some(s)) = (active.get(i), sums.get_mut(i)) {
                s.count(p, g, d.amount, at);
            }
        }
    }
    let per_grant: Vec<GrantBalance> = active.iter().zip(sums).map(|(g, s)| s.balance(g)).collect();
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

/// The balance at `at` from the log's totals instead of every posting: `through` sums the committed
/// usage that occurred by `at` ([`super::Bound::Through`]), `before_since` the committed usage that
/// occurred before `since` ([`super::Bound::Before`]; None when `at` is before `since`, where no
/// overage counts), and `holds` are the pending postings. The same numbers as [`balance_at`] over
/// every posting (the equivalence is property-tested).
pub fn balance_from(
    grants: &[Grant],
    through: &Totals,
    before_since: Option<&Totals>,
    holds: &[Posting],
    at: Timestamp,
    since: Timestamp,
) -> Balance {
    debug_assert!(holds.iter().all(|p| p.status == UsageStatus::Pending));
    let mut active: Vec<&Grant> = grants.iter().filter(|g| g.is_active_at(at)).collect();
    active.sort_unstable_by(|a, b| burn_order(a, b));
    let per_grant: Vec<GrantBalance> = active
        .iter()
        .map(|g| {
            let excluding = g.amount.value() - through.drawn_from(&g.id);
            GrantBalance {
                grant_id: g.id.clone(),
                excluding_pending: excluding,
                including_pending: excluding - held(g, holds, at),
            }
        })
        .collect();
    let overage = match before_since {
        Some(before) if since <= at => through.overage - before.overage,
        _ => Decimal::ZERO,
    };
    let pending_overage: Decimal = holds
        .iter()
        .filter(|p| p.occurred_at <= at && p.occurred_at >= since)
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

/// One grant's balance at `at` when every committed deduction has occurred by `at` (`at` now or
/// later): its stored remainder, less its pending `holds` that occurred by `at`. None when the grant
/// is not active then. The same numbers as [`grant_balance`] over every posting.
pub fn grant_balance_now(grant: &Grant, holds: &[Posting], at: Timestamp) -> Option<GrantBalance> {
    if !grant.is_active_at(at) {
        return None;
    }
    Some(GrantBalance {
        grant_id: grant.id.clone(),
        excluding_pending: grant.remaining,
        including_pending: grant.remaining - held(grant, holds, at),
    })
}

/// What the pending `holds` that occurred by `at` hold on `grant` (the rule of [`Sums::count`]).
fn held(grant: &Grant, holds: &[Posting], at: Timestamp) -> Decimal {
    holds
        .iter()
        .filter(|p| p.status == UsageStatus::Pending && p.occurred_at <= at)
        .map(|p| drawn_from(grant, p))
        .filter(|d| *d > Decimal::ZERO)
        .sum()
}
