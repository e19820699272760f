//! Period resets on the in-memory store: the period moves to the one containing now (missed
//! periods skipped, month ends kept), the counters start again, bounded grants roll over clamped to
//! their bounds (never below what is held), the scheduled run's order, limit, deadline and
//! quarantine of periods that cannot be computed.
#![allow(clippy::unwrap_used)]
mod common;

use common::{bound, credits, dec, label, new_entitlement, ts, World};
use grants_domain::model::{Entitlement, Grant, NewGrantFields};
use grants_domain::ports::{EntitlementStore, GrantStore, InsertOutcome, PeriodStore, UsageStore};
use grants_domain::usage::{self, NewUsage};
use grants_domain::{entitlements, periods, Timestamp};
use rust_decimal::Decimal;
use std::time::{Duration, Instant};

fn later() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

/// A grant on `e` of `amount` with `remaining` left, stored directly.
async fn stored(w: &World, e: &Entitlement, amount: &str, remaining: &str, change: impl FnOnce(&mut Grant)) -> Grant {
    let mut g = Grant::new(NewGrantFields {
        tenant: w.tenant.clone(),
        entitlement_id: e.id.clone(),
        customer_id: e.customer_id.clone(),
        amount: credits(amount),
        effective_at: e.current_period_start,
        created_at: e.current_period_start,
        credit_type_id: None,
    });
    g.remaining = dec(remaining);
    change(&mut g);
    assert!(matches!(
        w.store.insert_grant(&g, None, None).await.unwrap(),
        InsertOutcome::Inserted
    ));
    g
}

