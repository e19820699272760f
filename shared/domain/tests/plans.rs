//! Credit plans (Flexprice credit grants) on the in-memory store, driven across periods by the
//! test clock: applied at once on create, once per period by the scheduled run (doubled runs grant
//! nothing, missed runs catch up, month ends do not drift), scopes reaching entitlements provisioned
//! later (from the period they joined in), end dates, archiving, expiry types, idempotent creates.
#![allow(clippy::unwrap_used)]
mod common;

use common::{credits, err, key, label, new_entitlement, ts, World};
use grants_domain::entitlements::NewEntitlement;
use grants_domain::grants::Created;
use grants_domain::model::{Entitlement, Grant};
use grants_domain::plans::{
    self, CreditPlan, DurationUnit, Expiration, NewCreditPlan, Period, PlanFilter, PlanScope, PlanStatus, PlanUpdate,
    Recurrence,
};
use grants_domain::ports::GrantStore;
use grants_domain::{entitlements, Priority, Timestamp};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn later() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

fn monthly(scope: PlanScope, scope_id: &str) -> NewCreditPlan {
    NewCreditPlan {
        name: label("Included"),
        scope,
        scope_id: label(scope_id),
        credits: credits("100"),
        currency: None,
        recurrence: Recurrence::Every(Period::Monthly, 1),
        expiration: Expiration::After(1, DurationUnit::Month),
        priority: Some(2),
        metadata: BTreeMap::new(),
        start_date: None,
        end_date: None,
        conversion_rate: None,
        idempotency_key: None,
    }
}

async fn create(w: &World, req: NewCreditPlan) -> CreditPlan {
    match plans::create(&w.store, &w.clock, &w.tenant, req).await.unwrap() {
        Created::New(p) => p,
        Created::Replayed(_) => panic!("expected a new plan"),
    }
}

/// The entitlement's grants, by effective time.
async fn grants_of(w: &World, e: &Entitlement) -> Vec<Grant> {
    let mut g = w.store.list_grants(&w.tenant, &e.id).await.unwrap();
    g.sort_by_key(|g| (g.effective_at, g.details.name.clone()));
    g
}

async fn dates(w: &World, e: &Entitlement) -> Vec<(Timestamp, Option<Timestamp>)> {
    grants_of(w, e)
        .await
        .iter()
        .map(|g| (g.effective_at, g.expires_at))
        .collect()
}

async fn run(w: &World) -> usize {
    plans::apply_all(&w.store, &w.clock, later()).await.unwrap().grants
}

fn with_sub(customer: &str, sub: &str) -> NewEntitlement {
    NewEntitlement {
        subscription_id: Some(label(sub)),
        ..new_entitlement(customer)
    }
}

#[tokio::test]
async fn a_monthly_plan_applies_once_per_period_and_catches_up_after_missed_runs() {
    let w = World::at("2031-01-31T10:00:00Z");
    let e = w.entitlement_with(with_sub("cus_1", "sub_1")).await;
    let plan = create(
        &w,
        NewCreditPlan {
            start_date: Some(ts("2031-01-31T10:00:00Z")),
            ..monthly(PlanScope::Subscription, "sub_1")
        },
    )
    .await;
    assert_eq!((plan.status, plan.version), (PlanStatus::Published, 0));
    // Period 0 was applied at once.
    let first = grants_of(&w, &e).await;
    assert_eq!(first.len(), 1);
    let g = &first[0];
    assert_eq!(
        (g.effective_at, g.expires_at),
        (ts("2031-01-31T10:00:00Z"), Some(ts("2031-02-28T10:00:00Z")))
    );
    assert_eq!(g.priority, Some(Priority::new(Decimal::from(2)).unwrap()));
    assert_eq!(g.recurrence_period.as_deref(), Some("P1M"));
    assert_eq!(g.idempotency_key, Some(format!("creditgrant:{}:0", plan.id)));
    assert_eq!(g.details.name.as_deref(), Some("Included"));
    assert_eq!(g.amount, credits("100"));

    w.clock.set("2031-02-28T09:59:59Z");
    assert_eq!(run(&w).await, 0, "not due yet");
    w.clock.set("2031-02-28T10:00:00Z");
    assert_eq!(run(&w).await, 1);
    assert_eq!(run(&w).await, 0, "a doubled run grants nothing");

    // March and April were missed: May's run catches up, counting months from Jan 31.
    w.clock.set("2031-05-01T00:00:00Z");
    let done = plans::apply_all(&w.store, &w.clock, later()).await.unwrap();
    assert_eq!((done.grants, done.entitlements), (2, 1));
    let starts: Vec<Timestamp> = dates(&w, &e).await.into_iter().map(|d| d.0).collect();
    assert_eq!(
        starts,
        [
            ts("2031-01-31T10:00:00Z"),
            ts("2031-02-28T10:00:00Z"),
            ts("2031-03-31T10:00:00Z"),
            ts("2031-04-30T10:00:00Z"),
        ]
    );
    // The per-tenant run agrees.
    assert_eq!(
        plans::apply_tenant(&w.store, &w.clock, &w.tenant).await.unwrap().grants,
        0
    );
}

