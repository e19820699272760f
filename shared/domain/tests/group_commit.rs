//! Group commit ([`grants_domain::group_commit`]): a batch applied by the lease holder leaves the
//! same records, grants and balances as the same events recorded one at a time in their queued
//! order; a lease whose holder died is taken over; a withdrawn request is never applied.
#![allow(clippy::unwrap_used)]
mod common;

use common::*;
use grants_domain::balances;
use grants_domain::combining::Entry;
use grants_domain::grants::NewGrant;
use grants_domain::group_commit::{self, UsageQueue};
use grants_domain::kernel::Created;
use grants_domain::ledger::UsageStatus;
use grants_domain::ports::UsageStore;
use grants_domain::usage::{self, NewUsage, UsageRecord};
use grants_domain::{Clock, CreditAmount, EntitlementId, Timestamp};
use proptest::prelude::*;
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::sync::Arc;

async fn funded(w: &World) -> EntitlementId {
    let e = w.entitlement("cus_1").await;
    for (i, (amount, expires, priority)) in [
        ("40", Some("2030-03-20T00:00:00Z"), Some(1)),
        ("25", None, None),
        ("500", None, Some(3)),
    ]
    .into_iter()
    .enumerate()
    {
        w.grant(NewGrant {
            expires_at: expires.map(ts),
            priority: priority.map(priority_of),
            ..new_grant(&e.id, amount, &format!("g{i}"))
        })
        .await;
    }
    e.id
}

/// A fresh lease on `e` for an hour: its owner.
async fn lease(w: &World, e: &EntitlementId) -> String {
    let owner = group_commit::lease_owner();
    let now = w.clock.now();
    let until = now.plus_seconds(3600).unwrap();
    assert!(w.store.take_lease(&w.tenant, e, &owner, until, now).await.unwrap());
    owner
}

fn priority_of(p: i64) -> grants_domain::Priority {
    priority(p)
}

/// (amount, seconds backdated, pending)
type Event = (u32, i64, bool);

fn request(w: &World, e: &EntitlementId, n: usize, (amount, back, pending): Event) -> UsageRecord {
    let now = w.clock.now();
    UsageRecord {
        rollover: false,
        tenant: w.tenant.clone(),
        entitlement_id: e.clone(),
        event_id: format!("evt-{n}"),
        amount: Decimal::from(amount),
        occurred_at: now.plus_seconds(-back).unwrap(),
        recorded_at: now,
        status: if pending {
            UsageStatus::Pending
        } else {
            UsageStatus::Committed
        },
        deductions: Vec::new(),
        overage: Decimal::ZERO,
        settled_at: None,
        fingerprint: BTreeMap::from([
            ("amount".to_owned(), amount.to_string()),
            ("pending".to_owned(), pending.to_string()),
        ]),
    }
}

async fn one_at_a_time(events: &[Event]) -> (World, EntitlementId) {
    let w = World::at("2030-03-14T10:00:00Z");
    let e = funded(&w).await;
    for (n, ev) in events.iter().enumerate() {
        w.clock.advance(1);
        let r = request(&w, &e, n, *ev);
        let created = usage::record_usage(
            &w.store,
            &w.clock,
            &w.tenant,
            NewUsage {
                entitlement_id: e.clone(),
                event_id: label(&r.event_id),
                amount: CreditAmount::parse(&r.amount.to_string()).unwrap(),
                occurred_at: Some(r.occurred_at),
                pending: ev.2,
            },
        )
        .await
        .unwrap();
        assert!(matches!(created, Created::New(_)));
    }
    (w, e)
}

async fn batched(events: &[Event]) -> (World, EntitlementId) {
    let w = World::at("2030-03-14T10:00:00Z");
    let e = funded(&w).await;
    let owner = lease(&w, &e).await;
    for (n, ev) in events.iter().enumerate() {
        w.clock.advance(1);
        w.store.enqueue_usage(&request(&w, &e, n, *ev)).await.unwrap();
    }
    group_commit::apply_queue(&w.store, &w.clock, &w.tenant, &e, &owner)
        .await
        .unwrap();
    (w, e)
}

