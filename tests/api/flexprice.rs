//! Flexprice credit grant plans on the real local DynamoDB, driven across simulated periods by a
//! clock the test controls (no sleeps): recurrence, catch-up after missed runs, doubled runs,
//! expiry types, priority, period resets with rollover; and the surface's rules and errors.
//!
//! The clocks here are years ahead of real time, and the schedule is run per tenant, so these tests
//! and the real-time ones never reset or apply each other's objects.
use crate::helpers::{spawn_with, Key, TestApp, TestClock};
use grants_domain::{periods, plans, Timestamp};
use http::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

fn ts(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

async fn at(start: &str) -> (TestApp, Arc<TestClock>) {
    let clock = Arc::new(TestClock(Mutex::new(ts(start))));
    (spawn_with(clock.clone(), false).await, clock)
}

fn set(clock: &TestClock, t: &str) {
    *clock.0.lock().unwrap() = ts(t);
}

impl TestApp {
    /// One scheduled run for this tenant: period resets, then plan applications.
    async fn run_schedule(&self) -> usize {
        let (store, clock) = (self.app.store.as_ref(), self.app.clock.as_ref());
        periods::reset_tenant(store, clock, &self.tenant).await.unwrap();
        plans::apply_tenant(store, clock, &self.tenant).await.unwrap().grants
    }
    async fn plan(&self, body: Value) -> Value {
        let r = self.post("/v1/creditgrants", body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body
    }
    /// (effectiveAt, expiresAt) of the entitlement's grants, oldest first.
    async fn grant_dates(&self, ent: &str) -> Vec<(String, Value)> {
        self.all_grants(ent)
            .await
            .iter()
            .map(|g| (g["effectiveAt"].as_str().unwrap().to_owned(), g["expiresAt"].clone()))
            .collect()
    }
}

#[tokio::test]
async fn a_monthly_plan_from_jan_31_applies_once_per_period_and_catches_up_after_missed_runs() {
    let (t, clock) = at("2031-01-31T10:00:00Z").await;
    let ent = t.entitlement_with(json!({"subscriptionId": "sub_1"})).await;
    let plan = t
        .plan(
            json!({"name": "Included", "scope": "SUBSCRIPTION", "subscription_id": "sub_1", "credits": "100",
            "cadence": "RECURRING", "period": "MONTHLY", "expiration_type": "DURATION", "expiration_duration": 1,
            "expiration_duration_unit": "MONTH", "priority": 2, "start_date": "2031-01-31T10:00:00Z"}),
        )
        .await;
    assert_eq!(plan["credits"], "100");
    // Period 0 was applied at once.
    assert_eq!(
        t.grant_dates(&ent).await,
        vec![("2031-01-31T10:00:00Z".to_owned(), json!("2031-02-28T10:00:00Z"))]
    );
    let g = &t.all_grants(&ent).await[0];
    assert_eq!(
        (
            g["priority"].clone(),
            g["recurrencePeriod"].clone(),
            g["amount"].clone()
        ),
        (json!(2), json!("P1M"), json!(100))
    );

    set(&clock, "2031-02-28T09:59:59Z");
    assert_eq!(t.run_schedule().await, 0, "not due yet");
    set(&clock, "2031-02-28T10:00:00Z");
    assert_eq!(t.run_schedule().await, 1);
    assert_eq!(t.run_schedule().await, 0, "a doubled run grants nothing");

    // Runs missed in March and April: one run in May catches up, counting months from Jan 31.
    set(&clock, "2031-05-01T00:00:00Z");
    assert_eq!(t.run_schedule().await, 2);
    let dates: Vec<String> = t.grant_dates(&ent).await.into_iter().map(|d| d.0).collect();
    assert_eq!(
        dates,
        [
            "2031-01-31T10:00:00Z",
            "2031-02-28T10:00:00Z",
            "2031-03-31T10:00:00Z",
            "2031-04-30T10:00:00Z"
        ]
    );

    // Two runs at once still make one grant per period.
    set(&clock, "2031-06-01T00:00:00Z");
    let (a, b) = tokio::join!(t.run_schedule(), t.run_schedule());
    assert_eq!(a + b, 1);
    assert_eq!(t.all_grants(&ent).await.len(), 5);
}

#[tokio::test]
async fn plan_scope_applies_to_entitlements_provisioned_later_and_end_date_and_delete_stop_it() {
    let (t, clock) = at("2031-03-01T00:00:00Z").await;
    let onetime = t
        .plan(json!({"name": "Welcome", "scope": "PLAN", "plan_id": "pro", "credits": "25", "cadence": "ONETIME"}))
        .await;
    let weekly = t
        .plan(
            json!({"name": "Weekly", "scope": "PLAN", "plan_id": "pro", "credits": "5", "cadence": "RECURRING",
            "period": "WEEKLY", "end_date": "2031-03-20T00:00:00Z", "expiration_type": "BILLING_CYCLE"}),
        )
        .await;
    // Provisioned after the plans, mid-period: it gets the welcome credits and this week's.
    set(&clock, "2031-03-03T00:00:00Z");
    let ent = t
        .entitlement_with(json!({"planId": "pro", "currentPeriodStart": "2031-03-01T00:00:00Z"}))
        .await;
    let other = t.entitlement_with(json!({"planId": "basic"})).await;
    assert_eq!(t.run_schedule().await, 2);
    assert_eq!(t.run_schedule().await, 0);
    let grants = t.all_grants(&ent).await;
    let amounts: Vec<Value> = grants.iter().map(|g| g["amount"].clone()).collect();
    assert_eq!(amounts, vec![json!(25), json!(5)]);
    // BILLING_CYCLE: the weekly credits expire at the entitlement's period end.
    assert_eq!(grants[1]["expiresAt"], "2031-04-01T00:00:00Z");
    assert_eq!(grants[0]["expiresAt"], json!(null), "NEVER is the default");
    assert!(t.all_grants(&other).await.is_empty(), "another plan id gets nothing");

    // Weeks of Mar 8 and Mar 15 apply; Mar 22 is past end_date.
    set(&clock, "2031-03-30T00:00:00Z");
    assert_eq!(t.run_schedule().await, 2);
    assert_eq!(t.all_grants(&ent).await.len(), 4);

    // Deleting (archiving) stops applications; grants already made stay.
    let id = onetime["id"].as_str().unwrap();
    let d = t
        .call(Method::DELETE, &format!("/v1/creditgrants/{id}"), Some(json!({})))
        .await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.body);
    assert!(d.body["message"].is_string());
    assert_eq!(
        t.get(&format!("/v1/creditgrants/{id}")).await.body["status"],
        "archived"
    );
    let late = t.entitlement_with(json!({"planId": "pro"})).await;
    assert_eq!(t.run_schedule().await, 0);
    assert!(t.all_grants(&late).await.is_empty());
    assert_eq!(t.all_grants(&ent).await.len(), 4);
    assert_eq!(weekly["cadence"], "RECURRING");
}

#[tokio::test]
async fn deleting_a_subscription_plan_with_an_effective_date_ends_it_then() {
    let (t, clock) = at("2031-05-01T00:00:00Z").await;
    let ent = t.entitlement_with(json!({"subscriptionId": "sub_d"})).await;
    let p = t
        .plan(
            json!({"name": "Daily", "scope": "SUBSCRIPTION", "subscription_id": "sub_d", "credits": "1",
            "cadence": "RECURRING", "period": "DAILY", "start_date": "2031-05-01T00:00:00Z"}),
        )
        .await;
    let id = p["id"].as_str().unwrap();
    let d = t
        .call(
            Method::DELETE,
            &format!("/v1/creditgrants/{id}"),
            Some(json!({"effective_date": "2031-05-04T00:00:00Z"})),
        )
        .await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.body);
    let got = t.get(&format!("/v1/creditgrants/{id}")).await.body;
    assert_eq!(
        (got["status"].clone(), got["end_date"].clone()),
        (json!("published"), json!("2031-05-04T00:00:00Z"))
    );
    set(&clock, "2031-05-10T00:00:00Z");
    t.run_schedule().await;
    assert_eq!(
        t.all_grants(&ent).await.len(),
        3,
        "May 1, 2 and 3; none from the end on"
    );
}

