//! Balances at an instant: one grant's, and an entitlement's across its grants.
use super::{burn_order, Posting, UsageStatus};
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
///
/// The same per-grant sums as [`grant_balance`], in one pass over the deductions: each active
/// grant gets a position (one hash per grant), and each deduction adds to its grant's position
/// (one hash per deduction), with no list per grant.
pub fn balance_at(grants: &[Grant], postings: &[Posting], at: Timestamp, since: Timestamp) -> Balance {
    let mut active: Vec<&Grant> = grants.iter().filter(|g| g.is_active_at(at)).collect();
    active.sort_unstable_by(|a, b| burn_order(a, b));
    let position: HashMap<&GrantId, usize> = active.iter().enumerate().map(|(i, g)| (&g.id, i)).collect();
    let mut drawn = vec![Decimal::ZERO; active.len()];
    let mut held = vec![Decimal::ZERO; active.len()];
    for p in postings {
        let counts = match p.status {
            UsageStatus::Committed => true,
            UsageStatus::Pending if p.occurred_at <= at => false,
            _ => continue,
        };
        for d in &p.deductions {
            let Some(&i) = position.get(&d.grant_id) else { continue };
            let (Some(g), Some(drawn), Some(held)) = (active.get(i), drawn.get_mut(i), held.get_mut(i)) else {
                continue;
            };
            if counts && p.occurred_at.max(g.effective_at) <= at {
                *drawn += d.amount;
            } else if !counts && d.amount > Decimal::ZERO {
                // Allocation gives a pending event at most one (positive) deduction per grant.
                *held += d.amount;
            }
        }
    }
    let per_grant: Vec<GrantBalance> = active
        .iter()
        .zip(drawn.iter().zip(&held))
        .map(|(g, (drawn, held))| {
            let excluding = g.amount.value() - drawn;
            GrantBalance {
                grant_id: g.id.clone(),
                excluding_pending: excluding,
                including_pending: excluding - held,
            }
        })
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
