//! The contract of the usage port ([`crate::usage::UsageStore`]).
use super::{
    after, bumped, cancel, dec, delta, grant, stored_entitlement, stored_grant, tenant, ts, usage, write, START,
};
use crate::ledger::UsageStatus;
use crate::model::{Entitlement, Grant};
use crate::ports::{Store, UsageWrite};
use crate::usage::UsageRecord;
use crate::EntitlementId;
use rust_decimal::Decimal;

/// `write_usage` writes the record, adds to the counters and replaces the grants, together.
pub async fn write_usage_writes_record_counters_and_grants(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let e = stored_entitlement(store, &t, "c").await;
    let (g1, g2) = (stored_grant(store, &e, "10").await, stored_grant(store, &e, "5").await);
    let u1 = usage(&e, "evt-1", "12", vec![(&g1, "10"), (&g2, "2")]);
    let w1 = [
        bumped(&g1, |g| {
            g.remaining = dec("0");
            g.last_used_at = Some(u1.occurred_at);
        }),
        bumped(&g2, |g| g.remaining = dec("3.0")),
    ];
    assert!(matches!(
        write(store, &u1, delta("12", "0"), &w1).await,
        UsageWrite::Written
    ));
    let (ent, grants, records) = store.load_ledger(&t, &e.id).await.expect("load").expect("stored");
    assert_eq!((ent.usage_in_period, ent.overage), (dec("12"), dec("0")));
    let mut expected = vec![w1[0].0.clone(), w1[1].0.clone()];
    expected.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(grants, expected);
    assert_eq!(records, vec![u1.clone()]);
    assert_eq!(store.get_usage(&t, &e.id, "evt-1").await.expect("get"), Some(u1));
    let mut u2 = usage(&e, "evt-2", "4", vec![(&g2, "3")]);
    u2.overage = dec("1");
    let w2 = [bumped(&w1[1].0, |g| g.remaining = Decimal::ZERO)];
    assert!(matches!(
        write(store, &u2, delta("4", "1"), &w2).await,
        UsageWrite::Written
    ));
    let ent = store.get_entitlement(&t, &e.id).await.expect("get").expect("stored");
    assert_eq!((ent.usage_in_period, ent.overage), (dec("16"), dec("1")));
    assert_eq!(
        store.get_grant(&t, &e.id, &g2.id).await.expect("get"),
        Some(w2[0].0.clone())
    );
}

/// A record with the event id exists: nothing is written and it is returned, whatever else moved.
pub async fn write_usage_returns_an_existing_event(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let e = stored_entitlement(store, &t, "c").await;
    let g = stored_grant(store, &e, "10").await;
    let u1 = usage(&e, "evt-1", "3", vec![(&g, "3")]);
    let w1 = [bumped(&g, |g| g.remaining = dec("7"))];
    assert!(matches!(
        write(store, &u1, delta("3", "0"), &w1).await,
        UsageWrite::Written
    ));
    let u2 = usage(&e, "evt-1", "5", vec![(&w1[0].0, "5")]);
    let w2 = [bumped(&w1[0].0, |g| g.remaining = dec("2"))];
    match write(store, &u2, delta("5", "0"), &w2).await {
        UsageWrite::Exists(old) => assert_eq!(old, u1),
        other => panic!("expected Exists, got {other:?}"),
    }
    let (ent, grants, records) = store.load_ledger(&t, &e.id).await.expect("load").expect("stored");
    assert_eq!(ent.usage_in_period, dec("3"), "counters unchanged");
    assert_eq!(grants, vec![w1[0].0.clone()], "grants unchanged");
    assert_eq!(records, vec![u1.clone()]);
    // It decides first: before stale grants and an inactive entitlement.
    cancel(store, &e).await;
    match write(store, &u2, delta("5", "0"), &w1).await {
        UsageWrite::Exists(old) => assert_eq!(old, u1),
        other => panic!("expected Exists, got {other:?}"),
    }
}

