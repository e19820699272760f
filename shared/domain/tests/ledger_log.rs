//! The bounded reads ([`grants_domain::balances`]) against the reference: the balance at any instant
//! read from the log's checkpoints equals the balance summed from every usage record, over random
//! histories of committed, pending, settled and backdated usage long enough to cross checkpoints.
#![allow(clippy::unwrap_used)]
mod common;

use common::*;
use grants_domain::balances::{self, LedgerStore};
use grants_domain::grants::NewGrant;
use grants_domain::ledger::{self, Posting, CHECKPOINT_EVERY};
use grants_domain::ports::UsageStore;
use grants_domain::usage::{self, NewUsage, Settle, UsageRecord};
use grants_domain::{CreditAmount, Timestamp};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// Seconds the clock moves, seconds the usage is backdated, amount, pending.
    Use(i64, i64, u32, bool),
    /// Settles the n-th pending event (modulo how many there are): commit or release.
    Settle(usize, bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0i64..400, prop_oneof![5 => Just(0i64), 1 => 0i64..20_000], 1u32..40, prop::bool::weighted(0.15))
            .prop_map(|(g, b, a, p)| Op::Use(g, b, a, p)),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(i, c)| Op::Settle(i, c)),
    ]
}

async fn history(ops: &[Op]) -> (World, grants_domain::EntitlementId, Vec<Timestamp>) {
    let w = World::at("2030-03-01T00:00:00Z");
    let e = w
        .entitlement_for("cus_1", "2030-03-02T00:00:00Z", "2030-04-02T00:00:00Z")
        .await;
    for (i, (amount, effective, expires)) in [
        ("300", None, None),
        ("200", None, Some("2030-03-03T00:00:00Z")),
        ("150", Some("2030-03-01T12:00:00Z"), None),
        ("5000", Some("2030-03-02T06:00:00Z"), Some("2030-03-20T00:00:00Z")),
    ]
    .into_iter()
    .enumerate()
    {
        w.grant(NewGrant {
            effective_at: effective.map(ts),
            expires_at: expires.map(ts),
            ..new_grant(&e.id, amount, &format!("g{i}"))
        })
        .await;
    }
    let mut pending: Vec<String> = Vec::new();
    let mut instants = vec![w.clock.now_ts()];
    for (n, op) in ops.iter().enumerate() {
        match op {
            Op::Use(gap, back, amount, is_pending) => {
                w.clock.advance(*gap);
                let now = w.clock.now_ts();
                let occurred = now.plus_seconds(-back).unwrap().max(ts("2030-03-01T00:00:00Z"));
                let id = format!("evt-{n}");
                usage::record_usage(
                    &w.store,
                    &w.clock,
                    &w.tenant,
                    NewUsage {
                        entitlement_id: e.id.clone(),
                        event_id: label(&id),
                        amount: CreditAmount::parse(&amount.to_string()).unwrap(),
                        occurred_at: Some(occurred),
                        pending: *is_pending,
                    },
                )
                .await
                .unwrap();
                if *is_pending {
                    pending.push(id);
                }
                instants.push(occurred);
                instants.push(now);
            }
            Op::Settle(i, commit) => {
                if pending.is_empty() {
                    continue;
                }
                let id = pending.remove(i % pending.len());
                let how = if *commit { Settle::Commit } else { Settle::Release };
                usage::settle_usage(&w.store, &w.clock, &w.tenant, &e.id, &label(&id), how)
                    .await
                    .unwrap();
            }
        }
    }
    (w, e.id, instants)
}

trait Now {
    fn now_ts(&self) -> Timestamp;
}
impl Now for TestClock {
    fn now_ts(&self) -> Timestamp {
        grants_domain::Clock::now(self)
    }
}

async fn check(ops: Vec<Op>, probes: Vec<(usize, i64)>) -> Result<(), TestCaseError> {
    let (w, id, instants) = history(&ops).await;
    let (ent, grants, usage) = w.store.load_ledger(&w.tenant, &id).await.unwrap().unwrap();
    let postings: Vec<Posting> = usage.iter().map(UsageRecord::posting).collect();
    let since = ent.current_period_start;
    let mut at: Vec<Option<Timestamp>> = vec![None, Some(since), Some(ts("2030-03-01T00:00:00Z"))];
    at.extend(
        probes
            .iter()
            .map(|(i, shift)| instants[i % instants.len()].plus_seconds(*shift)),
    );
    for t in at {
        let (_, got) = balances::balance(&w.store, &w.clock, &w.tenant, &id, t)
            .await
            .unwrap()
            .unwrap();
        let want = ledger::balance_at(&grants, &postings, t.unwrap_or_else(|| w.clock.now_ts()), since);
        prop_assert_eq!(got, want, "at {:?}", t);
    }
    // The day items hold what the records sum to, day by day.
    let (_, mut days) = w.store.load_present_with_days(&w.tenant, &id).await.unwrap().unwrap();
    let mut want = ledger::days_of(&postings);
    for d in days.iter_mut().chain(want.iter_mut()) {
        d.usage.retain(|_, v| !v.is_zero());
        d.rollover.retain(|_, v| !v.is_zero());
    }
    days.retain(|d| !d.usage.is_empty() || !d.rollover.is_empty());
    want.retain(|d| !d.usage.is_empty() || !d.rollover.is_empty());
    prop_assert_eq!(days, want);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn balances_from_checkpoints_equal_balances_from_every_record(
        ops in prop::collection::vec(op(), 0..(3 * CHECKPOINT_EVERY as usize)),
        probes in prop::collection::vec((any::<usize>(), -3i64..3), 0..24),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(check(ops, probes))?;
    }
}

/// A long history with no backdating: a read at any instant touches at most one window of the log.
#[tokio::test]
async fn a_read_in_the_middle_of_history_reads_one_window() {
    let ops: Vec<Op> = (0..1000).map(|_| Op::Use(10, 0, 1, false)).collect();
    let (w, id, instants) = history(&ops).await;
    let ent = w.store.load_present(&w.tenant, &id).await.unwrap().unwrap().entitlement;
    let head = ent.log.unwrap();
    assert_eq!(head.seq, 1000);
    assert_eq!(head.checkpoint_seq, 1000 / CHECKPOINT_EVERY * CHECKPOINT_EVERY);
    for t in [instants[1], instants[500], instants[1999]] {
        let (start, later) = w
            .store
            .read_log(&w.tenant, &id, &head, ledger::Bound::Through(t), None)
            .await
            .unwrap();
        let window = match &start {
            ledger::Start::After { window, .. } => window.len(),
            ledger::Start::Last(_) => 0,
        };
        assert!(window as u64 <= CHECKPOINT_EVERY && later.len() as u64 <= CHECKPOINT_EVERY);
    }
}