/// The same events written by in-process combining ([`grants_domain::combining`]): the
/// entitlement's line is held while every request joins it, then let go. Its first waiter writes
/// them together (as many as one transaction holds; the rest go on alone, in line order). Each
/// event occurs when it does one at a time.
async fn combined(events: &[Event]) -> (World, EntitlementId) {
    let w = Arc::new(World::at("2030-03-14T10:00:00Z"));
    let e = funded(&w).await;
    let base = w.clock.now();
    w.clock.advance(events.len() as i64 + 1);
    let holder = request(&w, &e, usize::MAX, (1, 0, false));
    let Entry::First(line) = w.store.combiner().enter(&holder) else {
        panic!("nobody else is in line")
    };
    let tasks: Vec<_> = events
        .iter()
        .enumerate()
        .map(|(n, &(amount, back, _))| {
            let (w, e) = (Arc::clone(&w), e.clone());
            let occurred_at = base.plus_seconds(n as i64 + 1 - back).unwrap();
            tokio::spawn(async move {
                let req = NewUsage {
                    occurred_at: Some(occurred_at),
                    ..use_of(&e, &format!("evt-{n}"), &amount.to_string())
                };
                usage::record_usage(&w.store, &w.clock, &w.tenant, req).await
            })
        })
        .collect();
    // Every request joins the line (the runtime has one thread: each runs to its wait).
    tokio::task::yield_now().await;
    drop(line);
    for task in tasks {
        assert!(matches!(task.await.unwrap().unwrap(), Created::New(_)));
    }
    assert_eq!(w.store.combiner().lines_open(), 0);
    (Arc::try_unwrap(w).ok().unwrap(), e)
}

async fn compare(events: Vec<Event>) -> Result<(), TestCaseError> {
    let (a, ea) = one_at_a_time(&events).await;
    let (b, eb) = batched(&events).await;
    same_outcome(&a, &ea, &b, &eb).await?;
    prop_assert!(
        b.store.queued_usage(&b.tenant, &eb, 10).await.unwrap().is_empty(),
        "the queue is drained"
    );
    Ok(())
}

/// Both worlds hold the same records (deductions by amount, overage, status), remainders, holds,
/// balances, counters and log.
async fn same_outcome(a: &World, ea: &EntitlementId, b: &World, eb: &EntitlementId) -> Result<(), TestCaseError> {
    let (_, grants_a, mut records_a) = a.store.load_ledger(&a.tenant, ea).await.unwrap().unwrap();
    let (_, grants_b, mut records_b) = b.store.load_ledger(&b.tenant, eb).await.unwrap().unwrap();
    let view = |gs: Vec<grants_domain::model::Grant>| -> Vec<(Decimal, Decimal, Option<Timestamp>)> {
        let mut v: Vec<_> = gs
            .into_iter()
            .map(|g| (g.remaining, g.reserved, g.last_used_at))
            .collect();
        v.sort();
        v
    };
    prop_assert_eq!(view(grants_a.clone()), view(grants_b.clone()));
    // The grants have other ids in the two worlds: compare deductions by amount, in order.
    let drawn = |rs: &mut Vec<UsageRecord>| -> Vec<(String, Vec<Decimal>, Decimal, UsageStatus)> {
        rs.sort_by(|x, y| x.event_id.cmp(&y.event_id));
        rs.iter()
            .map(|r| {
                (
                    r.event_id.clone(),
                    r.deductions.iter().map(|d| d.amount).collect(),
                    r.overage,
                    r.status,
                )
            })
            .collect()
    };
    prop_assert_eq!(drawn(&mut records_a), drawn(&mut records_b));
    let (ent_a, bal_a) = balances::balance(&a.store, &a.clock, &a.tenant, ea, None)
        .await
        .unwrap()
        .unwrap();
    let (ent_b, bal_b) = balances::balance(&b.store, &b.clock, &b.tenant, eb, None)
        .await
        .unwrap()
        .unwrap();
    prop_assert_eq!(
        (bal_a.excluding_pending, bal_a.including_pending, bal_a.overage),
        (bal_b.excluding_pending, bal_b.including_pending, bal_b.overage)
    );
    prop_assert_eq!(
        (ent_a.usage_in_period, ent_a.overage),
        (ent_b.usage_in_period, ent_b.overage)
    );
    prop_assert_eq!(
        ent_a.log.map(|h| (h.seq, h.overage_total)),
        ent_b.log.map(|h| (h.seq, h.overage_total))
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    /// Equivalence: applying queued events in batches leaves exactly what recording them one at a
    /// time in the same order leaves (records, deductions, overage, remainders, holds, log).
    #[test]
    fn batches_equal_one_at_a_time(
        events in prop::collection::vec((1u32..60, prop_oneof![4 => Just(0i64), 1 => 0i64..100_000], prop::bool::weighted(0.2)), 0..150),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(compare(events))?;
    }

    /// Equivalence: committed usage written together by a line's leader leaves exactly what
    /// recording it one at a time in line order leaves; more than one transaction holds goes on
    /// alone, in order.
    #[test]
    fn combined_lines_equal_one_at_a_time(
        events in prop::collection::vec((1u32..60, prop_oneof![4 => Just(0i64), 1 => 0i64..100_000], Just(false)), 0..150),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (a, ea) = one_at_a_time(&events).await;
            let (b, eb) = combined(&events).await;
            same_outcome(&a, &ea, &b, &eb).await
        })?;
    }
}

