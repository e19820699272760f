//! Committed usage per grant per UTC day: what Metronome's `deductions` and `listEntries` show, so
//! that their size grows with the days an entitlement was used, not with its events.
//!
//! The rule (published in the README): every committed deduction from a grant is summed into one
//! entry per grant per UTC day of its `occurred_at`, effective at the start of that day (or at the
//! grant's own start, when later); a period-reset rollover is a second entry of that day, after the
//! usage. Running balances are exact after each such entry.
use super::{Entry, EntryKind, Posting, UsageStatus};
use crate::model::Grant;
use crate::{GrantId, Timestamp};
use rust_decimal::Decimal;
use std::collections::BTreeMap;

/// At most this many grants' sums go in one stored item of a day (a store's update expression
/// names each); a day with more takes several items.
pub const GRANTS_PER_DAY_ITEM: usize = 150;

/// How many items hold `grants` grants' sums of one day.
pub fn day_items(grants: usize) -> usize {
    grants.div_ceil(GRANTS_PER_DAY_ITEM).max(1)
}

/// One UTC day of an entitlement's committed effects: per grant, what usage drew and what a
/// rollover took (negative: added).
#[derive(Debug, Clone, PartialEq)]
pub struct Day {
    /// 00:00:00Z of the day.
    pub day: Timestamp,
    pub usage: BTreeMap<GrantId, Decimal>,
    pub rollover: BTreeMap<GrantId, Decimal>,
}

impl Day {
    /// A day with nothing on it yet: the one `at` falls on.
    pub fn of(at: Timestamp) -> Self {
        Day {
            day: at.day_start(),
            usage: BTreeMap::new(),
            rollover: BTreeMap::new(),
        }
    }

    /// Adds what another item of the same day holds.
    pub fn merge(&mut self, other: Day) {
        for (g, a) in other.usage {
            *self.usage.entry(g).or_default() += a;
        }
        for (g, a) in other.rollover {
            *self.rollover.entry(g).or_default() += a;
        }
    }

    /// Adds one committed effect that occurred on this day.
    pub fn add(&mut self, drawn: &[super::Deduction], rollover: bool) {
        let sums = if rollover { &mut self.rollover } else { &mut self.usage };
        for d in drawn {
            *sums.entry(d.grant_id.clone()).or_default() += d.amount;
        }
    }
}

/// The days of committed postings, oldest first: the reference the stores' day items are held to,
/// and how an entitlement without day items (written before them) is read.
pub fn days_of<'a>(postings: impl IntoIterator<Item = &'a Posting>) -> Vec<Day> {
    let mut days: BTreeMap<Timestamp, Day> = BTreeMap::new();
    for p in postings.into_iter().filter(|p| p.status == UsageStatus::Committed) {
        days.entry(p.occurred_at.day_start())
            .or_insert_with(|| Day::of(p.occurred_at))
            .add(&p.deductions, p.rollover);
    }
    days.into_values().collect()
}

/// The posted entries of one grant, by day: its credits, a deduction per day it was used (and a
/// rollover entry on a reset day), then (if it ended) the expiry or void of what was left; with
/// the grant's running balance. `days` must be in order.
pub fn day_entries(grant: &Grant, days: &[Day]) -> Vec<Entry> {
    let mut balance = grant.amount.value();
    let mut entries = vec![Entry {
        grant_id: grant.id.clone(),
        kind: EntryKind::Grant,
        amount: balance,
        effective_at: grant.effective_at,
        event_id: None,
        running_balance: balance,
    }];
    for d in days {
        let at = d.day.max(grant.effective_at);
        for (kind, sums) in [(EntryKind::Deduction, &d.usage), (EntryKind::Rollover, &d.rollover)] {
            let Some(amount) = sums.get(&grant.id).copied().filter(|a| !a.is_zero()) else {
                continue;
            };
            balance -= amount;
            entries.push(Entry {
                grant_id: grant.id.clone(),
                kind,
                amount: -amount,
                effective_at: at,
                event_id: None,
                running_balance: balance,
            });
        }
    }
    entries.extend(super::entries::end_entry(grant, balance));
    entries
}
