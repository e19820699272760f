//! The contract of the credit plans port ([`crate::plans::PlanStore`]).
use super::{cancel, claim, entitlement, grant, ids, plan, sorted, stored_entitlement, tenant};
use crate::model::{Entitlement, Grant};
use crate::plans::{CreditPlan, Expiration, PlanScope, PlanStatus, Recurrence};
use crate::ports::{InsertOutcome, PlanApply, Store};
use crate::{EntitlementId, TenantId};
use std::collections::BTreeMap;

/// Credit plans: claimed inserts, reads, listing in id order, and replacement at a version.
pub async fn credit_plans_claims_listing_and_versions(store: &dyn Store, prefix: &str) {
    let (t, other) = (tenant(prefix, "a"), tenant(prefix, "b"));
    let p1 = plan(&t, PlanScope::Subscription, "sub_1", PlanStatus::Published);
    let k1 = claim("creditplan", "k", &p1.id, "100");
    assert!(matches!(
        store.insert_credit_plan(&p1, Some(&k1)).await.expect("insert"),
        InsertOutcome::Inserted
    ));
    let p2 = plan(&t, PlanScope::Subscription, "sub_2", PlanStatus::Published);
    match store
        .insert_credit_plan(&p2, Some(&claim("creditplan", "k", &p2.id, "200")))
        .await
        .expect("insert")
    {
        InsertOutcome::ClaimExists(stored) => assert_eq!(stored, k1),
        other => panic!("expected the first claim, got {other:?}"),
    }
    assert_eq!(store.get_credit_plan(&t, &p2.id).await.expect("get"), None);
    let mut p3 = plan(&t, PlanScope::Plan, "pro", PlanStatus::Published);
    p3.recurrence = Recurrence::Once;
    p3.expiration = Expiration::BillingCycle;
    p3.priority = None;
    p3.end_date = None;
    p3.currency = None;
    p3.conversion_rate = None;
    p3.metadata = BTreeMap::new();
    let mut p4 = plan(&t, PlanScope::Plan, "pro", PlanStatus::Published);
    p4.expiration = Expiration::Never;
    for p in [&p3, &p4] {
        assert!(matches!(
            store.insert_credit_plan(p, None).await.expect("insert"),
            InsertOutcome::Inserted
        ));
    }
    for p in [&p1, &p3, &p4] {
        assert_eq!(store.get_credit_plan(&t, &p.id).await.expect("get").as_ref(), Some(p));
    }
    assert_eq!(store.get_credit_plan(&other, &p1.id).await.expect("get"), None);
    let mut all = vec![p1.clone(), p3.clone(), p4.clone()];
    all.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(store.list_credit_plans(&t).await.expect("list"), all);
    assert!(store.list_credit_plans(&other).await.expect("list").is_empty());

    let renamed = CreditPlan {
        name: "Renamed".to_owned(),
        version: 1,
        ..p1.clone()
    };
    assert!(!store.replace_credit_plan(&renamed, 1).await.expect("replace"));
    assert_eq!(store.get_credit_plan(&t, &p1.id).await.expect("get"), Some(p1.clone()));
    assert!(store.replace_credit_plan(&renamed, 0).await.expect("replace"));
    assert_eq!(
        store.get_credit_plan(&t, &p1.id).await.expect("get"),
        Some(renamed.clone())
    );
    assert!(!store.replace_credit_plan(&renamed, 0).await.expect("replace"));
    let missing = plan(&t, PlanScope::Plan, "x", PlanStatus::Published);
    assert!(!store.replace_credit_plan(&missing, 0).await.expect("replace"));
    assert_eq!(store.get_credit_plan(&t, &missing.id).await.expect("get"), None);
}

/// The scheduler's index: every tenant's published plans; archiving one takes it out.
pub async fn active_credit_plans_are_the_published_ones(store: &dyn Store, prefix: &str) {
    let (t, other) = (tenant(prefix, "a"), tenant(prefix, "b"));
    let published = [
        plan(&t, PlanScope::Plan, "pro", PlanStatus::Published),
        plan(&t, PlanScope::Plan, "pro", PlanStatus::Published),
    ];
    let archived = plan(&t, PlanScope::Plan, "pro", PlanStatus::Archived);
    let to_archive = plan(&t, PlanScope::Plan, "pro", PlanStatus::Published);
    let elsewhere = plan(&other, PlanScope::Plan, "pro", PlanStatus::Published);
    for p in published.iter().chain([&archived, &to_archive, &elsewhere]) {
        assert!(matches!(
            store.insert_credit_plan(p, None).await.expect("insert"),
            InsertOutcome::Inserted
        ));
    }
    let gone = CreditPlan {
        status: PlanStatus::Archived,
        version: 1,
        ..to_archive.clone()
    };
    assert!(store.replace_credit_plan(&gone, 0).await.expect("replace"));
    let active = store.active_credit_plans().await.expect("active");
    let mine: Vec<&CreditPlan> = active.iter().filter(|p| p.tenant == t).collect();
    let mut expected: Vec<&CreditPlan> = published.iter().collect();
    expected.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(mine, expected);
    assert!(active.contains(&elsewhere));
}