/// A grant that moved since it was read (or is missing): nothing is written, Stale.
pub async fn write_usage_with_a_stale_grant_writes_nothing(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let e = stored_entitlement(store, &t, "c").await;
    let (g1, g2) = (stored_grant(store, &e, "10").await, stored_grant(store, &e, "10").await);
    let u = usage(&e, "evt-1", "4", vec![(&g1, "2"), (&g2, "2")]);
    let fresh = bumped(&g1, |g| g.remaining = dec("8"));
    let (moved, _) = bumped(&g2, |g| g.remaining = dec("8"));
    let stale = [fresh.clone(), (moved.clone(), 1)];
    assert!(matches!(
        write(store, &u, delta("4", "0"), &stale).await,
        UsageWrite::Stale
    ));
    let mut missing = grant(&e, "10");
    missing.remaining = dec("8");
    assert!(matches!(
        write(store, &u, delta("4", "0"), &[(missing, 0)]).await,
        UsageWrite::Stale
    ));
    let (ent, grants, records) = store.load_ledger(&t, &e.id).await.expect("load").expect("stored");
    assert_eq!(ent.usage_in_period, Decimal::ZERO);
    assert_eq!(
        grants,
        sorted_grants(vec![g1, g2]),
        "no grant written, not even the fresh one"
    );
    assert!(records.is_empty());
}

fn sorted_grants(mut g: Vec<Grant>) -> Vec<Grant> {
    g.sort_by(|a, b| a.id.cmp(&b.id));
    g
}

/// The entitlement must exist and be active (checked before the grants' versions).
pub async fn write_usage_needs_an_active_entitlement(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let e = stored_entitlement(store, &t, "c").await;
    let g = stored_grant(store, &e, "10").await;
    cancel(store, &e).await;
    let u = usage(&e, "evt-1", "1", vec![(&g, "1")]);
    let w = [bumped(&g, |g| g.remaining = dec("9"))];
    assert!(matches!(
        write(store, &u, delta("1", "0"), &w).await,
        UsageWrite::EntitlementUnavailable
    ));
    let stale = [(w[0].0.clone(), 7)];
    assert!(matches!(
        write(store, &u, delta("1", "0"), &stale).await,
        UsageWrite::EntitlementUnavailable
    ));
    let (ent, grants, records) = store.load_ledger(&t, &e.id).await.expect("load").expect("stored");
    assert_eq!(
        (ent.usage_in_period, grants, records.len()),
        (Decimal::ZERO, vec![g], 0)
    );
    let mut orphan = usage(&e, "evt-2", "1", Vec::new());
    orphan.entitlement_id = EntitlementId::generate();
    assert!(matches!(
        write(store, &orphan, delta("1", "0"), &[]).await,
        UsageWrite::EntitlementUnavailable
    ));
    assert_eq!(
        store.get_usage(&t, &orphan.entitlement_id, "evt-2").await.expect("get"),
        None
    );
}

/// `settle_usage` replaces a pending record (and only a pending one) with its settled state, adds
/// to the counters (the entitlement need only exist) and replaces the grants at their versions.
pub async fn settle_usage_replaces_a_pending_record(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let e = stored_entitlement(store, &t, "c").await;
    let g = stored_grant(store, &e, "10").await;
    let mut pending = usage(&e, "evt-1", "4", vec![(&g, "4")]);
    pending.status = UsageStatus::Pending;
    let held = bumped(&g, |g| g.reserved = dec("4"));
    assert!(matches!(
        write(store, &pending, delta("0", "0"), std::slice::from_ref(&held)).await,
        UsageWrite::Written
    ));
    let committed = UsageRecord {
        status: UsageStatus::Committed,
        settled_at: Some(after(ts(START), 7200)),
        ..pending.clone()
    };
    let consumed = bumped(&held.0, |g| {
        g.reserved = Decimal::ZERO;
        g.remaining = dec("6");
    });
    // A stale grant: nothing written.
    let stale = [(consumed.0.clone(), 0)];
    assert!(!store
        .settle_usage(&committed, delta("4", "0"), &stale, None)
        .await
        .expect("settle"));
    assert_eq!(
        store.get_usage(&t, &e.id, "evt-1").await.expect("get"),
        Some(pending.clone())
    );
    assert!(store
        .settle_usage(&committed, delta("4", "0"), std::slice::from_ref(&consumed), None)
        .await
        .expect("settle"));
    let (ent, grants, records) = store.load_ledger(&t, &e.id).await.expect("load").expect("stored");
    assert_eq!(ent.usage_in_period, dec("4"));
    assert_eq!(grants, vec![consumed.0.clone()]);
    assert_eq!(records, vec![committed.clone()]);
    // No longer pending: nothing written.
    let released = UsageRecord {
        status: UsageStatus::Released,
        ..committed.clone()
    };
    assert!(!store
        .settle_usage(&released, delta("0", "0"), &[], None)
        .await
        .expect("settle"));
    assert_eq!(store.get_usage(&t, &e.id, "evt-1").await.expect("get"), Some(committed));
    // A missing record is not created.
    let mut unknown = released.clone();
    unknown.event_id = "evt-unknown".to_owned();
    assert!(!store
        .settle_usage(&unknown, delta("1", "0"), &[], None)
        .await
        .expect("settle"));
    assert_eq!(store.get_usage(&t, &e.id, "evt-unknown").await.expect("get"), None);
    settle_usage_needs_no_active_entitlement(store, &e, &consumed.0).await;
}

