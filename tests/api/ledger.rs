//! The ledger on the real local DynamoDB: usage burn-down, reservations, void, balances at any
//! instant, and many concurrent writers on one entitlement.
use crate::helpers::{now_plus, spawn_app, Key, TestApp};
use http::{Method, StatusCode};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Arc;

fn dec(v: &Value) -> Decimal {
    Decimal::from_str(&v.to_string()).unwrap_or_else(|_| panic!("not a number: {v}"))
}

impl TestApp {
    async fn grant(&self, ent: &str, body: Value) -> String {
        let r = self.post(&format!("/v1/entitlements/{ent}/grants"), body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["id"].as_str().unwrap().to_owned()
    }
    async fn usage(&self, ent: &str, body: Value) -> crate::helpers::TestResponse {
        self.post(&format!("/v1/entitlements/{ent}/usage"), body).await
    }
    async fn balance(&self, ent: &str, at: Option<&str>) -> Value {
        let q = at.map(|a| format!("?at={}", a.replace('+', "%2B"))).unwrap_or_default();
        let r = self.get(&format!("/v1/entitlements/{ent}/balance{q}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body
    }
}

#[tokio::test]
async fn usage_burns_grants_in_the_published_order_and_overage_goes_on_the_entitlement() {
    let t = spawn_app().await;
    let ent = t.entitlement().await;
    let later = now_plus(30 * 86_400).to_rfc3339();
    let sooner = now_plus(10 * 86_400).to_rfc3339();
    let never = t
        .grant(&ent, json!({"amount": 10, "idempotencyKey": "never", "priority": 1}))
        .await;
    let late = t
        .grant(
            &ent,
            json!({"amount": 10, "idempotencyKey": "late", "priority": 1, "expiresAt": later}),
        )
        .await;
    let soon = t
        .grant(
            &ent,
            json!({"amount": 10, "idempotencyKey": "soon", "priority": 1, "expiresAt": sooner}),
        )
        .await;
    let first = t
        .grant(&ent, json!({"amount": 5, "idempotencyKey": "p0", "priority": 0}))
        .await;

    let r = t.usage(&ent, json!({"eventId": "e1", "amount": 22})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let taken: Vec<(String, Value)> = r.body["deductions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["grantId"].as_str().unwrap().to_owned(), d["amount"].clone()))
        .collect();
    assert_eq!(
        taken,
        vec![
            (first.clone(), json!(5)),
            (soon.clone(), json!(10)),
            (late.clone(), json!(7))
        ]
    );
    assert_eq!(r.body["overage"], json!(0));
    assert_eq!(r.body["status"], "committed");

    let r = t.usage(&ent, json!({"eventId": "e2", "amount": 20})).await;
    assert_eq!(
        r.body["deductions"],
        json!([{"grantId": late, "amount": 3}, {"grantId": never, "amount": 10}])
    );
    assert_eq!(r.body["overage"], json!(7));

    let e = t.get(&format!("/v1/entitlements/{ent}")).await.body;
    assert_eq!(e["usageInPeriod"], json!(42));
    assert_eq!(e["overage"], json!(7));
    assert_eq!(e["balance"], json!(-7));
    assert_eq!(e["hasAccess"], json!(false));
    let b = t.balance(&ent, None).await;
    assert_eq!(
        (b["excludingPending"].clone(), b["overage"].clone()),
        (json!(-7), json!(7))
    );
    for g in t.all_grants(&ent).await {
        assert!(dec(&g["amount"]) > Decimal::ZERO);
    }
}

#[tokio::test]
async fn an_event_id_is_recorded_once_and_a_different_amount_is_409() {
    let t = spawn_app().await;
    let ent = t.entitlement().await;
    t.grant(&ent, json!({"amount": 100, "idempotencyKey": "g"})).await;
    let first = t.usage(&ent, json!({"eventId": "req-1", "amount": 30})).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let again = t.usage(&ent, json!({"eventId": "req-1", "amount": 30.0})).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body, "a replay returns the original result");
    let other = t.usage(&ent, json!({"eventId": "req-1", "amount": 31})).await;
    assert_eq!(other.status, StatusCode::CONFLICT, "{}", other.body);
    assert_eq!(other.body["details"]["differingFields"], json!(["amount"]));
    assert_eq!(other.header("x-should-retry"), Some("false"));
    let pending = t
        .usage(&ent, json!({"eventId": "req-1", "amount": 30, "pending": true}))
        .await;
    assert_eq!(pending.status, StatusCode::CONFLICT);
    assert_eq!(
        t.get(&format!("/v1/entitlements/{ent}")).await.body["balance"],
        json!(70)
    );
}

#[tokio::test]
async fn pending_usage_holds_credits_until_committed_or_released() {
    let t = spawn_app().await;
    let ent = t.entitlement().await;
    t.grant(&ent, json!({"amount": 10, "idempotencyKey": "g"})).await;
    let hold = t
        .usage(&ent, json!({"eventId": "hold", "amount": 6, "pending": true}))
        .await;
    assert_eq!(hold.status, StatusCode::CREATED, "{}", hold.body);
    assert_eq!(hold.body["status"], "pending");
    let b = t.balance(&ent, None).await;
    assert_eq!(
        (b["excludingPending"].clone(), b["includingPending"].clone()),
        (json!(10), json!(4))
    );
    // Held credits are not available to other usage.
    let other = t.usage(&ent, json!({"eventId": "other", "amount": 5})).await;
    assert_eq!(other.body["overage"], json!(1));
    let hold2 = t
        .usage(&ent, json!({"eventId": "hold2", "amount": 2, "pending": true}))
        .await;
    assert_eq!(hold2.body["overage"], json!(2), "nothing left to hold");

    let commit = t
        .post(
            &format!("/v1/entitlements/{ent}/usage/commit"),
            json!({"eventId": "hold"}),
        )
        .await;
    assert_eq!(commit.status, StatusCode::OK, "{}", commit.body);
    assert_eq!(commit.body["status"], "committed");
    let again = t
        .post(
            &format!("/v1/entitlements/{ent}/usage/commit"),
            json!({"eventId": "hold"}),
        )
        .await;
    assert_eq!(again.body, commit.body, "committing twice changes nothing");
    let release = t
        .post(
            &format!("/v1/entitlements/{ent}/usage/release"),
            json!({"eventId": "hold"}),
        )
        .await;
    assert_eq!(release.status, StatusCode::CONFLICT);
    let b = t.balance(&ent, None).await;
    assert_eq!(b["excludingPending"], json!(-1), "10 - 6 - 4 (other) - 1 overage");
    let e = t.get(&format!("/v1/entitlements/{ent}")).await.body;
    assert_eq!(
        (e["usageInPeriod"].clone(), e["overage"].clone()),
        (json!(11), json!(1))
    );

    let released = t
        .post(
            &format!("/v1/entitlements/{ent}/usage/release"),
            json!({"eventId": "hold2"}),
        )
        .await;
    assert_eq!(released.body["status"], "released");
    assert_eq!(t.balance(&ent, None).await["includingPending"], json!(-1));
    let missing = t
        .post(
            &format!("/v1/entitlements/{ent}/usage/commit"),
            json!({"eventId": "nope"}),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn void_takes_the_rest_out_from_then_on_and_balance_at_reads_the_past() {
    let t = spawn_app().await;
    let ent = t.entitlement().await;
    let start = now_plus(-3600).to_rfc3339();
    let g = t
        .grant(&ent, json!({"amount": 50, "idempotencyKey": "g", "effectiveAt": start}))
        .await;
    let used_at = now_plus(-1800).to_rfc3339();
    t.usage(&ent, json!({"eventId": "u", "amount": 20, "occurredAt": used_at}))
        .await;
    let before_use = now_plus(-2700).to_rfc3339();
    assert_eq!(t.balance(&ent, Some(&before_use)).await["excludingPending"], json!(50));
    assert_eq!(
        t.balance(&ent, Some(&now_plus(-60).to_rfc3339())).await["excludingPending"],
        json!(30)
    );
    let before_grant = now_plus(-7200).to_rfc3339();
    let b = t.balance(&ent, Some(&before_grant)).await;
    assert_eq!(
        (b["excludingPending"].clone(), b["grants"].clone()),
        (json!(0), json!([]))
    );

    let void = t.delete(&format!("/v1/entitlements/{ent}/grants/{g}")).await;
    assert_eq!(void.status, StatusCode::OK);
    let now = t.balance(&ent, None).await;
    assert_eq!(now["excludingPending"], json!(0));
    // The past is unchanged: deductions made stand and the grant counted until it was voided.
    assert_eq!(
        t.balance(&ent, Some(&now_plus(-60).to_rfc3339())).await["excludingPending"],
        json!(30)
    );
    let past = t
        .get(&format!("/v1/entitlements/{ent}?at={}", now_plus(-60).to_rfc3339()))
        .await;
    assert_eq!(
        (past.body["balance"].clone(), past.body["hasAccess"].clone()),
        (json!(30), json!(true))
    );
    let r = t.get(&format!("/v1/entitlements/{ent}?at=yesterday")).await;
    assert_eq!(
        (r.status, r.body["errors"][0]["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("at"))
    );
    let after = t.usage(&ent, json!({"eventId": "after-void", "amount": 1})).await;
    assert_eq!(after.body["overage"], json!(1), "a voided grant takes no new usage");
}

#[tokio::test]
async fn bad_usage_is_400_naming_the_field_and_writes_nothing() {
    let t = spawn_app().await;
    let ent = t.entitlement().await;
    t.grant(&ent, json!({"amount": 10, "idempotencyKey": "g"})).await;
    let future = now_plus(3600).to_rfc3339();
    let long = "e".repeat(256);
    let cases: Vec<(Value, &str)> = vec![
        (json!({"amount": 1}), "eventId"),
        (json!({"eventId": "", "amount": 1}), "eventId"),
        (json!({"eventId": long, "amount": 1}), "eventId"),
        (json!({"eventId": 5, "amount": 1}), "eventId"),
        (json!({"eventId": "e"}), "amount"),
        (json!({"eventId": "e", "amount": 0}), "amount"),
        (json!({"eventId": "e", "amount": -1}), "amount"),
        (json!({"eventId": "e", "amount": "1"}), "amount"),
        (json!({"eventId": "e", "amount": 1, "pending": "yes"}), "pending"),
        (
            json!({"eventId": "e", "amount": 1, "occurredAt": "today"}),
            "occurredAt",
        ),
        (json!({"eventId": "e", "amount": 1, "occurredAt": future}), "occurredAt"),
    ];
    for (body, field) in cases {
        let r = t.usage(&ent, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body} -> {}", r.body);
        assert!(
            r.body["errors"].as_array().unwrap().iter().any(|e| e["field"] == field),
            "{body} -> {}",
            r.body
        );
    }
    for path in ["usage", "usage/commit", "usage/release"] {
        let r = t
            .raw(
                Method::POST,
                &format!("/v1/entitlements/{ent}/{path}"),
                Key::Bearer(&t.admin_key),
                b"{oops",
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.body["errors"][0]["field"], "body");
    }
    let r = t
        .post(&format!("/v1/entitlements/{ent}/usage/commit"), json!({"eventId": ""}))
        .await;
    assert_eq!(r.body["errors"][0]["field"], "eventId");
    let r = t.get(&format!("/v1/entitlements/{ent}/balance?at=noon")).await;
    assert_eq!(
        (r.status, r.body["errors"][0]["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("at"))
    );
    assert_eq!(t.balance(&ent, None).await["excludingPending"], json!(10));
    let e = t.get(&format!("/v1/entitlements/{ent}")).await.body;
    assert_eq!(e["usageInPeriod"], json!(0));
}

#[tokio::test]
async fn members_cannot_record_usage_and_other_tenants_see_404() {
    let t = spawn_app().await;
    let other = spawn_app().await;
    let ent = t.entitlement().await;
    t.grant(&ent, json!({"amount": 10, "idempotencyKey": "g"})).await;
    let body = json!({"eventId": "m", "amount": 1}).to_string();
    let m = Key::Bearer(&t.member_key);
    for path in ["usage", "usage/commit", "usage/release"] {
        let r = t
            .raw(
                Method::POST,
                &format!("/v1/entitlements/{ent}/{path}"),
                m,
                body.as_bytes(),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(
        t.raw(Method::GET, &format!("/v1/entitlements/{ent}/balance"), m, b"")
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        other.usage(&ent, json!({"eventId": "x", "amount": 1})).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        other.get(&format!("/v1/entitlements/{ent}/balance")).await.status,
        StatusCode::NOT_FOUND
    );
    let commit = other
        .post(&format!("/v1/entitlements/{ent}/usage/commit"), json!({"eventId": "m"}))
        .await;
    assert_eq!(commit.status, StatusCode::NOT_FOUND);
    assert_eq!(t.balance(&ent, None).await["excludingPending"], json!(10));
}

#[tokio::test]
async fn usage_on_a_cancelled_entitlement_is_422_but_a_replay_is_answered() {
    let t = spawn_app().await;
    let ent = t.entitlement().await;
    t.grant(&ent, json!({"amount": 10, "idempotencyKey": "g"})).await;
    let first = t.usage(&ent, json!({"eventId": "before", "amount": 2})).await;
    t.post(&format!("/v1/entitlements/{ent}/cancel"), json!({})).await;
    let r = t.usage(&ent, json!({"eventId": "after", "amount": 2})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let replay = t.usage(&ent, json!({"eventId": "before", "amount": 2})).await;
    assert_eq!((replay.status, replay.body.clone()), (StatusCode::CREATED, first.body));
}

/// One usage event that draws on 500 grants: more than one DynamoDB transaction holds, so the
/// lease holder applies it in steps. Answered 201 with every deduction, applied once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_event_draws_on_500_grants() {
    let t = Arc::new(spawn_app().await);
    let ent = t.entitlement().await;
    let tasks: Vec<_> = (0..500)
        .map(|i| {
            let (t, ent) = (Arc::clone(&t), ent.clone());
            tokio::spawn(async move {
                t.grant(&ent, json!({"amount": 1, "idempotencyKey": format!("g{i}")}))
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let r = t.usage(&ent, json!({"eventId": "big", "amount": 500})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["deductions"].as_array().unwrap().len(), 500);
    assert_eq!(t.balance(&ent, None).await["excludingPending"], json!(0));
    let again = t.usage(&ent, json!({"eventId": "big", "amount": 500})).await;
    assert_eq!(again.body["deductions"].as_array().unwrap().len(), 500, "a replay");
    assert_eq!(t.balance(&ent, None).await["excludingPending"], json!(0));
}

/// 64 writers at once on one entitlement, all in one execution environment (their usage is
/// written together by the entitlement's line, [`grants_domain::combining`]).
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn sixty_four_concurrent_writers_never_overspend() {
    concurrent_writers_never_overspend(64).await;
}

/// 64 writers in 4 execution environments of 16 (Lambda Managed Instances): the environments'
/// lines take turns through the entitlement's lease, and events that lose a race go to its queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn sixty_four_writers_in_four_environments_never_overspend() {
    concurrent_writers_never_overspend(16).await;
}

/// 64 writers, each its own execution environment (classic Lambda): events that lose a race are
/// applied by group commit through the entitlement's queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn sixty_four_writers_in_their_own_environments_never_overspend() {
    concurrent_writers_never_overspend(1).await;
}

/// 64 writers at once on one entitlement, `per_environment` of them in each execution environment,
/// each sending several events (each twice): every event is recorded exactly once, both answers
/// are the same, no grant goes below zero, and credits + overage add up to the usage.
async fn concurrent_writers_never_overspend(per_environment: usize) {
    let t = Arc::new(spawn_app().await);
    let ent = t.entitlement().await;
    let mut environments = Vec::new();
    for _ in 0..64 / per_environment {
        environments.push(Arc::new(t.another_environment().await));
    }
    for (i, amount) in [100, 50, 75, 25].iter().enumerate() {
        t.grant(
            &ent,
            json!({"amount": amount, "idempotencyKey": format!("g{i}"), "priority": i}),
        )
        .await;
    }
    let granted = Decimal::from(250);
    let writers: Vec<_> = (0..64)
        .map(|w| {
            let (t, ent) = (Arc::clone(&environments[w / per_environment]), ent.clone());
            tokio::spawn(async move {
                let mut results = Vec::new();
                for e in 0..3 {
                    let body = json!({"eventId": format!("w{w}-e{e}"), "amount": 1.5});
                    // Each event is sent twice: the second is a replay, racing or not.
                    for _ in 0..2 {
                        let mut r = t.usage(&ent, body.clone()).await;
                        // A writer that kept losing races for its whole retry budget gets a 503:
                        // clients retry those, so this test does too.
                        while r.status == StatusCode::SERVICE_UNAVAILABLE {
                            r = t.usage(&ent, body.clone()).await;
                        }
                        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
                        results.push(r.body);
                    }
                }
                results
            })
        })
        .collect();
    let mut bodies = Vec::new();
    for w in writers {
        bodies.extend(w.await.unwrap());
    }
    // Both answers for one event are the same result.
    let mut by_event: std::collections::HashMap<String, Value> = std::collections::HashMap::new();
    for b in bodies {
        let id = b["eventId"].as_str().unwrap().to_owned();
        if let Some(prev) = by_event.insert(id.clone(), b.clone()) {
            assert_eq!(prev, b, "{id} answered differently");
        }
    }
    assert_eq!(by_event.len(), 192);
    let used = Decimal::from_str("1.5").unwrap() * Decimal::from(192);

    let store = crate::helpers::store().await;
    let id = grants_domain::EntitlementId::parse(&ent).unwrap();
    let (e, grants, usage) = grants_domain::ports::UsageStore::load_ledger(&store, &t.tenant, &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(usage.len(), 192, "every event recorded exactly once");
    let ids: HashSet<&str> = usage.iter().map(|u| u.event_id.as_str()).collect();
    assert_eq!(ids.len(), 192);
    for g in &grants {
        assert!(g.remaining >= Decimal::ZERO, "{} went below zero", g.id);
        let deducted: Decimal = usage
            .iter()
            .flat_map(|u| &u.deductions)
            .filter(|d| d.grant_id == g.id)
            .map(|d| d.amount)
            .sum();
        assert_eq!(
            g.amount.value() - deducted,
            g.remaining,
            "{}: remainder = amount - deductions",
            g.id
        );
    }
    let deducted: Decimal = usage.iter().flat_map(|u| &u.deductions).map(|d| d.amount).sum();
    let overage: Decimal = usage.iter().map(|u| u.overage).sum();
    assert_eq!(deducted, granted, "every credit was used, none twice");
    assert_eq!(deducted + overage, used);
    assert_eq!(e.overage, overage);
    assert_eq!(e.usage_in_period, used);
}