async fn now_of(w: &World, g: &Grant) -> Grant {
    w.store
        .get_grant(&w.tenant, &g.entitlement_id, &g.id)
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn a_reset_moves_the_period_zeroes_the_counters_and_rolls_bounded_grants_over() {
    let w = World::at("2030-01-15T00:00:00Z");
    let e = w
        .entitlement_for("cus_1", "2030-01-01T00:00:00Z", "2030-02-01T00:00:00Z")
        .await;
    // Usage no grant covered, to see the counters start again.
    let usage = usage::record_usage(
        &w.store,
        &w.clock,
        &w.tenant,
        NewUsage {
            entitlement_id: e.id.clone(),
            event_id: label("evt-1"),
            amount: credits("7"),
            occurred_at: Some(ts("2030-01-10T00:00:00Z")),
            pending: false,
        },
    )
    .await
    .unwrap()
    .into_inner();
    assert_eq!(usage.overage, dec("7"), "no grant yet");
    let counted = w.store.get_entitlement(&w.tenant, &e.id).await.unwrap().unwrap();
    assert_eq!((counted.usage_in_period, counted.overage), (dec("7"), dec("7")));
    let capped = stored(&w, &e, "100", "50", |g| g.reset_max_rollover = Some(bound("20"))).await;
    let topped = stored(&w, &e, "100", "10", |g| g.reset_min_rollover = Some(bound("30"))).await;
    let both = stored(&w, &e, "100", "100", |g| {
        g.reset_min_rollover = Some(bound("10"));
        g.reset_max_rollover = Some(bound("40"));
    })
    .await;
    let unbounded = stored(&w, &e, "100", "60", |_| {}).await;
    let expired = stored(&w, &e, "100", "100", |g| {
        g.reset_max_rollover = Some(bound("5"));
        g.expires_at = Some(ts("2030-01-20T00:00:00Z"));
    })
    .await;
    let held = stored(&w, &e, "100", "100", |g| {
        g.reset_max_rollover = Some(bound("10"));
        g.reserved = dec("30");
    })
    .await;
    let within = stored(&w, &e, "100", "15", |g| g.reset_max_rollover = Some(bound("20"))).await;

    w.clock.set("2030-01-31T23:59:59Z");
    let run = periods::reset_due(&w.store, &w.clock, 10, later()).await.unwrap();
    assert_eq!(run.reset, 0, "not ended yet");

    w.clock.set("2030-02-02T00:00:00Z");
    let run = periods::reset_due(&w.store, &w.clock, 10, later()).await.unwrap();
    assert_eq!(
        (run.reset, run.failed, run.quarantined, run.out_of_time),
        (1, 0, 0, false)
    );
    let moved = w.store.get_entitlement(&w.tenant, &e.id).await.unwrap().unwrap();
    assert_eq!(
        (moved.current_period_start, moved.current_period_end),
        (ts("2030-02-01T00:00:00Z"), ts("2030-03-01T00:00:00Z"))
    );
    assert_eq!((moved.usage_in_period, moved.overage), (Decimal::ZERO, Decimal::ZERO));
    assert_eq!(now_of(&w, &capped).await.remaining, dec("20"), "clamped to the maximum");
    assert_eq!(
        now_of(&w, &topped).await.remaining,
        dec("30"),
        "topped up to the minimum"
    );
    assert_eq!(now_of(&w, &both).await.remaining, dec("40"));
    assert_eq!(now_of(&w, &held).await.remaining, dec("30"), "never below what is held");
    let untouched = [unbounded.clone(), expired.clone(), within.clone()];
    for g in &untouched {
        assert_eq!(&now_of(&w, g).await, g, "unbounded, ended or within bounds: untouched");
    }
    assert_eq!(now_of(&w, &capped).await.version, 1);

    // The ledger has one rollover record of the adjustments (a top-up is a negative deduction).
    let (_, _, records) = w.store.load_ledger(&w.tenant, &e.id).await.unwrap().unwrap();
    let rollovers: Vec<_> = records.iter().filter(|r| r.rollover).collect();
    assert_eq!((records.len(), rollovers.len()), (2, 1));
    let rollover = rollovers[0];
    assert_eq!(rollover.event_id, "rollover:2030-02-01T00:00:00.000000Z");
    let mut deductions: Vec<(String, Decimal)> = rollover
        .deductions
        .iter()
        .map(|d| (d.grant_id.to_string(), d.amount))
        .collect();
    deductions.sort();
    let mut expected = vec![
        (capped.id.to_string(), dec("30")),
        (topped.id.to_string(), dec("-20")),
        (both.id.to_string(), dec("60")),
        (held.id.to_string(), dec("70")),
    ];
    expected.sort();
    assert_eq!(deductions, expected);

    // Nothing more until the new period ends.
    let run = periods::reset_due(&w.store, &w.clock, 10, later()).await.unwrap();
    assert_eq!(run.reset, 0);
    let view = entitlements::get_entitlement(&w.store, &w.clock, &w.tenant, &e.id)
        .await
        .unwrap();
    assert_eq!(
        view.balance,
        dec("20") + dec("30") + dec("40") + dec("60") + dec("30") + dec("15")
    );
}

#[tokio::test]
async fn missed_periods_are_skipped_and_month_ends_do_not_drift() {
    let w = World::at("2030-01-31T00:00:00Z");
    let e = w
        .entitlement_for("cus_1", "2030-01-31T00:00:00Z", "2030-02-28T00:00:00Z")
        .await;
    assert_eq!(e.period_months, Some(1));
    w.clock.set("2030-04-30T12:00:00Z");
    assert_eq!(periods::reset_tenant(&w.store, &w.clock, &w.tenant).await.unwrap(), 1);
    let moved = w.store.get_entitlement(&w.tenant, &e.id).await.unwrap().unwrap();
    assert_eq!(
        (moved.current_period_start, moved.current_period_end),
        (ts("2030-04-30T00:00:00Z"), ts("2030-05-31T00:00:00Z"))
    );
    w.clock.set("2030-06-01T00:00:00Z");
    assert_eq!(periods::reset_tenant(&w.store, &w.clock, &w.tenant).await.unwrap(), 1);
    let moved = w.store.get_entitlement(&w.tenant, &e.id).await.unwrap().unwrap();
    assert_eq!(moved.current_period_start, ts("2030-05-31T00:00:00Z"));
    // Periods that are not whole months repeat their exact length.
    let weekly = w
        .entitlement_for("cus_2", "2030-06-01T00:00:00Z", "2030-06-08T00:00:00Z")
        .await;
    w.clock.set("2030-06-20T00:00:00Z");
    periods::reset_tenant(&w.store, &w.clock, &w.tenant).await.unwrap();
    let moved = w.store.get_entitlement(&w.tenant, &weekly.id).await.unwrap().unwrap();
    assert_eq!(
        (moved.current_period_start, moved.current_period_end),
        (ts("2030-06-15T00:00:00Z"), ts("2030-06-22T00:00:00Z"))
    );
}

#[tokio::test]
async fn the_scheduled_run_takes_the_oldest_ends_first_up_to_its_limit() {
    let w = World::at("2030-01-01T00:00:00Z");
    let feb = w
        .entitlement_for("a", "2030-01-01T00:00:00Z", "2030-02-01T00:00:00Z")
        .await;
    let mid = w
        .entitlement_for("b", "2030-01-01T00:00:00Z", "2030-01-15T00:00:00Z")
        .await;
    let twentieth = w
        .entitlement_for("c", "2030-01-10T00:00:00Z", "2030-01-20T00:00:00Z")
        .await;
    let canceled = w
        .entitlement_for("d", "2030-01-01T00:00:00Z", "2030-01-10T00:00:00Z")
        .await;
    entitlements::cancel_entitlement(&w.store, &w.clock, &w.tenant, &canceled.id)
        .await
        .unwrap();
    w.clock.set("2030-02-05T00:00:00Z");
    let due: Vec<_> = w
        .store
        .entitlements_due_for_reset(ts("2030-02-05T00:00:00Z"), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert_eq!(due, [mid.id.clone(), twentieth.id.clone(), feb.id.clone()]);
    let run = periods::reset_due(&w.store, &w.clock, 2, later()).await.unwrap();
    assert_eq!(run.reset, 2);
    let feb_now = w.store.get_entitlement(&w.tenant, &feb.id).await.unwrap().unwrap();
    assert_eq!(
        feb_now.current_period_end,
        ts("2030-02-01T00:00:00Z"),
        "left for the next run"
    );
    let run = periods::reset_due(&w.store, &w.clock, 2, later()).await.unwrap();
    assert_eq!(run.reset, 1);
    let run = periods::reset_due(&w.store, &w.clock, 2, later()).await.unwrap();
    assert_eq!(run, periods::ResetRun::default());
    let still = w.store.get_entitlement(&w.tenant, &canceled.id).await.unwrap().unwrap();
    assert_eq!(
        still.current_period_end,
        ts("2030-01-10T00:00:00Z"),
        "cancelled: never reset"
    );

    // A run past its deadline leaves the work for the next one.
    w.clock.set("2030-04-01T00:00:00Z");
    let late = periods::reset_due(&w.store, &w.clock, 10, Instant::now())
        .await
        .unwrap();
    assert!(late.out_of_time);
    assert_eq!(late.reset, 0);
    assert_eq!(
        periods::reset_due(&w.store, &w.clock, 10, later()).await.unwrap().reset,
        3
    );
}

#[tokio::test]
async fn a_period_that_cannot_be_computed_is_taken_out_of_the_schedule() {
    let w = World::at("2030-03-01T00:00:00Z");
    let good = w.entitlement("fine").await;
    // Stored before the minimum period existed: half a second long.
    let mut stuck = w.store.get_entitlement(&w.tenant, &good.id).await.unwrap().unwrap();
    stuck.id = grants_domain::EntitlementId::generate();
    stuck.current_period_end =
        Timestamp::from_datetime(stuck.current_period_start.as_datetime() + chrono::TimeDelta::milliseconds(500))
            .unwrap();
    stuck.period_months = None;
    w.store.put_entitlement(&stuck).await.unwrap();
    w.clock.set("2030-04-02T00:00:00Z");
    let run = periods::reset_due(&w.store, &w.clock, 10, later()).await.unwrap();
    assert_eq!((run.reset, run.quarantined, run.failed), (1, 1, 0));
    let again = periods::reset_due(&w.store, &w.clock, 10, later()).await.unwrap();
    assert_eq!((again.reset, again.quarantined), (0, 0), "out of the schedule");
    let due = w
        .store
        .entitlements_due_for_reset(ts("2030-04-02T00:00:00Z"), 10)
        .await
        .unwrap();
    assert!(due.is_empty());
}

#[tokio::test]
async fn entitlements_with_too_short_or_inverted_periods_are_refused() {
    let w = World::at("2030-03-01T00:00:00Z");
    let req = |start: &str, end: &str| grants_domain::entitlements::NewEntitlement {
        current_period_start: Some(ts(start)),
        current_period_end: Some(ts(end)),
        ..new_entitlement("c")
    };
    let short = entitlements::create_entitlement(
        &w.store,
        &w.clock,
        &w.tenant,
        req("2030-03-01T00:00:00Z", "2030-03-01T00:59:59Z"),
    )
    .await;
    assert_eq!(common::err(short), "PeriodTooShort");
    let inverted = entitlements::create_entitlement(
        &w.store,
        &w.clock,
        &w.tenant,
        req("2030-03-01T00:00:00Z", "2030-02-01T00:00:00Z"),
    )
    .await;
    assert_eq!(common::err(inverted), "PeriodInverted");
}
