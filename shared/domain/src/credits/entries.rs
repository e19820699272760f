//! Metronome's `listEntries`: each customer's ledger per credit type, over a window.
use super::type_id;
use crate::balances::{present_with_days, LedgerStore};
use crate::entitlement_store::EntitlementStore;
use crate::kernel::StoreError;
use crate::ledger::{self, Day, Entry, EntryKind, Posting};
use crate::model::Grant;
use crate::usage::UsageStore;
use crate::{Clock, TenantId, Timestamp};
use futures::future::try_join_all;
use rust_decimal::Decimal;
use std::collections::{BTreeMap, BTreeSet};

/// One customer's ledger in one credit type (Metronome `listEntries`).
#[derive(Debug, Clone)]
pub struct CustomerLedger {
    pub credit_type_id: String,
    pub starting_at: Timestamp,
    pub starting_excluding: Decimal,
    pub starting_including: Decimal,
    pub ending_at: Timestamp,
    pub ending_excluding: Decimal,
    pub ending_including: Decimal,
    /// Posted entries in the window, with the running balance across the customer's grants.
    pub entries: Vec<Entry>,
    pub pending: Vec<Entry>,
}

#[derive(Debug, Clone, Default)]
pub struct EntryFilter {
    pub customer_ids: Vec<String>,
    pub credit_type_ids: Vec<String>,
    pub starting_on: Option<Timestamp>,
    pub ending_before: Option<Timestamp>,
}

fn kind_rank(k: EntryKind) -> u8 {
    match k {
        EntryKind::Grant => 0,
        EntryKind::Deduction | EntryKind::Rollover => 1,
        EntryKind::Expiration | EntryKind::Void => 2,
    }
}

/// Builds the ledgers of one customer: one per credit type (see [`type_ledger`]).
/// A grant with its entitlement's usage per day and pending usage.
type GrantUsage = (Grant, Vec<Day>, Vec<Posting>);

fn customer_ledgers(grants: &[GrantUsage], filter: &EntryFilter, now: Timestamp) -> Vec<CustomerLedger> {
    let mut by_type: BTreeMap<String, Vec<&GrantUsage>> = BTreeMap::new();
    for g in grants {
        let t = type_id(g.0.credit_type_id.as_deref()).to_owned();
        if filter.credit_type_ids.is_empty() || filter.credit_type_ids.contains(&t) {
            by_type.entry(t).or_default().push(g);
        }
    }
    by_type
        .into_iter()
        .map(|(credit_type_id, grants)| type_ledger(credit_type_id, &grants, filter, now))
        .collect()
}

/// One customer's ledger in one credit type: every grant's entries merged in time order, with the
/// running balance across them, and the balances at the window's start and end.
fn type_ledger(credit_type_id: String, grants: &[&GrantUsage], filter: &EntryFilter, now: Timestamp) -> CustomerLedger {
    let mut all: Vec<Entry> = grants
        .iter()
        .flat_map(|(g, days, _)| ledger::day_entries(g, days))
        .collect();
    all.sort_by(|a, b| {
        a.effective_at
            .cmp(&b.effective_at)
            .then_with(|| kind_rank(a.kind).cmp(&kind_rank(b.kind)))
            .then_with(|| a.grant_id.cmp(&b.grant_id))
    });
    let mut running = Decimal::ZERO;
    for e in &mut all {
        running += e.amount;
        e.running_balance = running;
    }
    let pending: Vec<Entry> = grants
        .iter()
        .flat_map(|(g, _, holds)| ledger::pending_entries(g, holds))
        .collect();
    let starting_at = filter
        .starting_on
        .or_else(|| all.first().map(|e| e.effective_at))
        .unwrap_or(now);
    let ending_at = filter.ending_before.unwrap_or(now);
    let before = |t: Timestamp, inclusive: bool| -> Decimal {
        all.iter()
            .filter(|e| {
                if inclusive {
                    e.effective_at <= t
                } else {
                    e.effective_at < t
                }
            })
            .map(|e| e.amount)
            .sum()
    };
    let pending_by =
        |t: Timestamp| -> Decimal { pending.iter().filter(|e| e.effective_at <= t).map(|e| e.amount).sum() };
    let starting_excluding = before(starting_at, false);
    let ending_excluding = if filter.ending_before.is_some() {
        before(ending_at, false)
    } else {
        before(ending_at, true)
    };
    let entries = all
        .into_iter()
        .filter(|e| e.effective_at >= starting_at)
        .filter(|e| {
            if filter.ending_before.is_some() {
                e.effective_at < ending_at
            } else {
                e.effective_at <= ending_at
            }
        })
        .collect();
    CustomerLedger {
        credit_type_id,
        starting_at,
        starting_excluding,
        starting_including: starting_excluding + pending_by(starting_at),
        ending_at,
        ending_excluding,
        ending_including: ending_excluding + pending_by(ending_at),
        entries,
        pending,
    }
}

/// One page of customers' ledgers, by customer id, after the customer `after`.
pub async fn list_entries<S>(
    store: &S,
    clock: &dyn Clock,
    tenant: &TenantId,
    filter: &EntryFilter,
    limit: usize,
    after: Option<&str>,
) -> Result<(Vec<(String, Vec<CustomerLedger>)>, Option<String>), StoreError>
where
    S: EntitlementStore + UsageStore + LedgerStore + ?Sized,
{
    let mut customers: BTreeSet<String> = if filter.customer_ids.is_empty() {
        store
            .list_entitlements(tenant, None)
            .await?
            .into_iter()
            .map(|e| e.customer_id)
            .collect()
    } else {
        filter.customer_ids.iter().cloned().collect()
    };
    customers.retain(|c| after.is_none_or(|a| c.as_str() > a));
    let more = customers.len() > limit;
    let page: Vec<String> = customers.into_iter().take(limit).collect();
    let next = if more { page.last().cloned() } else { None };
    let now = clock.now();
    let results = try_join_all(page.into_iter().map(|customer| async move {
        let entitlements = store.list_entitlements(tenant, Some(&customer)).await?;
        let ledgers = try_join_all(entitlements.iter().map(|e| present_with_days(store, tenant, &e.id))).await?;
        let mut grants: Vec<GrantUsage> = Vec::new();
        for (present, days) in ledgers.into_iter().flatten() {
            let holds = present.hold_postings();
            grants.extend(present.grants.into_iter().map(|g| (g, days.clone(), holds.clone())));
        }
        Ok::<_, StoreError>((customer, customer_ledgers(&grants, filter, now)))
    }))
    .await?;
    Ok((results, next))
}
