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
//!
//! One file per concern: [`allocation`] (the burn-down order, allocating usage and applying it to
//! grants), [`entries`] (usage postings and each grant's ledger entries) and [`balance`] (balances
//! at an instant).
mod allocation;
mod balance;
mod days;
mod entries;
mod history;

pub(crate) use allocation::burn_order;
pub use allocation::{allocate, apply, Allocation, Deduction, Effect};
pub use balance::{balance_at, balance_from, grant_balance, grant_balance_now, Balance, GrantBalance};
pub use days::{day_entries, day_items, days_of, Day, GRANTS_PER_DAY_ITEM};
pub use entries::{grant_entries, pending_entries, Entry, EntryKind, Posting, UsageStatus};
pub use history::{
    append, is_late, start_for, totals_within, Bound, Checkpoint, LogAppend, LogEntry, LogHead, Start, Totals,
    CHECKPOINT_EVERY,
};

#[cfg(test)]
mod tests;
