//! Usage on the in-memory store: burn-down order across grants, which grants usage may draw on,
//! overage, idempotent events (replay and conflict), pending holds committed or released, the
//! period counters, and balances.
#![allow(clippy::unwrap_used)]
mod common;

use common::{dec, err, label, new_grant, priority, ts, World};
use grants_domain::grants::{Created, NewGrant};
use grants_domain::ledger::UsageStatus;
use grants_domain::model::Grant;
use grants_domain::ports::{EntitlementStore, GrantStore, UsageStore};
use grants_domain::usage::{self, NewUsage, Settle, UsageRecord};
use grants_domain::{entitlements, CreditAmount, EntitlementId, GrantId, Timestamp};
use rust_decimal::Decimal;

fn use_of(e: &EntitlementId, event: &str, amount: &str) -> NewUsage {
    NewUsage {
        entitlement_id: e.clone(),
        event_id: label(event),
        amount: CreditAmount::parse(amount).unwrap(),
        occurred_at: None,
        pending: false,
    }
}

async fn record(w: &World, req: NewUsage) -> UsageRecord {
    match usage::record_usage(&w.store, &w.clock, &w.tenant, req).await.unwrap() {
        Created::New(r) => r,
        Created::Replayed(_) => panic!("expected a new event"),
    }
}

/// (grant id, amount) of each deduction, in order.
fn drawn(r: &UsageRecord) -> Vec<(GrantId, Decimal)> {
    r.deductions.iter().map(|d| (d.grant_id.clone(), d.amount)).collect()
}

async fn remaining(w: &World, g: &Grant) -> (Decimal, Decimal) {
    let g = w
        .store
        .get_grant(&w.tenant, &g.entitlement_id, &g.id)
        .await
        .unwrap()
        .unwrap();
    (g.remaining, g.reserved)
}

#[tokio::test]
async fn usage_burns_down_by_priority_then_expiry_then_effective_time() {
    let w = World::at("2030-03-14T10:00:00Z");
    let e = w.entitlement("cus_1").await;
    let with = |k: &str, f: &dyn Fn(&mut NewGrant)| {
        let mut g = new_grant(&e.id, "10", k);
        f(&mut g);
        g
    };
    let a = w.grant(with("a", &|g| g.priority = Some(priority(1)))).await;
    let b = w
        .grant(with("b", &|g| {
            g.priority = Some(priority(0));
            g.expires_at = Some(ts("2030-06-01T00:00:00Z"));
        }))
        .await;
    let c = w
        .grant(with("c", &|g| g.expires_at = Some(ts("2030-04-01T00:00:00Z"))))
        .await;
    let d = w.grant(with("d", &|_| {})).await;
    let later = w
        .grant(with("e", &|g| {
            g.expires_at = Some(ts("2030-04-01T00:00:00Z"));
            g.effective_at = Some(ts("2030-03-02T00:00:00Z"));
        }))
        .await;

    let first = record(&w, use_of(&e.id, "evt-1", "45")).await;
    let ten = Decimal::from(10);
    assert_eq!(
        drawn(&first),
        vec![
            (c.id.clone(), ten),
            (later.id.clone(), ten),
            (b.id.clone(), ten),
            (d.id.clone(), ten),
            (a.id.clone(), Decimal::from(5)),
        ],
        "priority (none is 0), then soonest expiry (never last), then effective time"
    );
    assert_eq!((first.overage, first.status), (Decimal::ZERO, UsageStatus::Committed));
    assert_eq!(remaining(&w, &a).await, (Decimal::from(5), Decimal::ZERO));
    assert_eq!(remaining(&w, &c).await, (Decimal::ZERO, Decimal::ZERO));

    // What no grant covers is overage, on the event and the entitlement.
    let second = record(&w, use_of(&e.id, "evt-2", "7")).await;
    assert_eq!(drawn(&second), vec![(a.id.clone(), Decimal::from(5))]);
    assert_eq!(second.overage, Decimal::from(2));
    let ent = w.store.get_entitlement(&w.tenant, &e.id).await.unwrap().unwrap();
    assert_eq!(
        (ent.usage_in_period, ent.overage),
        (Decimal::from(52), Decimal::from(2))
    );
    let (_, balance) = grants_domain::balances::balance(&w.store, &w.clock, &w.tenant, &e.id, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (balance.excluding_pending, balance.overage),
        (Decimal::from(-2), Decimal::from(2))
    );
    let view = entitlements::get_entitlement(&w.store, &w.clock, &w.tenant, &e.id)
        .await
        .unwrap();
    assert!(!view.has_access, "a hard limit with no balance left");
    // Each grant drawn on was written once per event, at a new version.
    let stored = w.store.get_grant(&w.tenant, &e.id, &a.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.version, stored.last_used_at),
        (2, Some(ts("2030-03-14T10:00:00Z")))
    );
}