/// The end of [`settle_usage_replaces_a_pending_record`] (`e` holds 4 of usage; `g` is its grant as
/// stored): settling needs no active entitlement.
async fn settle_usage_needs_no_active_entitlement(store: &dyn Store, e: &Entitlement, g: &Grant) {
    let t = &e.tenant;
    let mut second = usage(e, "evt-2", "1", vec![(g, "1")]);
    second.status = UsageStatus::Pending;
    let held2 = bumped(g, |g| g.reserved = dec("1"));
    assert!(matches!(
        write(store, &second, delta("0", "0"), std::slice::from_ref(&held2)).await,
        UsageWrite::Written
    ));
    cancel(store, e).await;
    let release = UsageRecord {
        status: UsageStatus::Released,
        settled_at: Some(after(ts(START), 7200)),
        ..second
    };
    let freed = bumped(&held2.0, |g| g.reserved = Decimal::ZERO);
    assert!(store
        .settle_usage(&release, delta("0", "0"), &[freed], None)
        .await
        .expect("settle"));
    let ent = store.get_entitlement(t, &e.id).await.expect("get").expect("stored");
    assert_eq!(ent.usage_in_period, dec("4"));
}

/// An entitlement's usage records are read back (by `load_ledger`) in the order of the SHA-256 of
/// their event ids (the sort key), with numbers normalised.
pub async fn usage_records_read_back_in_event_hash_order(store: &dyn Store, prefix: &str) {
    use sha2::{Digest, Sha256};
    let t = tenant(prefix, "a");
    let e = stored_entitlement(store, &t, "c").await;
    let events = ["evt-a", "evt-b", "evt-c", "evt-d"];
    for id in events {
        let mut u = usage(&e, id, "1.50", Vec::new());
        u.overage = dec("1.50");
        assert!(matches!(
            write(store, &u, delta("1.50", "1.50"), &[]).await,
            UsageWrite::Written
        ));
    }
    let (ent, _, records) = store.load_ledger(&t, &e.id).await.expect("load").expect("stored");
    let mut expected: Vec<&str> = events.to_vec();
    expected.sort_by_key(|id| hex::encode(Sha256::digest(id.as_bytes())));
    assert_eq!(
        records.iter().map(|r| r.event_id.as_str()).collect::<Vec<_>>(),
        expected
    );
    assert_eq!(records[0].amount.to_string(), "1.5", "numbers read back normalised");
    // A sum's scale is not part of the contract: DynamoDB Local keeps the operands' ("6.00"),
    // DynamoDB and the memory store trim it ("6").
    assert_eq!(ent.usage_in_period, dec("6"));
    assert_eq!(store.get_usage(&t, &e.id, "evt-z").await.expect("get"), None);
    assert!(store
        .load_ledger(&t, &EntitlementId::generate())
        .await
        .expect("load")
        .is_none());
}
