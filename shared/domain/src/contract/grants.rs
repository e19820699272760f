//! The contract of the grants port ([`crate::grants::GrantStore`]).
use super::{after, cancel, claim, dec, grant, ids, sorted, stored_entitlement, stored_grant, tenant, ts, START};
use crate::grants::GrantEdit;
use crate::model::{Entitlement, EntitlementStatus, Grant, GrantDetails};
use crate::ports::{EditOutcome, InsertOutcome, Store, StoreError};
use crate::{EntitlementId, GrantId, NonNegative, Priority, TenantId, Timestamp};
use std::collections::BTreeMap;

/// Grants read back exactly, with the entitlement and in id order; each is in its own entitlement's
/// partition.
pub async fn grants_round_trip_in_id_order(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let (e1, e2) = (
        stored_entitlement(store, &t, "c").await,
        stored_entitlement(store, &t, "c").await,
    );
    let mut full = grant(&e1, "100.5");
    full.remaining = dec("7.50");
    full.reserved = dec("2.50");
    full.expires_at = Some(ts("2030-06-01T00:00:00Z"));
    full.priority = Some(Priority::new(dec("0.5")).expect("priority"));
    full.reset_max_rollover = Some(NonNegative::new(dec("50")).expect("bound"));
    full.reset_min_rollover = Some(NonNegative::new(dec("0")).expect("bound"));
    full.recurrence_period = Some("P1M".to_owned());
    full.idempotency_key = Some("key 1".to_owned());
    full.last_used_at = Some(ts("2030-01-02T03:04:05.678901Z"));
    full.version = 3;
    full.credit_type_id = Some("ct_x".to_owned());
    full.details = GrantDetails {
        name: Some("Welcome".to_owned()),
        reason: Some("promo".to_owned()),
        credit_grant_type: Some("PAID".to_owned()),
        custom_fields: BTreeMap::from([("a".to_owned(), "1".to_owned())]),
        paid_amount: Some(dec("10.00")),
        paid_credit_type_id: Some("ct_usd".to_owned()),
        product_ids: vec!["p1".to_owned(), "p2".to_owned()],
        uniqueness_key: Some("u1".to_owned()),
        invoice_id: Some("inv_1".to_owned()),
    };
    let made = [full.clone(), grant(&e1, "1"), grant(&e1, "2")];
    for g in made.iter().rev() {
        assert!(matches!(
            store.insert_grant(g, None, None).await.expect("insert"),
            InsertOutcome::Inserted
        ));
    }
    let elsewhere = stored_grant(store, &e2, "3").await;
    let read = store
        .get_grant(&t, &e1.id, &full.id)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(read, full);
    assert_eq!(
        (
            read.remaining.to_string(),
            read.details.paid_amount.map(|d| d.to_string())
        ),
        ("7.5".to_owned(), Some("10".to_owned())),
        "numbers read back normalised"
    );
    let expected = sorted(ids(&made, |g| &g.id));
    let (_, loaded) = store.load_entitlement(&t, &e1.id).await.expect("load").expect("stored");
    assert_eq!(ids(&loaded, |g| &g.id), expected);
    let listed = store.list_grants(&t, &e1.id).await.expect("list");
    assert_eq!(listed, loaded);
    assert_eq!(store.get_grant(&t, &e1.id, &elsewhere.id).await.expect("get"), None);
    assert_eq!(
        store.get_grant(&t, &e2.id, &elsewhere.id).await.expect("get"),
        Some(elsewhere)
    );
    assert!(store
        .list_grants(&t, &EntitlementId::generate())
        .await
        .expect("list")
        .is_empty());
}