#[tokio::test]
async fn usage_draws_only_on_grants_effective_unexpired_and_not_voided_when_it_occurred() {
    let w = World::at("2030-03-14T10:00:00Z");
    let e = w.entitlement("cus_1").await;
    let future = w
        .grant(NewGrant {
            effective_at: Some(ts("2030-03-20T00:00:00Z")),
            ..new_grant(&e.id, "10", "future")
        })
        .await;
    let expired = w
        .grant(NewGrant {
            expires_at: Some(ts("2030-03-10T00:00:00Z")),
            ..new_grant(&e.id, "10", "expired")
        })
        .await;
    let voided = w.grant(new_grant(&e.id, "10", "voided")).await;
    w.store
        .void_grant(&w.tenant, &e.id, &voided.id, ts("2030-03-12T00:00:00Z"))
        .await
        .unwrap();
    let now = record(&w, use_of(&e.id, "now", "3")).await;
    assert!(now.deductions.is_empty());
    assert_eq!(now.overage, Decimal::from(3));
    // Usage that occurred earlier draws on what was consumable then.
    let earlier = record(
        &w,
        NewUsage {
            occurred_at: Some(ts("2030-03-05T00:00:00Z")),
            ..use_of(&e.id, "earlier", "4")
        },
    )
    .await;
    assert_eq!(drawn(&earlier), vec![(expired.id.clone(), Decimal::from(4))]);
    assert_eq!(remaining(&w, &future).await.0, Decimal::from(10));
    // Usage before the period started draws on grants but not on the period's counters.
    let before = w
        .grant(NewGrant {
            effective_at: Some(ts("2030-02-01T00:00:00Z")),
            ..new_grant(&e.id, "10", "feb")
        })
        .await;
    let old = record(
        &w,
        NewUsage {
            occurred_at: Some(ts("2030-02-20T00:00:00Z")),
            ..use_of(&e.id, "february", "1")
        },
    )
    .await;
    assert_eq!(drawn(&old), vec![(before.id.clone(), Decimal::ONE)]);
    let ent = w.store.get_entitlement(&w.tenant, &e.id).await.unwrap().unwrap();
    assert_eq!((ent.usage_in_period, ent.overage), (Decimal::from(7), Decimal::from(3)));
}

#[tokio::test]
async fn an_event_id_is_recorded_once_and_replays_must_match() {
    let w = World::at("2030-03-14T10:00:00Z");
    let e = w.entitlement("cus_1").await;
    let g = w.grant(new_grant(&e.id, "10", "g")).await;
    let first = record(&w, use_of(&e.id, "evt-1", "4")).await;
    w.clock.advance(60);
    match usage::record_usage(&w.store, &w.clock, &w.tenant, use_of(&e.id, "evt-1", "4"))
        .await
        .unwrap()
    {
        Created::Replayed(r) => assert_eq!(r, first, "the original, recorded_at included"),
        Created::New(_) => panic!("a replay must not record again"),
    }
    // The first request had no occurredAt: giving one now is not a difference.
    let dated = NewUsage {
        occurred_at: Some(ts("2030-03-14T09:00:00Z")),
        ..use_of(&e.id, "evt-1", "4")
    };
    assert!(matches!(
        usage::record_usage(&w.store, &w.clock, &w.tenant, dated).await.unwrap(),
        Created::Replayed(_)
    ));
    assert_eq!(
        err(usage::record_usage(&w.store, &w.clock, &w.tenant, use_of(&e.id, "evt-1", "5")).await),
        r#"IdempotencyMismatch(["amount"])"#
    );
    let pending = NewUsage {
        pending: true,
        ..use_of(&e.id, "evt-1", "5")
    };
    assert_eq!(
        err(usage::record_usage(&w.store, &w.clock, &w.tenant, pending).await),
        r#"IdempotencyMismatch(["amount", "pending"])"#
    );
    let dated_first = record(
        &w,
        NewUsage {
            occurred_at: Some(ts("2030-03-14T09:00:00Z")),
            ..use_of(&e.id, "evt-2", "1")
        },
    )
    .await;
    let moved = NewUsage {
        occurred_at: Some(ts("2030-03-14T09:30:00Z")),
        ..use_of(&e.id, "evt-2", "1")
    };
    assert_eq!(
        err(usage::record_usage(&w.store, &w.clock, &w.tenant, moved).await),
        r#"IdempotencyMismatch(["occurredAt"])"#
    );
    assert_eq!(dated_first.occurred_at, ts("2030-03-14T09:00:00Z"));
    assert_eq!(remaining(&w, &g).await.0, Decimal::from(5), "drawn once per event");
    let (_, _, records) = w.store.load_ledger(&w.tenant, &e.id).await.unwrap().unwrap();
    assert_eq!(records.len(), 2);
}