#[tokio::test]
async fn creates_are_idempotent_and_replays_apply_nothing_twice() {
    let w = World::at("2031-03-01T00:00:00Z");
    let e = w.entitlement_with(with_sub("cus_1", "sub_1")).await;
    let req = NewCreditPlan {
        idempotency_key: Some(key("plan-1")),
        ..monthly(PlanScope::Subscription, "sub_1")
    };
    let plan = create(&w, req.clone()).await;
    w.clock.advance(60);
    match plans::create(&w.store, &w.clock, &w.tenant, req.clone()).await.unwrap() {
        Created::Replayed(p) => assert_eq!(p, plan),
        Created::New(_) => panic!("a replay must not create"),
    }
    assert_eq!(grants_of(&w, &e).await.len(), 1, "applied once");
    let different = NewCreditPlan {
        credits: credits("200"),
        ..req
    };
    assert_eq!(
        err(plans::create(&w.store, &w.clock, &w.tenant, different).await),
        r#"IdempotencyMismatch(["credits"])"#
    );
    assert_eq!(
        plans::list(&w.store, &w.tenant, &PlanFilter::default())
            .await
            .unwrap()
            .len(),
        1
    );
    let backwards = NewCreditPlan {
        start_date: Some(ts("2031-03-01T00:00:00Z")),
        end_date: Some(ts("2031-03-01T00:00:00Z")),
        ..monthly(PlanScope::Plan, "pro")
    };
    assert_eq!(
        err(plans::create(&w.store, &w.clock, &w.tenant, backwards).await),
        "EndNotAfterStart"
    );
}

#[tokio::test]
async fn plan_scope_reaches_later_entitlements_from_the_period_they_joined_until_the_end_date() {
    let w = World::at("2031-03-01T00:00:00Z");
    let onetime = create(
        &w,
        NewCreditPlan {
            name: label("Welcome"),
            credits: credits("25"),
            recurrence: Recurrence::Once,
            expiration: Expiration::Never,
            priority: None,
            ..monthly(PlanScope::Plan, "pro")
        },
    )
    .await;
    let weekly = create(
        &w,
        NewCreditPlan {
            name: label("Weekly"),
            credits: credits("5"),
            recurrence: Recurrence::Every(Period::Weekly, 1),
            expiration: Expiration::BillingCycle,
            end_date: Some(ts("2031-03-20T00:00:00Z")),
            ..monthly(PlanScope::Plan, "pro")
        },
    )
    .await;
    // Provisioned after the plans, mid-week: the welcome credits and this week's.
    w.clock.set("2031-03-03T00:00:00Z");
    let pro = NewEntitlement {
        plan_id: Some(label("pro")),
        current_period_start: Some(ts("2031-03-01T00:00:00Z")),
        ..new_entitlement("cus_1")
    };
    let e = w.entitlement_with(pro.clone()).await;
    let basic = w
        .entitlement_with(NewEntitlement {
            plan_id: Some(label("basic")),
            ..new_entitlement("cus_2")
        })
        .await;
    assert_eq!(run(&w).await, 2);
    assert_eq!(run(&w).await, 0);
    let made = grants_of(&w, &e).await;
    let named = |name: &str| made.iter().find(|g| g.details.name.as_deref() == Some(name)).unwrap();
    assert_eq!(made.len(), 2);
    assert_eq!(
        (named("Welcome").amount, named("Weekly").amount),
        (credits("25"), credits("5"))
    );
    assert_eq!(named("Welcome").expires_at, None, "NEVER");
    assert_eq!(
        named("Weekly").expires_at,
        Some(ts("2031-04-01T00:00:00Z")),
        "BILLING_CYCLE: the period end"
    );
    assert!(grants_of(&w, &basic).await.is_empty(), "another plan id gets nothing");

    // Joined in the second week: no credits for the first.
    w.clock.set("2031-03-10T00:00:00Z");
    let late = w.entitlement_with(pro).await;
    assert_eq!(
        run(&w).await,
        3,
        "the late one's welcome and week 2; the first one's week 2"
    );
    let late_dates: Vec<Timestamp> = dates(&w, &late).await.into_iter().map(|d| d.0).collect();
    assert_eq!(late_dates, [ts("2031-03-01T00:00:00Z"), ts("2031-03-08T00:00:00Z")]);

    // The week of Mar 15 applies; Mar 22 is past end_date.
    w.clock.set("2031-03-30T00:00:00Z");
    assert_eq!(run(&w).await, 2);
    assert_eq!(grants_of(&w, &e).await.len(), 4);

    // Archived: no more applications; what was granted stays. Deleting again changes nothing.
    let archived = plans::delete(&w.store, &w.clock, &w.tenant, &onetime.id, None)
        .await
        .unwrap();
    assert_eq!((archived.status, archived.version), (PlanStatus::Archived, 1));
    let again = plans::delete(&w.store, &w.clock, &w.tenant, &onetime.id, None)
        .await
        .unwrap();
    assert_eq!(again, archived);
    w.clock.set("2031-04-03T00:00:00Z");
    let newcomer = w
        .entitlement_with(NewEntitlement {
            plan_id: Some(label("pro")),
            ..new_entitlement("cus_3")
        })
        .await;
    assert_eq!(run(&w).await, 0);
    assert!(grants_of(&w, &newcomer).await.is_empty());
    assert_eq!(grants_of(&w, &e).await.len(), 4);
    let published = PlanFilter {
        status: Some(PlanStatus::Published),
        ..PlanFilter::default()
    };
    let listed = plans::list(&w.store, &w.tenant, &published).await.unwrap();
    assert_eq!(listed.iter().map(|p| p.id.clone()).collect::<Vec<_>>(), [weekly.id]);
}