#[tokio::test]
async fn a_period_reset_rolls_the_rest_over_within_the_bounds() {
    let (t, clock) = at("2031-01-10T00:00:00Z").await;
    let ent = t
        .entitlement_with(
            json!({"currentPeriodStart": "2031-01-01T00:00:00Z", "currentPeriodEnd": "2031-02-01T00:00:00Z"}),
        )
        .await;
    let capped = t
        .post(
            &format!("/v1/entitlements/{ent}/grants"),
            json!({"amount": 100, "idempotencyKey": "capped", "resetMaxRollover": 30, "priority": 1}),
        )
        .await;
    let floor = t
        .post(
            &format!("/v1/entitlements/{ent}/grants"),
            json!({"amount": 50, "idempotencyKey": "floor", "resetMinRollover": 40, "priority": 2}),
        )
        .await;
    let free = t
        .post(
            &format!("/v1/entitlements/{ent}/grants"),
            json!({"amount": 10, "idempotencyKey": "free", "priority": 3}),
        )
        .await;
    let u = t
        .post(
            &format!("/v1/entitlements/{ent}/usage"),
            json!({"eventId": "jan", "amount": 85}),
        )
        .await;
    assert_eq!(u.status, StatusCode::CREATED, "{}", u.body);
    // Priority 1 burns first: all 85 come from capped, which keeps 15.
    let e = t.get(&format!("/v1/entitlements/{ent}")).await.body;
    assert_eq!(
        (e["balance"].clone(), e["usageInPeriod"].clone()),
        (json!(75), json!(85))
    );

    set(&clock, "2031-02-01T00:00:01Z");
    t.run_schedule().await;
    let e = t.get(&format!("/v1/entitlements/{ent}")).await.body;
    assert_eq!(
        (e["currentPeriodStart"].clone(), e["currentPeriodEnd"].clone()),
        (json!("2031-02-01T00:00:00Z"), json!("2031-03-01T00:00:00Z"))
    );
    assert_eq!(e["usageInPeriod"], json!(0), "the counters start again");
    let remaining = |id: &Value| {
        let id = id.as_str().unwrap().to_owned();
        let ent = ent.clone();
        let t = &t;
        async move {
            t.get(&format!("/v1/entitlements/{ent}/balance")).await.body["grants"]
                .as_array()
                .unwrap()
                .iter()
                .find(|g| g["grantId"] == json!(id))
                .unwrap()["excludingPending"]
                .clone()
        }
    };
    // capped had 15 (below its max 30): unchanged; floor had 50, min 40, no max: unchanged; free: unchanged.
    assert_eq!(remaining(&capped.body["id"]).await, json!(15));
    assert_eq!(remaining(&floor.body["id"]).await, json!(50));
    assert_eq!(remaining(&free.body["id"]).await, json!(10));

    // Next period: nothing used, so capped keeps 15; use 55 (15 capped + 40 floor) and reset again.
    let u = t
        .post(
            &format!("/v1/entitlements/{ent}/usage"),
            json!({"eventId": "feb", "amount": 55}),
        )
        .await;
    assert_eq!(u.body["overage"], json!(0));
    let topup = t
        .post(
            &format!("/v1/entitlements/{ent}/grants"),
            json!({"amount": 200, "idempotencyKey": "big", "resetMaxRollover": 20, "priority": 9}),
        )
        .await;
    // This instance kept the entitlement from January's creates; the reset moved its period, so the
    // kept copy fails the write's condition and the grant is dated from the new period.
    assert_eq!(
        topup.body["effectiveAt"],
        json!("2031-02-01T00:00:00Z"),
        "{}",
        topup.body
    );
    set(&clock, "2031-03-05T00:00:00Z");
    assert_eq!(t.run_schedule().await, 0);
    // floor had 10 left: topped up to its minimum 40; big had 200: capped to 20.
    assert_eq!(remaining(&floor.body["id"]).await, json!(40));
    assert_eq!(remaining(&topup.body["id"]).await, json!(20));
    assert_eq!(remaining(&capped.body["id"]).await, json!(0));
    // A second run in the same period changes nothing.
    t.run_schedule().await;
    assert_eq!(remaining(&topup.body["id"]).await, json!(20));
    // The ledger shows the rollover, and the balance in the past is unchanged.
    let past = t
        .get(&format!("/v1/entitlements/{ent}/balance?at=2031-02-20T00:00:00Z"))
        .await
        .body;
    assert_eq!(past["excludingPending"], json!(220), "15+50+10 - 55 + 200");
}

