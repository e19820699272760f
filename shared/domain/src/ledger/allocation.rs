//! The burn-down order, how usage is allocated to grants, and what allocations do to them.
use crate::model::Grant;
use crate::{GrantId, Timestamp};
use rust_decimal::Decimal;
use std::cmp::Ordering;
use std::collections::HashMap;

/// Compares two grants in burn-down order.
pub(crate) fn burn_order(a: &Grant, b: &Grant) -> Ordering {
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
pub(crate) fn is_consumable(g: &Grant, at: Timestamp) -> bool {
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
    pub(crate) overage: Decimal,
}

/// Allocates `amount` of usage that occurred at `at` to the grants. Pure: nothing is changed.
pub fn allocate(grants: &[Grant], at: Timestamp, amount: Decimal) -> Allocation {
    // Usage amounts are validated positive (a `CreditAmount`), so `need` never goes below zero:
    // each grant gives at most what is still needed.
    debug_assert!(amount >= Decimal::ZERO, "negative usage {amount}");
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
    debug_assert!(need >= Decimal::ZERO);
    Allocation {
        deductions,
        overage: need,
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
        // A settled deduction was held on the grant when it was reserved, and `reserved` is the
        // sum of what pending usage holds. The clamps stay as the release fallback: they only act
        // on stored grants that broke that, and keep a negative hold from ever being written.
        debug_assert!(
            matches!(effect, Effect::Consume | Effect::Reserve) || d.amount <= g.reserved,
            "settling {} of grant {} which holds only {}",
            d.amount,
            g.id,
            g.reserved
        );
        match effect {
            Effect::Consume => g.remaining -= d.amount,
            Effect::Reserve => g.reserved += d.amount,
            Effect::Commit => {
                g.remaining -= d.amount;
                g.reserved = (g.reserved - d.amount).max(Decimal::ZERO);
            }
            Effect::Release => g.reserved = (g.reserved - d.amount).max(Decimal::ZERO),
        }
        debug_assert!(
            g.holds_invariants(),
            "{effect:?} left grant {} with reserved {} and remaining {}",
            g.id,
            g.reserved,
            g.remaining
        );
        touched.push(g.id.clone());
    }
    touched
}