/// A second insert with a claim that exists writes nothing and returns the stored claim. Claims are
/// per entitlement and scope.
pub async fn insert_grant_with_an_existing_claim_returns_it(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let (e, e2) = (
        stored_entitlement(store, &t, "c").await,
        stored_entitlement(store, &t, "c").await,
    );
    let g1 = grant(&e, "10");
    let c1 = claim("grant", "k", g1.id.as_str(), "10");
    assert!(matches!(
        store.insert_grant(&g1, Some(&c1), None).await.expect("insert"),
        InsertOutcome::Inserted
    ));
    let g2 = grant(&e, "20");
    let c2 = claim("grant", "k", g2.id.as_str(), "20");
    match store.insert_grant(&g2, Some(&c2), None).await.expect("insert") {
        InsertOutcome::ClaimExists(stored) => assert_eq!(stored, c1),
        other => panic!("expected the first claim, got {other:?}"),
    }
    assert_eq!(store.get_grant(&t, &e.id, &g2.id).await.expect("get"), None);
    assert_eq!(
        ids(&store.list_grants(&t, &e.id).await.expect("list"), |g| &g.id),
        vec![g1.id.clone()]
    );
    // A grant id that exists (with a new claim) is an error, and writes nothing.
    let collision = claim("grant", "other key", g1.id.as_str(), "10");
    assert!(store.insert_grant(&g1, Some(&collision), None).await.is_err());
    let after_collision = grant(&e, "1");
    assert!(
        matches!(
            store
                .insert_grant(&after_collision, Some(&collision), None)
                .await
                .expect("insert"),
            InsertOutcome::Inserted
        ),
        "the colliding insert's claim was not written"
    );
    // Another scope, or another entitlement: another claim.
    let g3 = grant(&e, "30");
    assert!(matches!(
        store
            .insert_grant(&g3, Some(&claim("metronome", "k", g3.id.as_str(), "30")), None)
            .await
            .expect("insert"),
        InsertOutcome::Inserted
    ));
    let g4 = grant(&e2, "40");
    assert!(matches!(
        store
            .insert_grant(&g4, Some(&claim("grant", "k", g4.id.as_str(), "40")), None)
            .await
            .expect("insert"),
        InsertOutcome::Inserted
    ));
}

/// A grant needs its entitlement to exist and be active; refused, nothing is written (not the claim
/// either).
pub async fn insert_grant_needs_an_active_entitlement(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let e = stored_entitlement(store, &t, "c").await;
    cancel(store, &e).await;
    let g = grant(&e, "10");
    let c = claim("grant", "k", g.id.as_str(), "10");
    assert!(matches!(
        store.insert_grant(&g, Some(&c), None).await.expect("insert"),
        InsertOutcome::ParentUnavailable
    ));
    assert_eq!(store.get_grant(&t, &e.id, &g.id).await.expect("get"), None);
    let mut orphan = grant(&e, "10");
    orphan.entitlement_id = EntitlementId::generate();
    assert!(matches!(
        store.insert_grant(&orphan, None, None).await.expect("insert"),
        InsertOutcome::ParentUnavailable
    ));
    assert_eq!(store.find_grant(&t, &orphan.id).await.expect("find"), None);
    // The refused claim was not written: once active again, the same claim is new.
    store
        .set_entitlement_status(&t, &e.id, EntitlementStatus::Active, ts(START))
        .await
        .expect("set")
        .expect("exists");
    assert!(matches!(
        store.insert_grant(&g, Some(&c), None).await.expect("insert"),
        InsertOutcome::Inserted
    ));
}

/// The claim decides before the entitlement's status: a replay is answered after a cancellation.
pub async fn insert_grant_claim_decides_before_the_entitlement(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let e = stored_entitlement(store, &t, "c").await;
    let g1 = grant(&e, "10");
    let c1 = claim("grant", "k", g1.id.as_str(), "10");
    assert!(matches!(
        store.insert_grant(&g1, Some(&c1), None).await.expect("insert"),
        InsertOutcome::Inserted
    ));
    cancel(store, &e).await;
    let g2 = grant(&e, "10");
    match store
        .insert_grant(&g2, Some(&claim("grant", "k", g2.id.as_str(), "10")), None)
        .await
        .expect("insert")
    {
        InsertOutcome::ClaimExists(stored) => assert_eq!(stored, c1),
        other => panic!("expected the first claim, got {other:?}"),
    }
}