#[tokio::test]
async fn cancelled_entitlements_get_nothing_and_subscription_plans_can_end_at_a_date() {
    let w = World::at("2031-03-01T00:00:00Z");
    let e = w.entitlement_with(with_sub("cus_1", "sub_1")).await;
    let gone = w.entitlement_with(with_sub("cus_2", "sub_1")).await;
    entitlements::cancel_entitlement(&w.store, &w.clock, &w.tenant, &gone.id)
        .await
        .unwrap();
    let plan = create(
        &w,
        NewCreditPlan {
            recurrence: Recurrence::Every(Period::Daily, 1),
            expiration: Expiration::After(2, DurationUnit::Day),
            ..monthly(PlanScope::Subscription, "sub_1")
        },
    )
    .await;
    assert_eq!(grants_of(&w, &e).await.len(), 1);
    assert!(grants_of(&w, &gone).await.is_empty());
    assert_eq!(
        dates(&w, &e).await,
        [(ts("2031-03-01T00:00:00Z"), Some(ts("2031-03-03T00:00:00Z")))]
    );
    // Ends on Mar 3: the days of Mar 2 apply, Mar 3 on do not.
    let ended = plans::delete(
        &w.store,
        &w.clock,
        &w.tenant,
        &plan.id,
        Some(ts("2031-03-03T00:00:00Z")),
    )
    .await
    .unwrap();
    assert_eq!(
        (ended.status, ended.end_date),
        (PlanStatus::Published, Some(ts("2031-03-03T00:00:00Z")))
    );
    w.clock.set("2031-03-10T00:00:00Z");
    assert_eq!(run(&w).await, 1);
    assert_eq!(grants_of(&w, &e).await.len(), 2);
    assert_eq!(
        err(plans::delete(&w.store, &w.clock, &w.tenant, "cgrant_nope", None).await),
        "NotFound"
    );
}

#[tokio::test]
async fn updates_change_name_metadata_and_end_date() {
    let w = World::at("2031-03-01T00:00:00Z");
    let plan = create(&w, monthly(PlanScope::Plan, "pro")).await;
    w.clock.advance(60);
    let changed = plans::update(
        &w.store,
        &w.clock,
        &w.tenant,
        &plan.id,
        PlanUpdate {
            name: Some(label("Renamed")),
            metadata: Some(BTreeMap::from([("k".to_owned(), "v".to_owned())])),
            end_date: Some(ts("2031-06-01T00:00:00Z")),
        },
    )
    .await
    .unwrap();
    assert_eq!(changed.name, "Renamed");
    assert_eq!((changed.version, changed.updated_at), (1, ts("2031-03-01T00:01:00Z")));
    assert_eq!(changed.end_date, Some(ts("2031-06-01T00:00:00Z")));
    assert_eq!(plans::get(&w.store, &w.tenant, &plan.id).await.unwrap(), changed);
    let kept = plans::update(&w.store, &w.clock, &w.tenant, &plan.id, PlanUpdate::default())
        .await
        .unwrap();
    assert_eq!((kept.name.as_str(), kept.version), ("Renamed", 2));
    let backwards = PlanUpdate {
        end_date: Some(plan.start_date),
        ..PlanUpdate::default()
    };
    assert_eq!(
        err(plans::update(&w.store, &w.clock, &w.tenant, &plan.id, backwards).await),
        "EndNotAfterStart"
    );
    assert_eq!(
        err(plans::update(&w.store, &w.clock, &w.tenant, "cgrant_nope", PlanUpdate::default()).await),
        "NotFound"
    );
    assert_eq!(err(plans::get(&w.store, &w.tenant, "cgrant_nope").await), "NotFound");
}
