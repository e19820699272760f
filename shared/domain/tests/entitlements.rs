//! Entitlements on the in-memory store: defaults at provisioning, balance and access, listings,
//! cancellation.
#![allow(clippy::unwrap_used)]
mod common;

use common::{dec, err, label, new_entitlement, new_grant, ts, World};
use grants_domain::entitlements::{self, NewEntitlement};
use grants_domain::model::EntitlementStatus;
use grants_domain::usage::{self, NewUsage};
use grants_domain::{CreditAmount, EntitlementId};
use rust_decimal::Decimal;
use std::collections::BTreeMap;

#[tokio::test]
async fn provisioning_defaults_to_the_calendar_month_of_now() {
    let w = World::at("2030-01-31T10:00:00Z");
    let e = w.entitlement("cus_1").await;
    assert_eq!(
        (e.current_period_start, e.current_period_end, e.period_anchor),
        (
            ts("2030-01-01T00:00:00Z"),
            ts("2030-02-01T00:00:00Z"),
            ts("2030-01-01T00:00:00Z")
        )
    );
    assert_eq!(e.period_months, Some(1));
    assert_eq!(
        (e.feature_id.as_str(), e.product_id.as_str()),
        ("feat_api_calls", "prod_default")
    );
    assert_eq!(
        (e.status, e.active_from, e.created_at),
        (
            EntitlementStatus::Active,
            ts("2030-01-01T00:00:00Z"),
            ts("2030-01-31T10:00:00Z")
        )
    );
    assert_eq!((e.usage_in_period, e.overage), (Decimal::ZERO, Decimal::ZERO));
    // From the 31st, the default end is the last day of the next month.
    let jan31 = w
        .entitlement_with(NewEntitlement {
            current_period_start: Some(ts("2030-01-31T00:00:00Z")),
            ..new_entitlement("cus_2")
        })
        .await;
    assert_eq!(jan31.current_period_end, ts("2030-02-28T00:00:00Z"));
    let explicit = w
        .entitlement_with(NewEntitlement {
            feature_id: Some(label("feat_x")),
            product_id: Some(label("prod_x")),
            subscription_id: Some(label("sub_1")),
            plan_id: Some(label("pro")),
            metadata: BTreeMap::from([("k".to_owned(), "v".to_owned())]),
            is_soft_limit: true,
            current_period_start: Some(ts("2030-02-01T00:00:00Z")),
            current_period_end: Some(ts("2030-02-11T00:00:00Z")),
            ..new_entitlement("cus_3")
        })
        .await;
    assert_eq!(explicit.period_months, None, "not whole months");
    assert_eq!(
        explicit.active_from,
        ts("2030-01-31T10:00:00Z"),
        "now, when the period starts later"
    );
    assert_eq!(
        (explicit.subscription_id.as_deref(), explicit.plan_id.as_deref()),
        (Some("sub_1"), Some("pro"))
    );
    let read = entitlements::get_entitlement(&w.store, &w.clock, &w.tenant, &explicit.id)
        .await
        .unwrap();
    assert_eq!(read.entitlement, explicit);
}

#[tokio::test]
async fn access_needs_an_active_entitlement_in_its_window_and_a_balance_unless_the_limit_is_soft() {
    let w = World::at("2030-03-14T10:00:00Z");
    let hard = w.entitlement("cus_1").await;
    let soft = w
        .entitlement_with(NewEntitlement {
            is_soft_limit: true,
            ..new_entitlement("cus_1")
        })
        .await;
    let view = |id: EntitlementId| {
        let w = &w;
        async move {
            entitlements::get_entitlement(&w.store, &w.clock, &w.tenant, &id)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        (
            view(hard.id.clone()).await.balance,
            view(hard.id.clone()).await.has_access
        ),
        (Decimal::ZERO, false)
    );
    assert!(view(soft.id.clone()).await.has_access, "a soft limit needs no balance");
    w.grant(new_grant(&hard.id, "5", "g")).await;
    let v = view(hard.id.clone()).await;
    assert_eq!((v.balance, v.has_access), (dec("5"), true));
    usage::record_usage(
        &w.store,
        &w.clock,
        &w.tenant,
        NewUsage {
            entitlement_id: hard.id.clone(),
            event_id: label("evt-1"),
            amount: CreditAmount::parse("7").unwrap(),
            occurred_at: None,
            pending: false,
        },
    )
    .await
    .unwrap();
    let v = view(hard.id.clone()).await;
    assert_eq!(
        (v.balance, v.has_access),
        (dec("-2"), false),
        "overage counts against the balance"
    );

    w.clock.advance(60);
    let canceled = entitlements::cancel_entitlement(&w.store, &w.clock, &w.tenant, &soft.id)
        .await
        .unwrap();
    assert_eq!(canceled.entitlement.status, EntitlementStatus::Canceled);
    assert_eq!(canceled.entitlement.active_to, Some(ts("2030-03-14T10:01:00Z")));
    assert!(!canceled.has_access);
    w.clock.advance(60);
    let again = entitlements::cancel_entitlement(&w.store, &w.clock, &w.tenant, &soft.id)
        .await
        .unwrap();
    assert_eq!(
        again.entitlement.active_to,
        Some(ts("2030-03-14T10:01:00Z")),
        "idempotent"
    );
    assert_eq!(
        err(entitlements::cancel_entitlement(&w.store, &w.clock, &w.tenant, &EntitlementId::generate()).await),
        "NotFound"
    );
    assert_eq!(
        err(entitlements::get_entitlement(&w.store, &w.clock, &w.tenant, &EntitlementId::generate()).await),
        "NotFound"
    );
}

#[tokio::test]
async fn listings_page_oldest_first_optionally_by_customer() {
    let w = World::at("2030-03-14T10:00:00Z");
    let mut made = Vec::new();
    for customer in ["a", "b", "a", "c"] {
        made.push(w.entitlement(customer).await);
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    w.grant(new_grant(&made[2].id, "3", "g")).await;
    let page = entitlements::list_entitlements(&w.store, &w.clock, &w.tenant, None, 2, 1)
        .await
        .unwrap();
    assert_eq!((page.total, page.limit, page.offset), (4, 2, 1));
    let ids: Vec<EntitlementId> = page.items.iter().map(|v| v.entitlement.id.clone()).collect();
    assert_eq!(ids, [made[1].id.clone(), made[2].id.clone()]);
    assert_eq!(page.items[1].balance, dec("3"), "with balances");
    let a = entitlements::list_entitlements(&w.store, &w.clock, &w.tenant, Some("a"), 10, 0)
        .await
        .unwrap();
    assert_eq!(a.total, 2);
    let other = grants_domain::TenantId::parse("other").unwrap();
    let none = entitlements::list_entitlements(&w.store, &w.clock, &other, None, 10, 0)
        .await
        .unwrap();
    assert_eq!(none.total, 0);
}
