//! The contract of the capacity grants port ([`crate::capacity::CapacityStore`]).
use super::{after, capacity, claim, plan, tenant, ts, START};
use crate::capacity::CapacityGrant;
use crate::plans::{PlanScope, PlanStatus};
use crate::ports::{InsertOutcome, Store};
use crate::CapacityGrantId;

/// Capacity grants: claimed inserts (a tenant-level claim), reads, and listing in id order.
pub async fn capacity_grants_claims_and_listing(store: &dyn Store, prefix: &str) {
    let (t, other) = (tenant(prefix, "a"), tenant(prefix, "b"));
    let c1 = capacity(&t, 10);
    let k1 = claim("capacity", "k", c1.fid.as_str(), "10");
    assert!(matches!(
        store.insert_capacity_grant(&c1, Some(&k1)).await.expect("insert"),
        InsertOutcome::Inserted
    ));
    let c2 = capacity(&t, 20);
    match store
        .insert_capacity_grant(&c2, Some(&claim("capacity", "k", c2.fid.as_str(), "20")))
        .await
        .expect("insert")
    {
        InsertOutcome::ClaimExists(stored) => assert_eq!(stored, k1),
        other => panic!("expected the first claim, got {other:?}"),
    }
    assert_eq!(store.get_capacity_grant(&t, &c2.fid).await.expect("get"), None);
    let c3 = capacity(&t, 30);
    assert!(matches!(
        store.insert_capacity_grant(&c3, None).await.expect("insert"),
        InsertOutcome::Inserted
    ));
    assert_eq!(
        store.get_capacity_grant(&t, &c1.fid).await.expect("get"),
        Some(c1.clone())
    );
    assert_eq!(
        store
            .get_capacity_grant(&t, &c1.fid)
            .await
            .expect("get")
            .map(|g| g.unit_price.as_str().to_owned()),
        Some("1.50".to_owned()),
        "prices are kept as written"
    );
    assert_eq!(store.get_capacity_grant(&other, &c1.fid).await.expect("get"), None);
    let mut both = vec![c1.clone(), c3.clone()];
    both.sort_by(|a, b| a.fid.cmp(&b.fid));
    assert_eq!(store.list_capacity_grants(&t).await.expect("list"), both);
    assert!(store.list_capacity_grants(&other).await.expect("list").is_empty());
    // The same key in another scope of the tenant (a credit plan's) is another claim.
    let p = plan(&t, PlanScope::Plan, "pro", PlanStatus::Published);
    assert!(matches!(
        store
            .insert_credit_plan(&p, Some(&claim("creditplan", "k", &p.id, "1")))
            .await
            .expect("insert"),
        InsertOutcome::Inserted
    ));
}

/// `delete_capacity_grant` sets `deleted_at` once (bumping the version).
pub async fn capacity_delete_is_idempotent(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let c = capacity(&t, 10);
    assert!(matches!(
        store.insert_capacity_grant(&c, None).await.expect("insert"),
        InsertOutcome::Inserted
    ));
    let (t1, t2) = (after(ts(START), 10), after(ts(START), 20));
    let expected = CapacityGrant {
        deleted_at: Some(t1),
        version: 1,
        ..c.clone()
    };
    assert_eq!(
        store.delete_capacity_grant(&t, &c.fid, t1).await.expect("delete"),
        Some(expected.clone())
    );
    assert_eq!(
        store.delete_capacity_grant(&t, &c.fid, t2).await.expect("delete"),
        Some(expected.clone())
    );
    assert_eq!(store.get_capacity_grant(&t, &c.fid).await.expect("get"), Some(expected));
    assert_eq!(
        store
            .delete_capacity_grant(&t, &CapacityGrantId::generate(), t1)
            .await
            .expect("delete"),
        None
    );
}

/// `resell_capacity_grant` replaces the old grant only at the version read and while not deleted,
/// and creates the new one, together.
pub async fn capacity_resell_checks_version_and_deletion(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let old = capacity(&t, 10);
    assert!(matches!(
        store.insert_capacity_grant(&old, None).await.expect("insert"),
        InsertOutcome::Inserted
    ));
    let resell = |old: &CapacityGrant, quantity: u64| {
        let new = CapacityGrant {
            fid: CapacityGrantId::generate(),
            quantity,
            starts_at: after(ts(START), 3600),
            resold_from: Some(old.fid.clone()),
            ..old.clone()
        };
        let retired = CapacityGrant {
            deleted_at: Some(new.starts_at),
            resold_to: Some(new.fid.clone()),
            version: old.version + 1,
            ..old.clone()
        };
        (retired, new)
    };
    let (retired, new) = resell(&old, 4);
    assert!(!store.resell_capacity_grant(&retired, 1, &new).await.expect("resell"));
    assert_eq!(store.get_capacity_grant(&t, &new.fid).await.expect("get"), None);
    assert_eq!(
        store.get_capacity_grant(&t, &old.fid).await.expect("get"),
        Some(old.clone())
    );
    assert!(store.resell_capacity_grant(&retired, 0, &new).await.expect("resell"));
    assert_eq!(
        store.get_capacity_grant(&t, &old.fid).await.expect("get"),
        Some(retired.clone())
    );
    assert_eq!(
        store.get_capacity_grant(&t, &new.fid).await.expect("get"),
        Some(new.clone())
    );
    // Deleted (as a resell leaves it): refused even at its version.
    let (again, newer) = resell(&retired, 2);
    assert!(!store
        .resell_capacity_grant(&again, retired.version, &newer)
        .await
        .expect("resell"));
    assert_eq!(store.get_capacity_grant(&t, &newer.fid).await.expect("get"), None);
    let gone = capacity(&t, 10);
    assert!(matches!(
        store.insert_capacity_grant(&gone, None).await.expect("insert"),
        InsertOutcome::Inserted
    ));
    let deleted = store
        .delete_capacity_grant(&t, &gone.fid, ts(START))
        .await
        .expect("delete")
        .expect("exists");
    let (r, n) = resell(&deleted, 5);
    assert!(!store
        .resell_capacity_grant(&r, deleted.version, &n)
        .await
        .expect("resell"));
    let missing = capacity(&t, 10);
    let (r, n) = resell(&missing, 5);
    assert!(!store.resell_capacity_grant(&r, 0, &n).await.expect("resell"));
    assert_eq!(store.get_capacity_grant(&t, &r.fid).await.expect("get"), None);
}