/// A lease whose holder died before applying anything is taken over once it expires, and every
/// queued event is applied exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_lease_holder_is_taken_over() {
    let w = Arc::new(World::at("2030-03-14T10:00:00Z"));
    let e = funded(&w).await;
    let now = w.clock.now();
    assert!(w
        .store
        .take_lease(
            &w.tenant,
            &e,
            "dead",
            now.plus_seconds(group_commit::LEASE_SECONDS).unwrap(),
            now
        )
        .await
        .unwrap());
    let waiters: Vec<_> = (0..8)
        .map(|n| {
            let (w, e) = (Arc::clone(&w), e.clone());
            tokio::spawn(async move {
                let r = request(&w, &e, n, (5, 0, false));
                group_commit::queue_and_wait(&w.store, &w.clock, &r, Some(group_commit::FIRST_LOOK)).await
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(
        w.store.queued_usage(&w.tenant, &e, 100).await.unwrap().len(),
        8,
        "all wait"
    );
    w.clock.advance(group_commit::LEASE_SECONDS + 1);
    for task in waiters {
        let applied = task.await.unwrap().unwrap().record.expect("applied");
        assert_eq!(applied.amount, dec("5"));
    }
    let (ent, grants, records) = w.store.load_ledger(&w.tenant, &e).await.unwrap().unwrap();
    assert_eq!(records.len(), 8);
    assert_eq!(ent.usage_in_period, dec("40"));
    let left: Decimal = grants.iter().map(|g| g.remaining).sum();
    assert_eq!(left, dec("525"));
}

/// A request withdrawn before the lease holder reads the queue is never applied.
#[tokio::test]
async fn a_withdrawn_request_is_not_applied() {
    let w = World::at("2030-03-14T10:00:00Z");
    let e = funded(&w).await;
    let owner = lease(&w, &e).await;
    let (a, b) = (request(&w, &e, 1, (3, 0, false)), request(&w, &e, 2, (4, 0, false)));
    w.store.enqueue_usage(&a).await.unwrap();
    w.store.enqueue_usage(&b).await.unwrap();
    assert!(w.store.withdraw_usage(&a).await.unwrap());
    assert!(!w.store.withdraw_usage(&a).await.unwrap(), "once");
    group_commit::apply_queue(&w.store, &w.clock, &w.tenant, &e, &owner)
        .await
        .unwrap();
    assert!(w.store.get_usage(&w.tenant, &e, "evt-1").await.unwrap().is_none());
    assert_eq!(
        w.store.get_usage(&w.tenant, &e, "evt-2").await.unwrap().unwrap().amount,
        dec("4")
    );
    assert!(w.store.queued_usage(&w.tenant, &e, 10).await.unwrap().is_empty());
}

/// A request applied whose queue item was not deleted (the holder died in between) is found
/// recorded by the next batch: deleted, not applied twice.
#[tokio::test]
async fn an_applied_request_left_queued_is_not_applied_again() {
    let w = World::at("2030-03-14T10:00:00Z");
    let e = funded(&w).await;
    let owner = lease(&w, &e).await;
    let a = request(&w, &e, 1, (3, 0, false));
    w.store.enqueue_usage(&a).await.unwrap();
    group_commit::apply_queue(&w.store, &w.clock, &w.tenant, &e, &owner)
        .await
        .unwrap();
    // As if the holder had died after its transaction, before deleting the request.
    w.store.enqueue_usage(&a).await.unwrap();
    w.clock.advance(1);
    w.store.enqueue_usage(&request(&w, &e, 2, (4, 0, false))).await.unwrap();
    let now = w.clock.now();
    assert!(w
        .store
        .take_lease(&w.tenant, &e, &owner, now.plus_seconds(60).unwrap(), now)
        .await
        .unwrap());
    group_commit::apply_queue(&w.store, &w.clock, &w.tenant, &e, &owner)
        .await
        .unwrap();
    let (ent, _, records) = w.store.load_ledger(&w.tenant, &e).await.unwrap().unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(ent.usage_in_period, dec("7"), "evt-1 once, evt-2 once");
    assert!(w.store.queued_usage(&w.tenant, &e, 10).await.unwrap().is_empty());
}

/// The steps of an application cover every deduction once, in order, none over
/// `GRANTS_PER_STEP`, and the last one small enough for its record, log and days.
#[test]
fn the_steps_of_an_application_cover_every_deduction() {
    use grants_domain::group_commit::{Application, GRANTS_PER_STEP};
    use grants_domain::ledger::Deduction;
    let w = World::at("2030-03-14T10:00:00Z");
    let e = EntitlementId::generate();
    for n in (94..=400).chain([777, 1000, 3000]) {
        let mut record = request(&w, &e, 1, (1, 0, false));
        record.deductions = (0..n)
            .map(|_| Deduction {
                grant_id: grants_domain::GrantId::generate(),
                amount: Decimal::ONE,
            })
            .collect();
        let steps = Application { record, done: 0 }.steps();
        let mut next = 0;
        for s in &steps {
            assert_eq!(s.start, next, "{n}: {steps:?}");
            assert!(s.end > s.start && s.end - s.start <= GRANTS_PER_STEP, "{n}: {steps:?}");
            next = s.end;
        }
        assert_eq!(next, n, "{n}: {steps:?}");
        let last = steps.last().unwrap();
        assert!(last.end - last.start <= 93 - n.div_ceil(150) + 1, "{n}: {steps:?}");
    }
}

/// A client's retry queued beside its first request is applied once; both are answered with the
/// one record.
#[tokio::test]
async fn the_same_event_queued_twice_is_applied_once() {
    let w = World::at("2030-03-14T10:00:00Z");
    let e = funded(&w).await;
    let owner = lease(&w, &e).await;
    w.store.enqueue_usage(&request(&w, &e, 1, (3, 0, false))).await.unwrap();
    w.clock.advance(1);
    w.store.enqueue_usage(&request(&w, &e, 1, (3, 0, false))).await.unwrap();
    group_commit::apply_queue(&w.store, &w.clock, &w.tenant, &e, &owner)
        .await
        .unwrap();
    let (ent, _, records) = w.store.load_ledger(&w.tenant, &e).await.unwrap().unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(ent.usage_in_period, dec("3"));
    assert!(w.store.queued_usage(&w.tenant, &e, 10).await.unwrap().is_empty());
}

fn busy_marker(batch_of: usize) -> group_commit::Waited {
    group_commit::Waited {
        record: None,
        found_at_first_look: Some(true),
        batch_of,
    }
}

fn use_of(e: &EntitlementId, event: &str, amount: &str) -> NewUsage {
    NewUsage {
        entitlement_id: e.clone(),
        event_id: label(event),
        amount: CreditAmount::parse(amount).unwrap(),
        occurred_at: None,
        pending: false,
    }
}

/// An entitlement is busy after a large batch only; a write of its own makes it idle again.
#[test]
fn only_a_large_batch_marks_an_entitlement_busy() {
    let busy = group_commit::BusyEntitlements::default();
    let (t, e) = (grants_domain::TenantId::parse("t1").unwrap(), EntitlementId::generate());
    busy.saw(&t, &e, &busy_marker(group_commit::BUSY_BATCH - 1));
    assert!(!busy.is_busy(&t, &e));
    busy.saw(&t, &e, &busy_marker(group_commit::BUSY_BATCH));
    assert!(busy.is_busy(&t, &e));
    assert!(
        !busy.is_busy(&grants_domain::TenantId::parse("t2").unwrap(), &e),
        "per tenant"
    );
    busy.idle(&t, &e);
    assert!(!busy.is_busy(&t, &e));
    // The first look gets shorter while it finds the record.
    assert!(busy.first_look(&t, &e) < group_commit::FIRST_LOOK);
}

/// On a busy entitlement an event goes to the queue at once. With nobody holding the lease, its
/// writer notices at its third look, applies it, and answers as one at a time would.
#[tokio::test]
async fn an_event_on_a_busy_entitlement_is_queued_and_applied() {
    let w = World::at("2030-03-14T10:00:00Z");
    let e = funded(&w).await;
    w.store
        .busy()
        .saw(&w.tenant, &e, &busy_marker(group_commit::BUSY_BATCH));
    let record = match usage::record_usage(&w.store, &w.clock, &w.tenant, use_of(&e, "evt-1", "50"))
        .await
        .unwrap()
    {
        Created::New(r) => r,
        other => panic!("{other:?}"),
    };
    let drawn: Decimal = record.deductions.iter().map(|d| d.amount).sum();
    assert_eq!(drawn, dec("50"));
    assert!(w.store.queued_usage(&w.tenant, &e, 10).await.unwrap().is_empty());
    let stored = w.store.get_usage(&w.tenant, &e, "evt-1").await.unwrap().unwrap();
    assert_eq!(stored.deductions, record.deductions);
    // A replay on the busy entitlement answers with the same record.
    match usage::record_usage(&w.store, &w.clock, &w.tenant, use_of(&e, "evt-1", "50"))
        .await
        .unwrap()
    {
        Created::Replayed(r) => assert_eq!(r.deductions, record.deductions),
        other => panic!("{other:?}"),
    }
    let (ent, _, records) = w.store.load_ledger(&w.tenant, &e).await.unwrap().unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(ent.usage_in_period, dec("50"));
}

/// A busy hint on an entitlement cancelled since: the lease holder takes the request off the
/// queue unapplied, and its writer answers the error one at a time would.
#[tokio::test]
async fn a_busy_hint_on_a_cancelled_entitlement_answers_its_error() {
    let w = World::at("2030-03-14T10:00:00Z");
    let e = funded(&w).await;
    grants_domain::entitlements::cancel_entitlement(&w.store, &w.clock, &w.tenant, &e)
        .await
        .unwrap();
    w.store
        .busy()
        .saw(&w.tenant, &e, &busy_marker(group_commit::BUSY_BATCH));
    let err = usage::record_usage(&w.store, &w.clock, &w.tenant, use_of(&e, "evt-1", "5"))
        .await
        .unwrap_err();
    assert_eq!(format!("{err:?}"), r#"EntitlementNotActive("canceled")"#);
    assert!(w.store.get_usage(&w.tenant, &e, "evt-1").await.unwrap().is_none());
    assert!(w.store.queued_usage(&w.tenant, &e, 10).await.unwrap().is_empty());
}

/// Requests held in one line, let go together: the answers of `record_usage` for `events`
/// (`(event id, amount)`), in order.
async fn in_one_line(w: &Arc<World>, e: &EntitlementId, events: &[(&str, &str)]) -> Vec<Created<UsageRecord>> {
    let holder = request(w, e, usize::MAX, (1, 0, false));
    let Entry::First(line) = w.store.combiner().enter(&holder) else {
        panic!("nobody else is in line")
    };
    let tasks: Vec<_> = events
        .iter()
        .map(|&(event, amount)| {
            let (w, req) = (Arc::clone(w), use_of(e, event, amount));
            tokio::spawn(async move { usage::record_usage(&w.store, &w.clock, &w.tenant, req).await })
        })
        .collect();
    tokio::task::yield_now().await;
    drop(line);
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap().unwrap());
    }
    answers
}

/// In one line: a replay of a recorded event and a client's retry beside its first send are each
/// answered with the first record; the others are written together, once.
#[tokio::test(flavor = "current_thread")]
async fn a_replay_and_a_repeat_in_a_line_are_answered_with_the_first_record() {
    let w = Arc::new(World::at("2030-03-14T10:00:00Z"));
    let e = funded(&w).await;
    usage::record_usage(&w.store, &w.clock, &w.tenant, use_of(&e, "evt-1", "10"))
        .await
        .unwrap();
    w.clock.advance(1);
    let answers = in_one_line(
        &w,
        &e,
        &[("evt-1", "10"), ("evt-2", "20"), ("evt-2", "20"), ("evt-3", "30")],
    )
    .await;
    let kinds: Vec<(&str, bool)> = answers
        .iter()
        .map(|a| match a {
            Created::New(r) => (r.event_id.as_str(), true),
            Created::Replayed(r) => (r.event_id.as_str(), false),
        })
        .collect();
    assert_eq!(
        kinds,
        [("evt-1", false), ("evt-2", true), ("evt-2", false), ("evt-3", true)]
    );
    let (ent, _, records) = w.store.load_ledger(&w.tenant, &e).await.unwrap().unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(ent.usage_in_period, dec("60"));
    assert_eq!(w.store.combiner().lines_open(), 0);
}

/// A line's leader waits while another writer holds the entitlement's lease, then writes the
/// whole line once it is given up.
#[tokio::test(flavor = "current_thread")]
async fn a_line_waits_for_a_lease_held_elsewhere() {
    let w = Arc::new(World::at("2030-03-14T10:00:00Z"));
    let e = funded(&w).await;
    let owner = lease(&w, &e).await;
    let releaser = {
        let (w, e) = (Arc::clone(&w), e.clone());
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(60)).await;
            w.store.release_lease(&w.tenant, &e, &owner).await.unwrap();
        })
    };
    let answers = in_one_line(&w, &e, &[("evt-1", "10"), ("evt-2", "20"), ("evt-3", "30")]).await;
    releaser.await.unwrap();
    assert!(answers.iter().all(|a| matches!(a, Created::New(_))));
    let (ent, grants, records) = w.store.load_ledger(&w.tenant, &e).await.unwrap().unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(ent.usage_in_period, dec("60"));
    let left: Decimal = grants.iter().map(|g| g.remaining).sum();
    assert_eq!(left, dec("505"));
}