#[tokio::test]
async fn bad_requests_get_flexprice_errors_naming_the_field_and_write_nothing() {
    let (t, _) = at("2031-01-01T00:00:00Z").await;
    let ok = json!({"name": "n", "scope": "PLAN", "plan_id": "p", "credits": "10", "cadence": "ONETIME"});
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        if v.is_null() {
            b.as_object_mut().unwrap().remove(k);
        } else {
            b[k] = v;
        }
        b
    };
    let cases: Vec<(Value, &str)> = vec![
        (with("name", Value::Null), "name"),
        (with("scope", Value::Null), "scope"),
        (with("scope", json!("ADDON")), "scope"),
        (with("scope", json!("TEAM")), "scope"),
        (with("plan_id", Value::Null), "plan_id"),
        (with("scope", json!("SUBSCRIPTION")), "subscription_id"),
        (with("credits", Value::Null), "credits"),
        (with("credits", json!("0")), "credits"),
        (with("credits", json!("ten")), "credits"),
        (with("cadence", json!("SOMETIMES")), "cadence"),
        (with("cadence", json!("RECURRING")), "period"),
        (with("period", json!("HOURLY")), "period"),
        (with("period_count", json!(0)), "period_count"),
        (with("expiration_type", json!("DURATION")), "expiration_duration"),
        (with("priority", json!(-1)), "priority"),
        (with("start_date", json!("soon")), "start_date"),
        (with("end_date", json!("2030-01-01T00:00:00Z")), "end_date"),
        (with("metadata", json!({"a": 1})), "metadata.a"),
    ];
    for (body, field) in cases {
        let r = t.post("/v1/creditgrants", body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body} -> {}", r.body);
        assert_eq!(
            (r.body["success"].clone(), r.body["http_status_code"].clone()),
            (json!(false), json!(400))
        );
        assert!(r.body["error"]["message"].is_string() && r.body["message"].is_string());
        assert!(
            r.body["errors"].as_array().unwrap().iter().any(|e| e["field"] == field),
            "{field}: {}",
            r.body
        );
    }
    for q in [
        "limit=0",
        "limit=1001",
        "offset=-1",
        "order=sideways",
        "status=gone",
        "scope=ADDON",
        "sort=colour",
        "start_time=yesterday",
    ] {
        let r = t.get(&format!("/v1/creditgrants?{q}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}: {}", r.body);
        assert_eq!(r.body["success"], json!(false));
    }
    let missing = t.get("/v1/creditgrants/cgrant_nope").await;
    assert_eq!(
        (missing.status, missing.body["http_status_code"].clone()),
        (StatusCode::NOT_FOUND, json!(404))
    );
    let r = t
        .raw(
            Method::PUT,
            "/v1/creditgrants/cgrant_nope",
            Key::ApiKeyHeader(&t.admin_key),
            b"{",
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let plan = t.plan(json!({"name": "kept", "scope": "SUBSCRIPTION", "subscription_id": "s", "credits": "1", "cadence": "ONETIME"})).await;
    let id = plan["id"].as_str().unwrap();
    let bad_put = t
        .call(
            Method::PUT,
            &format!("/v1/creditgrants/{id}"),
            Some(json!({"end_date": "later", "name": ""})),
        )
        .await;
    let fields: Vec<Value> = bad_put.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].clone())
        .collect();
    assert_eq!(
        (bad_put.status, fields),
        (StatusCode::BAD_REQUEST, vec![json!("name"), json!("end_date")])
    );
    let bad_delete = t
        .call(
            Method::DELETE,
            &format!("/v1/creditgrants/{id}"),
            Some(json!({"effective_date": "tomorrow"})),
        )
        .await;
    assert_eq!(
        (bad_delete.status, bad_delete.body["errors"][0]["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("effective_date"))
    );
    let kept = t.get(&format!("/v1/creditgrants/{id}")).await.body;
    assert_eq!(
        (kept["name"].clone(), kept["status"].clone(), kept["end_date"].clone()),
        (json!("kept"), json!("published"), json!(null))
    );
    let none = t.raw(Method::GET, "/v1/creditgrants", Key::None, b"").await;
    assert_eq!(
        (none.status, none.body["success"].clone()),
        (StatusCode::UNAUTHORIZED, json!(false))
    );
    assert_eq!(
        t.get("/v1/creditgrants").await.body["pagination"]["total"],
        json!(1),
        "only the valid one"
    );
}

#[tokio::test]
async fn crud_list_filters_roles_and_tenants() {
    let (t, _) = at("2031-01-01T00:00:00Z").await;
    let other = spawn_with(Arc::new(TestClock(Mutex::new(ts("2031-01-01T00:00:00Z")))), false).await;
    let a = t.plan(json!({"name": "A", "scope": "PLAN", "plan_id": "p1", "credits": "10.50", "cadence": "ONETIME", "metadata": {"k": "v"}})).await;
    let b = t.plan(json!({"name": "B", "scope": "SUBSCRIPTION", "subscription_id": "s1", "credits": "3", "cadence": "RECURRING", "period": "ANNUAL", "period_count": 2})).await;
    // Every key is present, null where there is no value.
    for key in [
        "addon_id",
        "environment_id",
        "end_date",
        "period",
        "period_count",
        "expiration_duration",
        "expiration_duration_unit",
        "created_by",
        "updated_by",
        "currency",
        "priority",
        "subscription_id",
    ] {
        assert!(a.as_object().unwrap().contains_key(key), "{key}");
    }
    assert_eq!(
        (a["credits"].clone(), a["status"].clone(), a["expiration_type"].clone()),
        (json!("10.5"), json!("published"), json!("NEVER"))
    );
    let id = a["id"].as_str().unwrap();
    let u = t
        .call(
            Method::PUT,
            &format!("/v1/creditgrants/{id}"),
            Some(json!({"name": "A2", "metadata": {"k": "w"}, "end_date": "2032-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(u.status, StatusCode::OK, "{}", u.body);
    assert_eq!(
        (
            u.body["name"].clone(),
            u.body["metadata"]["k"].clone(),
            u.body["end_date"].clone()
        ),
        (json!("A2"), json!("w"), json!("2032-01-01T00:00:00Z"))
    );

    let list = |q: &'static str| {
        let t = &t;
        async move {
            let r = t.get(&format!("/v1/creditgrants{q}")).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            r.body
        }
    };
    let all = list("").await;
    assert_eq!(all["pagination"], json!({"limit": 50, "offset": 0, "total": 2}));
    assert_eq!(all["items"][0]["id"], b["id"], "newest first by default");
    assert_eq!(all["items"][1]["credits"], json!(10.5), "a number in the list");
    assert_eq!(list("?order=asc&limit=1").await["items"][0]["id"], a["id"]);
    assert_eq!(list("?order=asc&limit=1&offset=1").await["items"][0]["id"], b["id"]);
    assert_eq!(list("?scope=SUBSCRIPTION").await["pagination"]["total"], json!(1));
    assert_eq!(list("?plan_ids=p1,p9").await["items"][0]["id"], a["id"]);
    assert_eq!(list("?subscription_ids=s1").await["items"][0]["id"], b["id"]);
    assert_eq!(list("?status=archived").await["pagination"]["total"], json!(0));
    assert_eq!(
        list("?start_time=2031-01-02T00:00:00Z").await["pagination"]["total"],
        json!(0)
    );
    assert_eq!(list("?sort=name&order=asc").await["items"][0]["name"], "A2");

    let m = Key::ApiKeyHeader(&t.member_key);
    let body = json!({"name": "x", "scope": "PLAN", "plan_id": "p", "credits": "1", "cadence": "ONETIME"}).to_string();
    assert_eq!(
        t.raw(Method::POST, "/v1/creditgrants", m, body.as_bytes()).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        t.raw(Method::PUT, &format!("/v1/creditgrants/{id}"), m, b"{}")
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        t.raw(Method::DELETE, &format!("/v1/creditgrants/{id}"), m, b"")
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        t.raw(Method::GET, &format!("/v1/creditgrants/{id}"), m, b"")
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        other.get(&format!("/v1/creditgrants/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        other
            .call(
                Method::PUT,
                &format!("/v1/creditgrants/{id}"),
                Some(json!({"name": "stolen"}))
            )
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        other.delete(&format!("/v1/creditgrants/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        other.get("/v1/creditgrants").await.body["pagination"]["total"],
        json!(0)
    );
    assert_eq!(t.get(&format!("/v1/creditgrants/{id}")).await.body["name"], "A2");
}

#[tokio::test]
async fn an_idempotency_key_makes_a_retried_create_return_the_first_plan_and_grant_once() {
    let (t, _) = at("2031-07-01T00:00:00Z").await;
    let ent = t.entitlement_with(json!({"subscriptionId": "sub_i"})).await;
    let body = json!({"name": "Once", "scope": "SUBSCRIPTION", "subscription_id": "sub_i", "credits": "7", "cadence": "ONETIME"}).to_string();
    let send = |b: String| {
        let t = &t;
        async move {
            t.raw_with(
                Method::POST,
                "/v1/creditgrants",
                Key::ApiKeyHeader(&t.admin_key),
                b.as_bytes(),
                &[("idempotency-key", "k1")],
            )
            .await
        }
    };
    let (a, b) = (send(body.clone()).await, send(body.clone()).await);
    assert_eq!((a.status, b.status), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!(a.body["id"], b.body["id"]);
    assert_eq!(t.all_grants(&ent).await.len(), 1);
    let clash = send(body.replace("\"7\"", "\"8\"")).await;
    assert_eq!(
        (clash.status, clash.body["success"].clone()),
        (StatusCode::CONFLICT, json!(false))
    );
    assert_eq!(t.get("/v1/creditgrants").await.body["pagination"]["total"], json!(1));
}
