//! Direct grants on the in-memory store: idempotent create (replay and conflict), defaults and
//! validation, the entitlement's status, a kept copy of the entitlement going stale at a period
//! reset, voids, listing.
#![allow(clippy::unwrap_used)]
mod common;

use common::{bound, err, new_grant, priority, ts, World};
use grants_domain::grants::{self, Created, EntitlementFactsCache};
use grants_domain::ports::{EntitlementStore, GrantStore};
use grants_domain::{entitlements, periods, Clock, GrantId};
use rust_decimal::Decimal;
use std::time::Duration;

fn cache() -> EntitlementFactsCache {
    EntitlementFactsCache::new(Duration::from_secs(60))
}

#[tokio::test]
async fn the_same_key_and_body_replay_the_first_grant_and_a_different_body_is_a_conflict() {
    let w = World::at("2030-03-14T10:00:00Z");
    let e = w.entitlement("cus_1").await;
    let facts = cache();
    let first = grants::create_grant(&w.store, &w.clock, &facts, &w.tenant, new_grant(&e.id, "100", "k1"))
        .await
        .unwrap();
    let Created::New(g) = first else { panic!("a new grant") };
    assert_eq!(
        (g.remaining, g.version, g.reserved),
        (Decimal::from(100), 0, Decimal::ZERO)
    );
    assert_eq!(g.idempotency_key.as_deref(), Some("k1"));
    assert_eq!(g.customer_id, "cus_1");

    w.clock.advance(60);
    let again = grants::create_grant(&w.store, &w.clock, &cache(), &w.tenant, new_grant(&e.id, "100", "k1"))
        .await
        .unwrap();
    match again {
        Created::Replayed(r) => assert_eq!(r, g, "the original, unchanged"),
        Created::New(_) => panic!("a replay must not create"),
    }
    let conflict = grants::create_grant(&w.store, &w.clock, &facts, &w.tenant, new_grant(&e.id, "101", "k1")).await;
    assert_eq!(err(conflict), r#"IdempotencyMismatch(["amount"])"#);
    let with_priority = grants::NewGrant {
        priority: Some(priority(1)),
        ..new_grant(&e.id, "100", "k1")
    };
    assert_eq!(
        err(grants::create_grant(&w.store, &w.clock, &facts, &w.tenant, with_priority).await),
        r#"IdempotencyMismatch(["priority"])"#
    );
    assert_eq!(w.store.list_grants(&w.tenant, &e.id).await.unwrap().len(), 1);
    // The same key on another entitlement is another grant.
    let other = w.entitlement("cus_1").await;
    let elsewhere = grants::create_grant(&w.store, &w.clock, &facts, &w.tenant, new_grant(&other.id, "5", "k1"))
        .await
        .unwrap();
    assert!(matches!(elsewhere, Created::New(_)));
}

#[tokio::test]
async fn defaults_and_validation() {
    let w = World::at("2030-03-14T10:00:00Z");
    let e = w.entitlement("cus_1").await;
    assert_eq!(e.current_period_start, ts("2030-03-01T00:00:00Z"));
    let facts = cache();
    let g = grants::create_grant(&w.store, &w.clock, &facts, &w.tenant, new_grant(&e.id, "10", "a"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        g.effective_at, e.current_period_start,
        "effective from the period start"
    );
    assert_eq!((g.expires_at, g.priority), (None, None));

    let early_expiry = grants::NewGrant {
        effective_at: Some(ts("2030-03-10T00:00:00Z")),
        expires_at: Some(ts("2030-03-10T00:00:00Z")),
        ..new_grant(&e.id, "10", "b")
    };
    assert_eq!(
        err(grants::create_grant(&w.store, &w.clock, &facts, &w.tenant, early_expiry).await),
        "ExpiresNotAfterEffective"
    );
    let before_period = grants::NewGrant {
        expires_at: Some(ts("2030-02-01T00:00:00Z")),
        ..new_grant(&e.id, "10", "c")
    };
    assert_eq!(
        err(grants::create_grant(&w.store, &w.clock, &facts, &w.tenant, before_period).await),
        "ExpiresNotAfterEffective"
    );
    let inverted = grants::NewGrant {
        reset_min_rollover: Some(bound("5")),
        reset_max_rollover: Some(bound("4")),
        ..new_grant(&e.id, "10", "d")
    };
    assert_eq!(
        err(grants::create_grant(&w.store, &w.clock, &facts, &w.tenant, inverted).await),
        "Rollover(Inverted)"
    );
    let above = grants::NewGrant {
        reset_min_rollover: Some(bound("11")),
        ..new_grant(&e.id, "10", "e")
    };
    assert_eq!(
        err(grants::create_grant(&w.store, &w.clock, &facts, &w.tenant, above).await),
        "Rollover(AboveAmount)"
    );
    let bounded = grants::NewGrant {
        reset_min_rollover: Some(bound("10")),
        reset_max_rollover: Some(bound("10")),
        expires_at: Some(ts("2031-01-01T00:00:00Z")),
        priority: Some(priority(3)),
        ..new_grant(&e.id, "10", "f")
    };
    let g = grants::create_grant(&w.store, &w.clock, &facts, &w.tenant, bounded)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(g.reset_min_rollover, Some(bound("10")));
    assert_eq!(g.priority, Some(priority(3)));
    // Only the valid grants were written.
    assert_eq!(w.store.list_grants(&w.tenant, &e.id).await.unwrap().len(), 2);
}

#[tokio::test]
async fn grants_need_an_active_entitlement_but_replays_are_answered_after_cancellation() {
    let w = World::at("2030-03-14T10:00:00Z");
    let facts = cache();
    let missing = grants_domain::EntitlementId::generate();
    assert_eq!(
        err(grants::create_grant(&w.store, &w.clock, &facts, &w.tenant, new_grant(&missing, "1", "k")).await),
        "EntitlementNotFound"
    );
    let e = w.entitlement("cus_1").await;
    let g = grants::create_grant(&w.store, &w.clock, &facts, &w.tenant, new_grant(&e.id, "5", "k"))
        .await
        .unwrap()
        .into_inner();
    entitlements::cancel_entitlement(&w.store, &w.clock, &w.tenant, &e.id)
        .await
        .unwrap();
    // The kept copy of the entitlement still says active: the insert is refused, and the fresh read
    // says why.
    assert_eq!(
        err(grants::create_grant(&w.store, &w.clock, &facts, &w.tenant, new_grant(&e.id, "5", "other")).await),
        r#"EntitlementNotActive("canceled")"#
    );
    match grants::create_grant(&w.store, &w.clock, &facts, &w.tenant, new_grant(&e.id, "5", "k")).await {
        Ok(Created::Replayed(r)) => assert_eq!(r.id, g.id),
        other => panic!("expected a replay, got {other:?}"),
    }
}

#[tokio::test]
async fn a_kept_copy_of_the_entitlement_that_went_stale_at_a_reset_is_read_again() {
    let w = World::at("2030-03-14T10:00:00Z");
    let e = w.entitlement("cus_1").await;
    let facts = cache();
    let g1 = grants::create_grant(&w.store, &w.clock, &facts, &w.tenant, new_grant(&e.id, "1", "a"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(g1.effective_at, ts("2030-03-01T00:00:00Z"));
    // The period ends and is reset; this instance still keeps the March start.
    w.clock.set("2030-04-02T00:00:00Z");
    assert_eq!(periods::reset_tenant(&w.store, &w.clock, &w.tenant).await.unwrap(), 1);
    let g2 = grants::create_grant(&w.store, &w.clock, &facts, &w.tenant, new_grant(&e.id, "1", "b"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(g2.effective_at, ts("2030-04-01T00:00:00Z"), "dated from the new period");
    // An explicit effectiveAt is not conditional on the period.
    let dated = grants::NewGrant {
        effective_at: Some(ts("2030-01-01T00:00:00Z")),
        ..new_grant(&e.id, "1", "c")
    };
    let g3 = grants::create_grant(&w.store, &w.clock, &facts, &w.tenant, dated)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(g3.effective_at, ts("2030-01-01T00:00:00Z"));
}

#[tokio::test]
async fn voids_are_idempotent_and_listing_hides_voided_grants_unless_asked() {
    let w = World::at("2030-03-14T10:00:00Z");
    let e = w.entitlement("cus_1").await;
    let facts = cache();
    let mut made = Vec::new();
    for (i, amount) in ["1", "2", "3"].iter().enumerate() {
        let g = grants::create_grant(
            &w.store,
            &w.clock,
            &facts,
            &w.tenant,
            new_grant(&e.id, amount, &format!("k{i}")),
        )
        .await
        .unwrap()
        .into_inner();
        made.push(g);
    }
    let voided = grants::void_grant(&w.store, &w.clock, &w.tenant, &e.id, &made[1].id)
        .await
        .unwrap();
    assert_eq!(voided.voided_at, Some(w.clock.now()));
    let first_void = voided.voided_at;
    w.clock.advance(3600);
    let again = grants::void_grant(&w.store, &w.clock, &w.tenant, &e.id, &made[1].id)
        .await
        .unwrap();
    assert_eq!(again.voided_at, first_void, "voided_at never moves");
    assert_eq!(again.version, voided.version);
    assert_eq!(
        err(grants::void_grant(&w.store, &w.clock, &w.tenant, &e.id, &GrantId::generate()).await),
        "NotFound"
    );
    assert_eq!(
        err(grants::get_grant(&w.store, &w.tenant, &e.id, &GrantId::generate()).await),
        "NotFound"
    );
    assert_eq!(
        grants::get_grant(&w.store, &w.tenant, &e.id, &made[0].id)
            .await
            .unwrap(),
        made[0]
    );

    let page = grants::list_grants(&w.store, &w.tenant, &e.id, false, 10, 0)
        .await
        .unwrap();
    assert_eq!(page.total, 2);
    assert!(page.items.iter().all(|g| g.voided_at.is_none()));
    let all = grants::list_grants(&w.store, &w.tenant, &e.id, true, 2, 1)
        .await
        .unwrap();
    assert_eq!((all.total, all.items.len(), all.offset), (3, 2, 1));
    let mut ids: Vec<GrantId> = made.iter().map(|g| g.id.clone()).collect();
    ids.sort();
    assert_eq!(all.items.iter().map(|g| g.id.clone()).collect::<Vec<_>>(), ids[1..]);
    assert_eq!(
        err(grants::list_grants(
            &w.store,
            &w.tenant,
            &grants_domain::EntitlementId::generate(),
            true,
            10,
            0
        )
        .await),
        "EntitlementNotFound"
    );
    // The entitlement's balance no longer counts the voided grant.
    let view = entitlements::get_entitlement(&w.store, &w.clock, &w.tenant, &e.id)
        .await
        .unwrap();
    assert_eq!(view.balance, Decimal::from(4));
    assert_eq!(
        w.store.get_entitlement(&w.tenant, &e.id).await.unwrap().unwrap().id,
        e.id
    );
}
