//! Capacity grants (`/v2/grants`) on the in-memory store: idempotent creates, validation, listing
//! filters, soft deletes, and the resell rules (a smaller grant from now replaces the old one).
#![allow(clippy::unwrap_used)]
mod common;

use common::{err, key, label, ts, World};
use grants_domain::capacity::{self, CapacityFilter, CapacityGrant, ExactPrice, NewCapacityGrant};
use grants_domain::grants::Created;
use grants_domain::CapacityGrantId;

fn price(s: &str) -> ExactPrice {
    ExactPrice::parse(s).unwrap()
}

fn request(kind: &str, cluster: &str, quantity: u64, ends_at: &str) -> NewCapacityGrant {
    NewCapacityGrant {
        kind: label(kind),
        cluster: label(cluster),
        quantity,
        starts_at: None,
        ends_at: ts(ends_at),
        unit_price: price("1.50"),
        early_termination_buyback_price: price("1.00"),
        flexible_usage_buyback_price: price("0.5"),
        idempotency_key: None,
    }
}

async fn create(w: &World, req: NewCapacityGrant) -> CapacityGrant {
    match capacity::create(&w.store, &w.clock, &w.tenant, req).await.unwrap() {
        Created::New(g) => g,
        Created::Replayed(_) => panic!("expected a new grant"),
    }
}

#[tokio::test]
async fn creates_are_idempotent_and_validated() {
    let w = World::at("2030-03-14T10:00:00Z");
    let req = NewCapacityGrant {
        idempotency_key: Some(key("cap-1")),
        ..request("gpu", "eu-1", 10, "2030-06-01T00:00:00Z")
    };
    let g = create(&w, req.clone()).await;
    assert_eq!(
        (g.starts_at, g.version, g.deleted_at),
        (ts("2030-03-14T10:00:00Z"), 0, None)
    );
    assert_eq!(g.unit_price.as_str(), "1.50", "kept as written");
    w.clock.advance(60);
    match capacity::create(&w.store, &w.clock, &w.tenant, req.clone())
        .await
        .unwrap()
    {
        Created::Replayed(r) => assert_eq!(r, g),
        Created::New(_) => panic!("a replay must not create"),
    }
    // "1.5" is the same price as "1.50": still a replay.
    let same = NewCapacityGrant {
        unit_price: price("1.5"),
        ..req.clone()
    };
    assert!(matches!(
        capacity::create(&w.store, &w.clock, &w.tenant, same).await.unwrap(),
        Created::Replayed(_)
    ));
    let different = NewCapacityGrant {
        quantity: 11,
        cluster: label("us-1"),
        ..req
    };
    assert_eq!(
        err(capacity::create(&w.store, &w.clock, &w.tenant, different).await),
        r#"IdempotencyMismatch(["cluster", "quantity"])"#
    );
    let all = capacity::list(&w.store, &w.clock, &w.tenant, &CapacityFilter::default())
        .await
        .unwrap();
    assert_eq!(all, vec![g]);

    let ended = NewCapacityGrant {
        starts_at: Some(ts("2030-06-01T00:00:00Z")),
        ..request("gpu", "eu-1", 1, "2030-06-01T00:00:00Z")
    };
    assert_eq!(
        err(capacity::create(&w.store, &w.clock, &w.tenant, ended).await),
        "EndsNotAfterStart"
    );
    let dear = NewCapacityGrant {
        flexible_usage_buyback_price: price("1.51"),
        ..request("gpu", "eu-1", 1, "2030-06-01T00:00:00Z")
    };
    assert_eq!(
        err(capacity::create(&w.store, &w.clock, &w.tenant, dear).await),
        r#"BuybackAboveUnitPrice("flexible_usage_buyback_price")"#
    );
    let dearer = NewCapacityGrant {
        early_termination_buyback_price: price("2"),
        ..request("gpu", "eu-1", 1, "2030-06-01T00:00:00Z")
    };
    assert_eq!(
        err(capacity::create(&w.store, &w.clock, &w.tenant, dearer).await),
        r#"BuybackAboveUnitPrice("early_termination_buyback_price")"#
    );
}

#[tokio::test]
async fn listing_shows_current_grants_oldest_first_with_filters() {
    let w = World::at("2030-03-14T10:00:00Z");
    let gpu = create(&w, request("gpu", "eu-1", 10, "2030-06-01T00:00:00Z")).await;
    w.clock.advance(1);
    let cpu = create(&w, request("cpu", "eu-1", 10, "2030-06-01T00:00:00Z")).await;
    w.clock.advance(1);
    let us = create(&w, request("gpu", "us-1", 10, "2030-06-01T00:00:00Z")).await;
    w.clock.advance(1);
    let short = create(&w, request("gpu", "eu-1", 10, "2030-03-15T00:00:00Z")).await;
    w.clock.advance(1);
    let deleted = create(&w, request("gpu", "eu-1", 10, "2030-06-01T00:00:00Z")).await;
    capacity::delete(&w.store, &w.clock, &w.tenant, &deleted.fid)
        .await
        .unwrap();
    let list = |filter: CapacityFilter| {
        let w = &w;
        async move {
            capacity::list(&w.store, &w.clock, &w.tenant, &filter)
                .await
                .unwrap()
                .into_iter()
                .map(|g| g.fid)
                .collect::<Vec<_>>()
        }
    };
    let sorted = |mut v: Vec<CapacityGrantId>| {
        v.sort();
        v
    };
    assert_eq!(
        list(CapacityFilter::default()).await,
        sorted(vec![
            gpu.fid.clone(),
            cpu.fid.clone(),
            us.fid.clone(),
            short.fid.clone()
        ])
    );
    let eu_gpu = CapacityFilter {
        cluster: Some("eu-1".to_owned()),
        kinds: vec!["gpu".to_owned()],
        show_expired: false,
    };
    assert_eq!(
        list(eu_gpu.clone()).await,
        sorted(vec![gpu.fid.clone(), short.fid.clone()])
    );
    w.clock.set("2030-03-15T00:00:00Z");
    assert_eq!(list(eu_gpu.clone()).await, vec![gpu.fid.clone()], "expired at its end");
    let everything = CapacityFilter {
        show_expired: true,
        ..eu_gpu
    };
    assert_eq!(
        list(everything).await,
        sorted(vec![gpu.fid.clone(), short.fid.clone(), deleted.fid.clone()])
    );
}

