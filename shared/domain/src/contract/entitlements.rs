//! The contract of the entitlements port ([`crate::entitlement_store::EntitlementStore`]).
use super::{after, dec, entitlement, ids, sorted, stored_entitlement, tenant, ts, START};
use crate::model::{Entitlement, EntitlementStatus};
use crate::ports::Store;
use crate::EntitlementId;
use std::collections::BTreeMap;

/// An entitlement reads back exactly as written, is written once, and is its tenant's only.
pub async fn entitlements_round_trip_and_are_written_once(store: &dyn Store, prefix: &str) {
    let (t, other) = (tenant(prefix, "a"), tenant(prefix, "b"));
    let mut e = entitlement(&t, "cus 1/é");
    e.subscription_id = Some("sub_1".to_owned());
    e.plan_id = Some("pro".to_owned());
    e.metadata = BTreeMap::from([
        ("tier".to_owned(), "gold".to_owned()),
        ("empty".to_owned(), String::new()),
    ]);
    e.is_soft_limit = true;
    e.pricing_unit_id = Some("ct_tokens".to_owned());
    e.period_months = None;
    e.period_anchor = ts("2029-12-01T00:00:00Z");
    e.active_from = ts("2029-12-15T10:30:00.123456Z");
    e.usage_in_period = dec("12.50");
    e.overage = dec("0.25");
    store.put_entitlement(&e).await.expect("put");
    let read = store.get_entitlement(&t, &e.id).await.expect("get").expect("stored");
    assert_eq!(read, e);
    assert_eq!(read.usage_in_period.to_string(), "12.5", "numbers read back normalised");
    assert_eq!(
        store.load_entitlement(&t, &e.id).await.expect("load"),
        Some((e.clone(), Vec::new()))
    );
    let again = Entitlement {
        customer_id: "someone else".to_owned(),
        ..e.clone()
    };
    assert!(
        store.put_entitlement(&again).await.is_err(),
        "an entitlement is written once"
    );
    assert_eq!(store.get_entitlement(&t, &e.id).await.expect("get"), Some(e.clone()));
    assert_eq!(store.get_entitlement(&other, &e.id).await.expect("get"), None);
    assert_eq!(store.load_entitlement(&other, &e.id).await.expect("load"), None);
    let unknown = EntitlementId::generate();
    assert_eq!(store.get_entitlement(&t, &unknown).await.expect("get"), None);
}

/// The tenant's entitlements list in id order, optionally of one customer.
pub async fn entitlements_list_in_id_order(store: &dyn Store, prefix: &str) {
    let (t, other) = (tenant(prefix, "a"), tenant(prefix, "b"));
    let made = [
        entitlement(&t, "c1"),
        entitlement(&t, "c2"),
        entitlement(&t, "c1"),
        entitlement(&other, "c1"),
    ];
    for e in made.iter().rev() {
        store.put_entitlement(e).await.expect("put");
    }
    let all = store.list_entitlements(&t, None).await.expect("list");
    assert_eq!(
        ids(&all, |e| &e.id),
        sorted(vec![made[0].id.clone(), made[1].id.clone(), made[2].id.clone()])
    );
    let c1 = store.list_entitlements(&t, Some("c1")).await.expect("list");
    assert_eq!(
        ids(&c1, |e| &e.id),
        sorted(vec![made[0].id.clone(), made[2].id.clone()])
    );
    assert_eq!(c1.iter().find(|e| e.id == made[0].id), Some(&made[0]));
    assert!(store
        .list_entitlements(&t, Some("nobody"))
        .await
        .expect("list")
        .is_empty());
    assert_eq!(store.list_entitlements(&other, None).await.expect("list").len(), 1);
}

/// `set_entitlement_status` sets `active_to` once when the status leaves active, clears it when it
/// returns to active, and returns the entitlement as it now is.
pub async fn entitlement_status_changes(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let e = stored_entitlement(store, &t, "c").await;
    let (t1, t2, t3) = (after(ts(START), 10), after(ts(START), 20), after(ts(START), 30));
    let canceled = store
        .set_entitlement_status(&t, &e.id, EntitlementStatus::Canceled, t1)
        .await
        .expect("set")
        .expect("exists");
    assert_eq!(
        (canceled.status, canceled.active_to),
        (EntitlementStatus::Canceled, Some(t1))
    );
    assert_eq!(store.get_entitlement(&t, &e.id).await.expect("get"), Some(canceled));
    let expired = store
        .set_entitlement_status(&t, &e.id, EntitlementStatus::Expired, t2)
        .await
        .expect("set")
        .expect("exists");
    assert_eq!(
        (expired.status, expired.active_to),
        (EntitlementStatus::Expired, Some(t1))
    );
    let active = store
        .set_entitlement_status(&t, &e.id, EntitlementStatus::Active, t3)
        .await
        .expect("set")
        .expect("exists");
    assert_eq!(active, e, "active again, with no active_to");
    let unknown = EntitlementId::generate();
    assert!(store
        .set_entitlement_status(&t, &unknown, EntitlementStatus::Canceled, t1)
        .await
        .expect("set")
        .is_none());
    assert_eq!(store.get_entitlement(&t, &unknown).await.expect("get"), None);
}