/// With `period_start`, the insert is conditional on the entitlement's period still starting then.
pub async fn insert_grant_checks_the_period_start(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let e = stored_entitlement(store, &t, "c").await;
    let g1 = grant(&e, "1");
    assert!(matches!(
        store
            .insert_grant(&g1, None, Some(e.current_period_start))
            .await
            .expect("insert"),
        InsertOutcome::Inserted
    ));
    let g2 = grant(&e, "2");
    let c2 = claim("grant", "p", g2.id.as_str(), "2");
    assert!(matches!(
        store
            .insert_grant(&g2, Some(&c2), Some(after(e.current_period_start, 86_400)))
            .await
            .expect("insert"),
        InsertOutcome::ParentUnavailable
    ));
    assert_eq!(store.get_grant(&t, &e.id, &g2.id).await.expect("get"), None);
    assert!(matches!(
        store.insert_grant(&g2, Some(&c2), None).await.expect("insert"),
        InsertOutcome::Inserted
    ));
}

/// `find_grant` finds a grant by id among its tenant's only.
pub async fn find_grant_by_id_within_the_tenant(store: &dyn Store, prefix: &str) {
    let (t, other) = (tenant(prefix, "a"), tenant(prefix, "b"));
    let e = stored_entitlement(store, &t, "c").await;
    let g = stored_grant(store, &e, "5").await;
    assert_eq!(store.find_grant(&t, &g.id).await.expect("find"), Some(g.clone()));
    assert_eq!(store.find_grant(&other, &g.id).await.expect("find"), None);
    assert_eq!(store.find_grant(&t, &GrantId::generate()).await.expect("find"), None);
}

async fn walk(store: &dyn Store, t: &TenantId, customer: Option<&str>, limit: usize) -> Vec<GrantId> {
    let mut seen: Vec<GrantId> = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..50 {
        let (batch, exhausted) = store
            .grants_after(t, customer, cursor.as_deref(), limit)
            .await
            .expect("grants_after");
        assert!(batch.len() <= limit, "at most the limit");
        for g in &batch {
            assert!(
                cursor.as_deref().is_none_or(|c| g.id.as_str() > c),
                "after the cursor, in id order"
            );
            assert!(customer.is_none_or(|c| g.customer_id == c));
            cursor = Some(g.id.as_str().to_owned());
            seen.push(g.id.clone());
        }
        if exhausted || batch.is_empty() {
            return seen;
        }
    }
    panic!("grants_after did not end");
}

/// `grants_after` pages through the tenant's (or a customer's) grants in id order.
pub async fn grants_after_pages_in_id_order(store: &dyn Store, prefix: &str) {
    let (t, other) = (tenant(prefix, "a"), tenant(prefix, "b"));
    let (e1, e2) = (
        stored_entitlement(store, &t, "c1").await,
        stored_entitlement(store, &t, "c2").await,
    );
    let mut c1 = Vec::new();
    let mut all = Vec::new();
    for (e, n) in [(&e1, 3), (&e2, 2)] {
        for _ in 0..n {
            let g = stored_grant(store, e, "1").await;
            if e.id == e1.id {
                c1.push(g.id.clone());
            }
            all.push(g.id);
        }
    }
    let (all, c1) = (sorted(all), sorted(c1));
    for limit in [1, 2, 3, 10] {
        assert_eq!(walk(store, &t, None, limit).await, all, "tenant-wide, limit {limit}");
    }
    for limit in [2, 3, 10] {
        assert_eq!(
            walk(store, &t, Some("c1"), limit).await,
            c1,
            "one customer, limit {limit}"
        );
    }
    let (page, exhausted) = store.grants_after(&t, None, None, 6).await.expect("grants_after");
    assert_eq!((ids(&page, |g| &g.id), exhausted), (all.clone(), true));
    // A read that stops at its limit says "maybe more", even when nothing follows.
    let (page, exhausted) = store.grants_after(&t, None, None, 5).await.expect("grants_after");
    assert_eq!((ids(&page, |g| &g.id), exhausted), (all.clone(), false));
    // The customer index reads from the cursor itself: its grant counts toward the limit.
    let (page, exhausted) = store
        .grants_after(&t, Some("c1"), Some(c1[0].as_str()), 2)
        .await
        .expect("grants_after");
    assert_eq!((ids(&page, |g| &g.id), exhausted), (vec![c1[1].clone()], false));
    let (page, _) = store
        .grants_after(&t, None, Some(all[1].as_str()), 2)
        .await
        .expect("grants_after");
    assert_eq!(ids(&page, |g| &g.id), all[2..4].to_vec());
    let (page, exhausted) = store
        .grants_after(&t, Some("c2"), None, 10)
        .await
        .expect("grants_after");
    assert_eq!((page.len(), exhausted), (2, true));
    assert_eq!(page.iter().find(|g| g.customer_id != "c2"), None);
    let (page, exhausted) = store.grants_after(&other, None, None, 10).await.expect("grants_after");
    assert!(page.is_empty() && exhausted);
    assert!(
        matches!(
            store.grants_after(&t, None, None, 0).await,
            Err(StoreError::Rejected(_))
        ),
        "a limit of 0 is refused"
    );
}

