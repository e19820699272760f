//! Usage as the ledger sees it (postings), and the ledger entries of one grant.
use super::Deduction;
use crate::model::Grant;
use crate::{GrantId, Timestamp};
use rust_decimal::Decimal;
use std::cmp::Ordering;

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

/// What one posting drew from one grant (the sum of its deductions from that grant).
pub(super) fn drawn_from(grant: &Grant, posting: &Posting) -> Decimal {
    posting
        .deductions
        .iter()
        .filter(|d| d.grant_id == grant.id)
        .map(|d| d.amount)
        .sum()
}

/// The posted entries of one grant, in order, with the grant's running balance: its credits,
/// then every committed deduction, then (if it ended) the expiry or void of what was left.
pub fn grant_entries<'a>(grant: &Grant, postings: impl IntoIterator<Item = &'a Posting>) -> Vec<Entry> {
    let mut mine: Vec<(&Posting, Decimal)> = postings
        .into_iter()
        .filter(|p| p.status == UsageStatus::Committed)
        .filter_map(|p| {
            let amount = drawn_from(grant, p);
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
    entries.extend(end_entry(grant, balance));
    entries
}

/// A grant's last entry when it ended (expired, or voided first): what was left, `balance`, leaves.
/// Deductions are never later than the end (usage must occur before expiry, and a voided grant
/// takes no new usage), so it comes last.
pub(super) fn end_entry(grant: &Grant, balance: Decimal) -> Option<Entry> {
    let (kind, at) = match (grant.voided_at, grant.expires_at) {
        (Some(v), Some(e)) if e <= v => (EntryKind::Expiration, e),
        (Some(v), _) => (EntryKind::Void, v),
        (None, Some(e)) => (EntryKind::Expiration, e),
        (None, None) => return None,
    };
    Some(Entry {
        grant_id: grant.id.clone(),
        kind,
        amount: -balance,
        effective_at: at.max(grant.effective_at),
        event_id: None,
        running_balance: Decimal::ZERO,
    })
}

/// Pending deductions of one grant (credits held by pending usage), in ledger order.
pub fn pending_entries<'a>(grant: &Grant, postings: impl IntoIterator<Item = &'a Posting>) -> Vec<Entry> {
    let mut mine: Vec<(&Posting, Decimal)> = postings
        .into_iter()
        .filter(|p| p.status == UsageStatus::Pending)
        .filter_map(|p| {
            let amount = drawn_from(grant, p);
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