#[tokio::test]
async fn usage_is_refused_in_the_future_and_on_missing_or_cancelled_entitlements() {
    let w = World::at("2030-03-14T10:00:00Z");
    let e = w.entitlement("cus_1").await;
    let future = NewUsage {
        occurred_at: Some(ts("2030-03-14T10:00:01Z")),
        ..use_of(&e.id, "evt-1", "1")
    };
    assert_eq!(
        err(usage::record_usage(&w.store, &w.clock, &w.tenant, future).await),
        "OccurredInFuture"
    );
    assert_eq!(
        err(usage::record_usage(
            &w.store,
            &w.clock,
            &w.tenant,
            use_of(&EntitlementId::generate(), "x", "1")
        )
        .await),
        "EntitlementNotFound"
    );
    let first = record(&w, use_of(&e.id, "evt-1", "1")).await;
    entitlements::cancel_entitlement(&w.store, &w.clock, &w.tenant, &e.id)
        .await
        .unwrap();
    assert_eq!(
        err(usage::record_usage(&w.store, &w.clock, &w.tenant, use_of(&e.id, "evt-2", "1")).await),
        r#"EntitlementNotActive("canceled")"#
    );
    match usage::record_usage(&w.store, &w.clock, &w.tenant, use_of(&e.id, "evt-1", "1"))
        .await
        .unwrap()
    {
        Created::Replayed(r) => assert_eq!(r, first, "a replay is answered after cancellation"),
        Created::New(_) => panic!("expected a replay"),
    }
}

#[tokio::test]
async fn pending_usage_holds_credits_until_committed_or_released() {
    let w = World::at("2030-03-14T10:00:00Z");
    let e = w.entitlement("cus_1").await;
    let g = w.grant(new_grant(&e.id, "10", "g")).await;
    let hold = record(
        &w,
        NewUsage {
            pending: true,
            ..use_of(&e.id, "hold-1", "4")
        },
    )
    .await;
    assert_eq!(hold.status, UsageStatus::Pending);
    assert_eq!(remaining(&w, &g).await, (Decimal::from(10), Decimal::from(4)));
    let (ent, balance) = grants_domain::balances::balance(&w.store, &w.clock, &w.tenant, &e.id, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (balance.excluding_pending, balance.including_pending),
        (dec("10"), dec("6"))
    );
    assert_eq!(ent.usage_in_period, Decimal::ZERO, "pending usage is not counted yet");

    // Other usage may not draw on what is held.
    let other = record(&w, use_of(&e.id, "evt-1", "8")).await;
    assert_eq!(drawn(&other), vec![(g.id.clone(), Decimal::from(6))]);
    assert_eq!(other.overage, Decimal::from(2));

    let hold_id = label("hold-1");
    w.clock.advance(60);
    let committed = usage::settle_usage(&w.store, &w.clock, &w.tenant, &e.id, &hold_id, Settle::Commit)
        .await
        .unwrap();
    assert_eq!(
        (committed.status, committed.settled_at),
        (UsageStatus::Committed, Some(ts("2030-03-14T10:01:00Z")))
    );
    assert_eq!(remaining(&w, &g).await, (Decimal::ZERO, Decimal::ZERO));
    let ent = w.store.get_entitlement(&w.tenant, &e.id).await.unwrap().unwrap();
    assert_eq!(ent.usage_in_period, Decimal::from(12), "counted at commit");
    w.clock.advance(60);
    let again = usage::settle_usage(&w.store, &w.clock, &w.tenant, &e.id, &hold_id, Settle::Commit)
        .await
        .unwrap();
    assert_eq!(again, committed, "committing twice changes nothing");
    assert_eq!(
        err(usage::settle_usage(&w.store, &w.clock, &w.tenant, &e.id, &hold_id, Settle::Release).await),
        r#"WrongState("committed")"#
    );

    let topped = w.grant(new_grant(&e.id, "5", "g2")).await;
    let hold2 = label("hold-2");
    record(
        &w,
        NewUsage {
            pending: true,
            ..use_of(&e.id, "hold-2", "3")
        },
    )
    .await;
    assert_eq!(remaining(&w, &topped).await, (Decimal::from(5), Decimal::from(3)));
    let released = usage::settle_usage(&w.store, &w.clock, &w.tenant, &e.id, &hold2, Settle::Release)
        .await
        .unwrap();
    assert_eq!(released.status, UsageStatus::Released);
    assert_eq!(remaining(&w, &topped).await, (Decimal::from(5), Decimal::ZERO));
    let ent = w.store.get_entitlement(&w.tenant, &e.id).await.unwrap().unwrap();
    assert_eq!(
        ent.usage_in_period,
        Decimal::from(12),
        "released usage is never counted"
    );
    assert_eq!(
        usage::settle_usage(&w.store, &w.clock, &w.tenant, &e.id, &hold2, Settle::Release)
            .await
            .unwrap(),
        released
    );
    assert_eq!(
        err(usage::settle_usage(&w.store, &w.clock, &w.tenant, &e.id, &hold2, Settle::Commit).await),
        r#"WrongState("released")"#
    );
    assert_eq!(
        err(usage::settle_usage(&w.store, &w.clock, &w.tenant, &e.id, &label("nope"), Settle::Commit).await),
        "UsageNotFound"
    );
    assert_eq!(
        err(usage::settle_usage(
            &w.store,
            &w.clock,
            &w.tenant,
            &EntitlementId::generate(),
            &hold2,
            Settle::Commit
        )
        .await),
        "EntitlementNotFound"
    );
}