/// `edit_grant` changes the descriptive fields and expiry and bumps the version, unless usage drew on
/// the grant at or after the new expiry (then nothing is written).
pub async fn edit_grant_checks_the_last_use(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let e = stored_entitlement(store, &t, "c").await;
    let used_at = ts("2030-01-10T00:00:00Z");
    let mut g = grant(&e, "10");
    g.last_used_at = Some(used_at);
    g.details.name = Some("old".to_owned());
    assert!(matches!(
        store.insert_grant(&g, None, None).await.expect("insert"),
        InsertOutcome::Inserted
    ));
    let edit = |name, expires_at, kind| grant_edit(&g, name, expires_at, kind);
    let later = after(used_at, 1);
    let edited = match store
        .edit_grant(&t, &edit(Some("new"), Some(later), Some("FREE")))
        .await
        .expect("edit")
    {
        EditOutcome::Edited(g) => *g,
        other => panic!("expected an edit, got {other:?}"),
    };
    let mut expected = g.clone();
    expected.details.name = Some("new".to_owned());
    expected.details.credit_grant_type = Some("FREE".to_owned());
    expected.expires_at = Some(later);
    expected.version = 1;
    assert_eq!(edited, expected);
    assert_eq!(
        store.get_grant(&t, &e.id, &g.id).await.expect("get"),
        Some(expected.clone())
    );
    for expires in [used_at, after(used_at, -3600)] {
        match store
            .edit_grant(&t, &edit(Some("x"), Some(expires), None))
            .await
            .expect("edit")
        {
            EditOutcome::UsedAfterExpiry(at) => assert_eq!(at, used_at),
            other => panic!("expected UsedAfterExpiry, got {other:?}"),
        }
    }
    assert_eq!(
        store.get_grant(&t, &e.id, &g.id).await.expect("get"),
        Some(expected.clone()),
        "nothing written"
    );
    edit_grant_after_the_refusals(store, &e, &expected).await;
}

/// An edit of `g`'s entitlement and id.
fn grant_edit(g: &Grant, name: Option<&str>, expires_at: Option<Timestamp>, kind: Option<&str>) -> GrantEdit {
    GrantEdit {
        entitlement_id: g.entitlement_id.clone(),
        id: g.id.clone(),
        name: name.map(str::to_owned),
        expires_at,
        credit_grant_type: kind.map(str::to_owned),
    }
}