/// A leader that had to wait for another process's lease also applies what was queued on the
/// entitlement meanwhile: another process's request is written in the line's transaction and taken
/// off the queue, and the line's own request with the same event id (recorded later) is answered
/// as a replay of it.
#[tokio::test(flavor = "current_thread")]
async fn a_combined_batch_applies_what_another_process_queued() {
    let w = Arc::new(World::at("2030-03-14T10:00:00Z"));
    let e = funded(&w).await;
    let owner = lease(&w, &e).await;
    w.store
        .enqueue_usage(&request(&w, &e, 1, (10, 0, false)))
        .await
        .unwrap();
    let releaser = {
        let (w, e) = (Arc::clone(&w), e.clone());
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(60)).await;
            w.store.release_lease(&w.tenant, &e, &owner).await.unwrap();
        })
    };
    w.clock.advance(1);
    let answers = in_one_line(&w, &e, &[("evt-1", "10"), ("evt-2", "20")]).await;
    releaser.await.unwrap();
    assert!(matches!(&answers[0], Created::Replayed(r) if r.event_id == "evt-1"));
    assert!(matches!(&answers[1], Created::New(r) if r.event_id == "evt-2"));
    assert!(w.store.queued_usage(&w.tenant, &e, 10).await.unwrap().is_empty());
    let (ent, _, records) = w.store.load_ledger(&w.tenant, &e).await.unwrap().unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(ent.usage_in_period, dec("30"));
}