#[tokio::test]
async fn one_event_draws_on_500_grants_over_several_transactions() {
    let w = World::at("2030-03-14T10:00:00Z");
    let e = w.entitlement("cus_1").await;
    for i in 0..500 {
        w.grant(new_grant(&e.id, "1", &format!("g{i:03}"))).await;
    }
    let ok = record(&w, use_of(&e.id, "big", "499.5")).await;
    assert_eq!(ok.deductions.len(), 500);
    assert_eq!(ok.overage, Decimal::ZERO);
    let (ent, balance) = grants_domain::balances::balance(&w.store, &w.clock, &w.tenant, &e.id, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(balance.excluding_pending, dec("0.5"));
    assert_eq!(ent.usage_in_period, dec("499.5"));
    assert_eq!(ent.applying, None, "finished");
    assert_eq!(ent.log.map(|h| h.seq), Some(1), "one log entry with every deduction");
    let again = usage::record_usage(&w.store, &w.clock, &w.tenant, use_of(&e.id, "big", "499.5"))
        .await
        .unwrap();
    assert!(matches!(again, Created::Replayed(_)));
}

/// Replaying an event applied in steps, while the grants could still cover it again, answers the
/// record and draws nothing twice.
#[tokio::test]
async fn replaying_an_event_applied_in_steps_draws_nothing_twice() {
    let w = World::at("2030-03-14T10:00:00Z");
    let e = w.entitlement("cus_1").await;
    for i in 0..300 {
        w.grant(new_grant(&e.id, "2", &format!("g{i:03}"))).await;
    }
    let first = record(&w, use_of(&e.id, "big", "300")).await;
    assert_eq!(first.deductions.len(), 150);
    w.clock.advance(1);
    let again = usage::record_usage(&w.store, &w.clock, &w.tenant, use_of(&e.id, "big", "300"))
        .await
        .unwrap();
    assert!(matches!(again, Created::Replayed(ref r) if r.deductions.len() == 150));
    let (ent, balance) = grants_domain::balances::balance(&w.store, &w.clock, &w.tenant, &e.id, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(balance.excluding_pending, dec("300"));
    assert_eq!(ent.applying, None);
    let pending = usage::record_usage(
        &w.store,
        &w.clock,
        &w.tenant,
        NewUsage {
            pending: true,
            ..use_of(&e.id, "hold", "200")
        },
    )
    .await;
    assert_eq!(
        err(pending),
        "TooManyGrantsToHold(100)",
        "a pending event holds at most 93 grants"
    );
}

#[tokio::test]
async fn balances_at_past_instants_replay_the_ledger() {
    let w = World::at("2030-03-10T00:00:00Z");
    let e = w.entitlement("cus_1").await;
    w.grant(new_grant(&e.id, "10", "g")).await;
    record(&w, use_of(&e.id, "evt-1", "3")).await;
    w.clock.set("2030-03-12T00:00:00Z");
    record(&w, use_of(&e.id, "evt-2", "4")).await;
    let at = |s: &str| Some(ts(s));
    let balance_at = |t: Option<Timestamp>| {
        let w = &w;
        let id = e.id.clone();
        async move {
            grants_domain::balances::balance(&w.store, &w.clock, &w.tenant, &id, t)
                .await
                .unwrap()
                .unwrap()
                .1
                .excluding_pending
        }
    };
    assert_eq!(balance_at(at("2030-03-01T00:00:00Z")).await, dec("10"));
    assert_eq!(balance_at(at("2030-03-11T00:00:00Z")).await, dec("7"));
    assert_eq!(balance_at(None).await, dec("3"));
    let view = entitlements::get_entitlement_at(&w.store, &w.clock, &w.tenant, &e.id, ts("2030-03-11T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(view.balance, dec("7"));
}