async fn in_scope(store: &dyn Store, t: &TenantId, scope: PlanScope, id: &str) -> Vec<EntitlementId> {
    let found = store.entitlements_in_scope(t, scope, id).await.expect("in scope");
    ids(&found, |e| &e.id)
}

/// The entitlements a plan's scope reaches: by subscription id or plan id, whatever their status,
/// in id order.
pub async fn entitlements_in_scope_by_subscription_or_plan(store: &dyn Store, prefix: &str) {
    let (t, other) = (tenant(prefix, "a"), tenant(prefix, "b"));
    let with = |t: &TenantId, sub: Option<&str>, plan_id: Option<&str>| {
        let mut e = entitlement(t, "c");
        e.subscription_id = sub.map(str::to_owned);
        e.plan_id = plan_id.map(str::to_owned);
        e
    };
    let both = with(&t, Some("sub_1"), Some("pro"));
    let sub_only = with(&t, Some("sub_1"), None);
    let plan_canceled = with(&t, None, Some("pro"));
    let sub2 = with(&t, Some("sub_2"), None);
    let foreign = with(&other, Some("sub_1"), Some("pro"));
    for e in [&both, &sub_only, &plan_canceled, &sub2, &foreign] {
        store.put_entitlement(e).await.expect("put");
    }
    cancel(store, &plan_canceled).await;
    assert_eq!(
        in_scope(store, &t, PlanScope::Subscription, "sub_1").await,
        sorted(vec![both.id.clone(), sub_only.id.clone()])
    );
    assert_eq!(
        in_scope(store, &t, PlanScope::Plan, "pro").await,
        sorted(vec![both.id.clone(), plan_canceled.id.clone()])
    );
    assert_eq!(
        in_scope(store, &t, PlanScope::Subscription, "sub_2").await,
        vec![sub2.id.clone()]
    );
    assert!(in_scope(store, &t, PlanScope::Plan, "sub_1").await.is_empty());
}

async fn progress(store: &dyn Store, e: &Entitlement, plan_id: &str) -> u64 {
    store.plan_progress(&e.tenant, &e.id, plan_id).await.expect("progress")
}

async fn apply(store: &dyn Store, plan_id: &str, g: &Grant, expected: u64, next: u64) -> PlanApply {
    store
        .apply_plan_period(g, plan_id, expected, next)
        .await
        .expect("apply")
}

/// `apply_plan_period` writes the grant and advances the plan's progress on the entitlement from
/// `expected` to `next`, together: Moved (nothing written) when the progress is elsewhere,
/// EntitlementInactive when the entitlement is missing or not active (checked first).
pub async fn apply_plan_period_advances_progress_once(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let e = stored_entitlement(store, &t, "c").await;
    let plan_id = "cgrant_contract";
    assert_eq!(progress(store, &e, plan_id).await, 0);
    let g0 = grant(&e, "100");
    assert_eq!(apply(store, plan_id, &g0, 0, 1).await, PlanApply::Applied);
    assert_eq!(progress(store, &e, plan_id).await, 1);
    assert_eq!(store.get_grant(&t, &e.id, &g0.id).await.expect("get"), Some(g0.clone()));
    let late = grant(&e, "100");
    assert_eq!(
        apply(store, plan_id, &late, 0, 1).await,
        PlanApply::Moved,
        "another run applied period 0"
    );
    assert_eq!(store.get_grant(&t, &e.id, &late.id).await.expect("get"), None);
    assert_eq!(apply(store, plan_id, &late, 2, 3).await, PlanApply::Moved);
    assert_eq!(
        apply(store, plan_id, &g0, 1, 2).await,
        PlanApply::Moved,
        "the grant exists"
    );
    assert_eq!(progress(store, &e, plan_id).await, 1);
    let g1 = grant(&e, "100");
    assert_eq!(apply(store, plan_id, &g1, 1, 2).await, PlanApply::Applied);
    assert_eq!(progress(store, &e, plan_id).await, 2);
    assert_eq!(progress(store, &e, "cgrant_other").await, 0, "progress is per plan");
    assert_eq!(store.list_grants(&t, &e.id).await.expect("list").len(), 2);

    let canceled = stored_entitlement(store, &t, "c").await;
    cancel(store, &canceled).await;
    let g = grant(&canceled, "100");
    assert_eq!(apply(store, plan_id, &g, 0, 1).await, PlanApply::EntitlementInactive);
    assert_eq!(
        apply(store, plan_id, &g, 5, 6).await,
        PlanApply::EntitlementInactive,
        "checked first"
    );
    assert_eq!(progress(store, &canceled, plan_id).await, 0);
    assert_eq!(store.get_grant(&t, &canceled.id, &g.id).await.expect("get"), None);
    let mut orphan = grant(&e, "100");
    orphan.entitlement_id = EntitlementId::generate();
    assert_eq!(
        apply(store, plan_id, &orphan, 0, 1).await,
        PlanApply::EntitlementInactive
    );
}