#[tokio::test]
async fn deletes_are_soft_and_idempotent() {
    let w = World::at("2030-03-14T10:00:00Z");
    let g = create(&w, request("gpu", "eu-1", 10, "2030-06-01T00:00:00Z")).await;
    let deleted = capacity::delete(&w.store, &w.clock, &w.tenant, &g.fid).await.unwrap();
    assert_eq!(
        (deleted.deleted_at, deleted.version),
        (Some(ts("2030-03-14T10:00:00Z")), 1)
    );
    w.clock.advance(3600);
    let again = capacity::delete(&w.store, &w.clock, &w.tenant, &g.fid).await.unwrap();
    assert_eq!(again, deleted);
    assert_eq!(
        err(capacity::delete(&w.store, &w.clock, &w.tenant, &CapacityGrantId::generate()).await),
        "NotFound"
    );
}

#[tokio::test]
async fn a_resell_replaces_the_grant_with_a_smaller_one_from_now() {
    let w = World::at("2030-03-14T10:00:00Z");
    let g = create(&w, request("gpu", "eu-1", 10, "2030-06-01T00:00:00Z")).await;
    w.clock.set("2030-04-01T00:00:00Z");
    for bad in [0, 10, 11] {
        assert_eq!(
            err(capacity::resell(&w.store, &w.clock, &w.tenant, &g.fid, bad).await),
            "QuantityNotLess(10)"
        );
    }
    let (old, new) = capacity::resell(&w.store, &w.clock, &w.tenant, &g.fid, 4)
        .await
        .unwrap();
    assert_eq!(
        (new.quantity, new.starts_at, new.ends_at),
        (4, ts("2030-04-01T00:00:00Z"), g.ends_at)
    );
    assert_eq!(new.resold_from, Some(g.fid.clone()));
    assert_eq!((new.unit_price.as_str(), new.kind.as_str()), ("1.50", "gpu"));
    assert_eq!(old.deleted_at, Some(new.starts_at));
    assert_eq!((old.resold_to.clone(), old.version), (Some(new.fid.clone()), 1));
    let current = capacity::list(&w.store, &w.clock, &w.tenant, &CapacityFilter::default())
        .await
        .unwrap();
    assert_eq!(current, vec![new.clone()], "the old one is deleted from now");
    assert_eq!(
        err(capacity::resell(&w.store, &w.clock, &w.tenant, &g.fid, 2).await),
        "AlreadyResold"
    );
    // The new one may be resold in turn.
    let (_, newer) = capacity::resell(&w.store, &w.clock, &w.tenant, &new.fid, 2)
        .await
        .unwrap();
    assert_eq!(newer.resold_from, Some(new.fid));

    let deleted = create(&w, request("gpu", "eu-1", 10, "2030-06-01T00:00:00Z")).await;
    capacity::delete(&w.store, &w.clock, &w.tenant, &deleted.fid)
        .await
        .unwrap();
    assert_eq!(
        err(capacity::resell(&w.store, &w.clock, &w.tenant, &deleted.fid, 2).await),
        "Deleted"
    );
    let ending = create(&w, request("gpu", "eu-1", 10, "2030-04-02T00:00:00Z")).await;
    w.clock.set("2030-04-02T00:00:00Z");
    assert_eq!(
        err(capacity::resell(&w.store, &w.clock, &w.tenant, &ending.fid, 2).await),
        "Expired"
    );
    assert_eq!(
        err(capacity::resell(&w.store, &w.clock, &w.tenant, &CapacityGrantId::generate(), 2).await),
        "NotFound"
    );
}

#[tokio::test]
async fn a_resell_of_a_grant_that_has_not_started_starts_when_it_would_have() {
    let w = World::at("2030-03-14T10:00:00Z");
    let future = create(
        &w,
        NewCapacityGrant {
            starts_at: Some(ts("2030-05-01T00:00:00Z")),
            ..request("gpu", "eu-1", 10, "2030-06-01T00:00:00Z")
        },
    )
    .await;
    let (old, new) = capacity::resell(&w.store, &w.clock, &w.tenant, &future.fid, 3)
        .await
        .unwrap();
    assert_eq!(new.starts_at, ts("2030-05-01T00:00:00Z"));
    assert_eq!(old.deleted_at, Some(ts("2030-05-01T00:00:00Z")));
    // Until then the old grant is still listed, with the new one.
    let listed = capacity::list(&w.store, &w.clock, &w.tenant, &CapacityFilter::default())
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);
}
