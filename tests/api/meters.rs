//! Billable metrics (`/v0/billableMetrics`) on DynamoDB Local: one metric per event type, an
//! identical create is the same metric, another organization's is not found, every bad field is
//! named in one 400 and nothing is written.
use crate::helpers::{spawn_app, Key, TestApp};
use http::{Method, StatusCode};
use serde_json::{json, Value};

fn tokens(t: &TestApp) -> Value {
    json!({"aggregation": "SUM", "description": "Model tokens", "merchantId": t.tenant.as_str(), "name": "Tokens",
        "unit": "tokens", "eventType": "ai.inference", "valueProperty": "$.usage.tokens", "productId": "prod_llm",
        "groupBy": {"model": "$.model"}, "eventFrom": "2030-01-01T00:00:00Z"})
}

async fn listed(t: &TestApp) -> Value {
    let r = t
        .get(&format!(
            "/v0/billableMetrics?merchantId={}&limit=100",
            t.tenant.as_str()
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

#[tokio::test]
async fn a_metric_per_event_type_read_back_as_created() {
    let t = spawn_app().await;
    let created = t.post("/v0/billableMetrics", tokens(&t)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let m = &created.body;
    assert!(m["id"].as_str().unwrap().starts_with("bm_"));
    assert_eq!(m["object"], "billableMetric");
    assert_eq!(m["merchantId"], t.tenant.as_str());
    assert_eq!(m["valueProperty"], "$.usage.tokens");
    assert_eq!(m["groupBy"], json!({"model": "$.model"}));
    assert_eq!(m["itemId"], Value::Null);
    assert_eq!(m["eventFrom"], "2030-01-01T00:00:00Z");

    let again = t.post("/v0/billableMetrics", tokens(&t)).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.body, created.body, "the identical create is the same metric");

    let mut different = tokens(&t);
    different["aggregation"] = json!("COUNT");
    let conflict = t.post("/v0/billableMetrics", different).await;
    assert_eq!(conflict.status, StatusCode::CONFLICT, "{}", conflict.body);
    assert_eq!(conflict.body["code"], "event_type_metered");

    let id = m["id"].as_str().unwrap();
    let got = t.get(&format!("/v0/billableMetrics/{id}")).await;
    assert_eq!((got.status, &got.body), (StatusCode::OK, m));
    let page = listed(&t).await;
    assert_eq!(page["object"], "list");
    assert_eq!(page["data"], json!([m]));
    assert_eq!(page["pagination"], json!({"total": 1, "limit": 100, "offset": 0}));

    let count = json!({"aggregation": "COUNT", "description": "", "merchantId": t.tenant.as_str(), "name": "Calls",
        "unit": "calls", "eventType": "api.call"});
    let r = t.post("/v0/billableMetrics", count).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["valueProperty"], Value::Null);
    assert_eq!(r.body["productId"], "");
    let only_llm = t
        .get(&format!(
            "/v0/billableMetrics?merchantId={}&productId=prod_llm",
            t.tenant.as_str()
        ))
        .await;
    assert_eq!(only_llm.body["pagination"]["total"], 1);
    let second_page = t
        .get(&format!(
            "/v0/billableMetrics?merchantId={}&limit=1&offset=1",
            t.tenant.as_str()
        ))
        .await;
    assert_eq!(second_page.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(second_page.body["pagination"]["total"], 2);
}

#[tokio::test]
async fn another_organization_and_a_member_key_are_refused() {
    let (t, other) = (spawn_app().await, spawn_app().await);
    let theirs = other.post("/v0/billableMetrics", tokens(&other)).await;
    let id = theirs.body["id"].as_str().unwrap();
    assert_eq!(
        t.get(&format!("/v0/billableMetrics/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    let r = t
        .get(&format!("/v0/billableMetrics?merchantId={}", other.tenant.as_str()))
        .await;
    assert_eq!(
        (r.status, &r.body["code"]),
        (StatusCode::NOT_FOUND, &json!("merchant_not_found"))
    );
    let r = t.post("/v0/billableMetrics", tokens(&other)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let as_member = t
        .raw(
            Method::POST,
            "/v0/billableMetrics",
            Key::Bearer(&t.member_key),
            tokens(&t).to_string().as_bytes(),
        )
        .await;
    assert_eq!(as_member.status, StatusCode::FORBIDDEN);
    assert_eq!(listed(&t).await["pagination"]["total"], 0, "nothing written");
}

#[tokio::test]
async fn every_bad_field_is_named_and_nothing_is_written() {
    let t = spawn_app().await;
    let with = |k: &str, v: Value| {
        let mut b = tokens(&t);
        b[k] = v;
        b
    };
    let without = |k: &str| {
        let mut b = tokens(&t);
        b.as_object_mut().unwrap().remove(k);
        b
    };
    let cases = [
        (with("aggregation", json!("AVG")), "aggregation", "unsupported"),
        (with("aggregation", json!("UNIQUE_COUNT")), "aggregation", "unsupported"),
        (with("aggregation", json!("sum")), "aggregation", "invalid"),
        (with("aggregation", json!(5)), "aggregation", "invalid_type"),
        (without("valueProperty"), "valueProperty", "required"),
        (with("valueProperty", json!("tokens")), "valueProperty", "invalid"),
        (with("valueProperty", json!("$.a[0]")), "valueProperty", "invalid"),
        (with("groupBy", json!({"model": "model"})), "groupBy.model", "invalid"),
        (with("groupBy", json!(["$.a"])), "groupBy", "invalid_type"),
        (with("eventFrom", json!("yesterday")), "eventFrom", "invalid"),
        (with("eventType", json!("")), "eventType", "invalid"),
        (with("name", json!("a\u{7}b")), "name", "invalid"),
        (without("merchantId"), "merchantId", "required"),
        (without("unit"), "unit", "required"),
        (with("productId", json!(7)), "productId", "invalid_type"),
        (with("description", json!("d".repeat(1001))), "description", "invalid"),
    ];
    for (body, field, code) in cases {
        let r = t.post("/v0/billableMetrics", body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
        let errors = r.body["errors"].as_array().unwrap();
        assert!(
            errors.iter().any(|e| e["field"] == field && e["code"] == code),
            "{body}: {}",
            r.body
        );
    }
    let all_bad = json!({"aggregation": "MAX", "description": 1, "merchantId": t.tenant.as_str(), "name": "",
        "unit": "u", "eventType": "e", "valueProperty": "x"});
    let r = t.post("/v0/billableMetrics", all_bad).await;
    let fields: Vec<&str> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    for f in ["aggregation", "description", "name", "valueProperty"] {
        assert!(fields.contains(&f), "{f} in {fields:?}");
    }
    let r = t.get("/v0/billableMetrics").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["errors"][0]["field"], "merchantId");
    let r = t.get("/v0/billableMetrics/not-a-metric").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(listed(&t).await["pagination"]["total"], 0, "nothing written");
}

/// A funded entitlement of `customer` for feature `event_type`: (entitlement id, grant id).
async fn funded(t: &TestApp, customer: &str, event_type: &str) -> String {
    let ent = t
        .entitlement_with(json!({"customerId": customer, "featureKey": event_type}))
        .await;
    let g = t
        .post(
            &format!("/v1/entitlements/{ent}/grants"),
            json!({"amount": 100, "idempotencyKey": format!("fund-{ent}")}),
        )
        .await;
    assert_eq!(g.status, StatusCode::CREATED, "{}", g.body);
    ent
}

async fn balance(t: &TestApp, ent: &str) -> Value {
    t.get(&format!("/v1/entitlements/{ent}/balance")).await.body["balance"].clone()
}

#[tokio::test]
async fn ingested_events_burn_their_metered_amount_once() {
    let t = spawn_app().await;
    let mut from_2026 = tokens(&t);
    from_2026["eventFrom"] = json!("2026-01-01T00:00:00Z");
    let metric = t.post("/v0/billableMetrics", from_2026).await;
    assert_eq!(metric.status, StatusCode::CREATED);
    let (a, b) = (
        funded(&t, "cus_ing", "ai.inference").await,
        funded(&t, "cus_ing", "ai.inference").await,
    );
    let elsewhere = funded(&t, "cus_ing", "api_calls").await;
    let event = json!({"type": "ai.inference", "source": "https://app.example", "subject": "cus_ing",
        "data": {"usage": {"tokens": 2.5}, "model": "m"}, "idempotencyKey": "evt-1"});
    let r = t.post("/v0/events", event.clone()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body["status"], "applied");
    assert_eq!(r.body["amount"], json!(2.5));
    assert_eq!(r.body["entitlement"], json!(a), "the oldest entitlement for the type");
    let again = t.post("/v0/events", event.clone()).await;
    assert_eq!((again.status, &again.body["id"]), (StatusCode::ACCEPTED, &r.body["id"]));
    assert!(again
        .headers
        .iter()
        .any(|(k, v)| k == "idempotent-replayed" && v == "true"));
    assert_eq!(balance(&t, &a).await, json!(97.5), "burned once");
    assert_eq!(
        balance(&t, &b).await,
        json!(100),
        "one event is charged on one entitlement"
    );
    assert_eq!(balance(&t, &elsewhere).await, json!(100));

    let mut reused = event.clone();
    reused["data"]["usage"]["tokens"] = json!(3);
    let r = t.post("/v0/events", reused).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);

    let kept = [
        (
            json!({"type": "ai.other", "source": "s", "subject": "cus_ing", "data": {}}),
            "unmetered",
        ),
        (
            json!({"type": "ai.inference", "source": "s", "externalSubject": "cus_nobody", "data": {"usage": {"tokens": 1}}}),
            "no_entitlement",
        ),
        (
            json!({"type": "ai.inference", "source": "s", "subject": "cus_ing", "data": {"usage": {"tokens": 1}},
                "timestamp": "2025-12-31T00:00:00Z"}),
            "before_meter",
        ),
    ];
    for (body, status) in kept {
        let r = t.post("/v0/events", body.clone()).await;
        assert_eq!(
            (r.status, &r.body["status"]),
            (StatusCode::ACCEPTED, &json!(status)),
            "{body}"
        );
    }
    assert_eq!(balance(&t, &a).await, json!(97.5));
}

#[tokio::test]
async fn a_bad_event_is_a_400_naming_the_field_and_nothing_is_burned() {
    let t = spawn_app().await;
    let mut from_2026 = tokens(&t);
    from_2026["eventFrom"] = json!("2026-01-01T00:00:00Z");
    t.post("/v0/billableMetrics", from_2026).await;
    let ent = funded(&t, "cus_bad", "ai.inference").await;
    let ok = json!({"type": "ai.inference", "source": "s", "subject": "cus_bad", "data": {"usage": {"tokens": 1}}});
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    let without = |k: &str| {
        let mut b = ok.clone();
        b.as_object_mut().unwrap().remove(k);
        b
    };
    let cases = [
        (without("type"), "type"),
        (without("source"), "source"),
        (without("data"), "data"),
        (with("data", json!([1])), "data"),
        (without("subject"), "subject"),
        (with("timestamp", json!("2999-01-01T00:00:00Z")), "timestamp"),
        (with("timestamp", json!("soon")), "timestamp"),
        (with("data", json!({"usage": {}})), "data.usage.tokens"),
        (with("data", json!({"usage": {"tokens": "many"}})), "data.usage.tokens"),
        (with("data", json!({"usage": {"tokens": -1}})), "data.usage.tokens"),
        (with("idempotencyKey", json!("")), "idempotencyKey"),
        (with("source", json!("s".repeat(256))), "source"),
        (with("externalId", json!("bad\u{0}id")), "externalId"),
    ];
    for (body, field) in cases {
        let r = t.post("/v0/events", body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
        assert!(
            r.body["errors"].as_array().unwrap().iter().any(|e| e["field"] == field),
            "{body}: {}",
            r.body
        );
    }
    let r = t.post("/v0/events", with("namespace", json!("someone-else"))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let as_member = t
        .raw(
            Method::POST,
            "/v0/events",
            Key::Bearer(&t.member_key),
            ok.to_string().as_bytes(),
        )
        .await;
    assert_eq!(as_member.status, StatusCode::FORBIDDEN);
    assert_eq!(balance(&t, &ent).await, json!(100), "nothing burned");
}