/// The rest of [`edit_grant_checks_the_last_use`], on its grant as stored (`expected`): an edit
/// without changes still bumps the version; unknown ids and entitlements are Missing; an expiry
/// before `START` is accepted on a grant never used.
async fn edit_grant_after_the_refusals(store: &dyn Store, e: &Entitlement, expected: &Grant) {
    let t = &e.tenant;
    let edit = |name, expires_at, kind| grant_edit(expected, name, expires_at, kind);
    match store.edit_grant(t, &edit(None, None, None)).await.expect("edit") {
        EditOutcome::Edited(g) => assert_eq!(
            *g,
            Grant {
                version: 2,
                ..expected.clone()
            }
        ),
        other => panic!("expected an edit, got {other:?}"),
    }
    let missing = GrantEdit {
        id: GrantId::generate(),
        ..edit(Some("x"), None, None)
    };
    assert!(matches!(
        store.edit_grant(t, &missing).await.expect("edit"),
        EditOutcome::Missing
    ));
    let elsewhere = GrantEdit {
        entitlement_id: EntitlementId::generate(),
        ..edit(Some("x"), None, None)
    };
    assert!(matches!(
        store.edit_grant(t, &elsewhere).await.expect("edit"),
        EditOutcome::Missing
    ));
    let unused = stored_grant(store, e, "1").await;
    let early = GrantEdit {
        id: unused.id.clone(),
        ..edit(None, Some(after(ts(START), 1)), None)
    };
    assert!(matches!(
        store.edit_grant(t, &early).await.expect("edit"),
        EditOutcome::Edited(_)
    ));
}

/// `release_claim` deletes one claim of one entitlement, so its key can be used again.
pub async fn release_claim_frees_the_key(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let (e, e2) = (
        stored_entitlement(store, &t, "c").await,
        stored_entitlement(store, &t, "c").await,
    );
    let g1 = grant(&e, "1");
    let c1 = claim("metronome", "u", g1.id.as_str(), "1");
    assert!(matches!(
        store.insert_grant(&g1, Some(&c1), None).await.expect("insert"),
        InsertOutcome::Inserted
    ));
    store
        .release_claim(&t, &e2.id, "metronome", "u")
        .await
        .expect("release elsewhere");
    store
        .release_claim(&t, &e.id, "grant", "u")
        .await
        .expect("release another scope");
    let g2 = grant(&e, "1");
    let c2 = claim("metronome", "u", g2.id.as_str(), "1");
    assert!(matches!(
        store.insert_grant(&g2, Some(&c2), None).await.expect("insert"),
        InsertOutcome::ClaimExists(_)
    ));
    store.release_claim(&t, &e.id, "metronome", "u").await.expect("release");
    assert!(matches!(
        store.insert_grant(&g2, Some(&c2), None).await.expect("insert"),
        InsertOutcome::Inserted
    ));
    store
        .release_claim(&t, &e.id, "metronome", "never claimed")
        .await
        .expect("releasing a missing claim is fine");
}

/// `void_grant` sets `voided_at` once (bumping the version); later voids return it unchanged.
pub async fn void_grant_is_idempotent(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let e = stored_entitlement(store, &t, "c").await;
    let g = stored_grant(store, &e, "10").await;
    let (t1, t2) = (after(ts(START), 10), after(ts(START), 20));
    let voided = store
        .void_grant(&t, &e.id, &g.id, t1)
        .await
        .expect("void")
        .expect("exists");
    let expected = Grant {
        voided_at: Some(t1),
        version: 1,
        ..g.clone()
    };
    assert_eq!(voided, expected);
    let again = store
        .void_grant(&t, &e.id, &g.id, t2)
        .await
        .expect("void")
        .expect("exists");
    assert_eq!(again, expected, "voided_at never moves");
    assert_eq!(store.get_grant(&t, &e.id, &g.id).await.expect("get"), Some(expected));
    assert_eq!(
        store
            .void_grant(&t, &e.id, &GrantId::generate(), t1)
            .await
            .expect("void"),
        None
    );
    assert_eq!(
        store
            .void_grant(&t, &EntitlementId::generate(), &g.id, t1)
            .await
            .expect("void"),
        None
    );
}
