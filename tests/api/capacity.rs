//! Capacity grants (`/v2/grants`) on the real local DynamoDB: every rule of the document, bad input,
//! roles and tenants, and concurrent resells.
use crate::helpers::{now_plus, spawn_app, Key, TestApp, TestResponse};
use http::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

fn body() -> Value {
    json!({
        "kind": "gpu",
        "cluster": "us-east-1a",
        "quantity": 10,
        "starts_at": now_plus(-86_400).to_rfc3339(),
        "ends_at": now_plus(30 * 86_400).to_rfc3339(),
        "unit_price": "2.50",
        "early_termination_buyback_price": "1.250",
        "flexible_usage_buyback_price": "0.75",
    })
}

impl TestApp {
    async fn capacity(&self, b: Value) -> String {
        let r = self.post("/v2/grants", b).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["fid"].as_str().unwrap().to_owned()
    }
    async fn capacity_list(&self, query: &str) -> Vec<Value> {
        let r = self.get(&format!("/v2/grants{query}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body["items"].as_array().unwrap().clone()
    }
    async fn resell(&self, fid: &str, q: Value) -> TestResponse {
        self.post(&format!("/v2/grants/{fid}/resell"), json!({ "new_quantity": q }))
            .await
    }
}

fn fids(items: &[Value]) -> Vec<&str> {
    items.iter().map(|g| g["fid"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn create_keeps_prices_exactly_and_lists_current_grants() {
    let t = spawn_app().await;
    let r = t.post("/v2/grants", body()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["object"], "grant");
    assert_eq!(
        (
            r.body["unit_price"].clone(),
            r.body["early_termination_buyback_price"].clone(),
            r.body["quantity"].clone()
        ),
        (json!("2.50"), json!("1.250"), json!(10))
    );
    assert_eq!(r.body["deleted_at"], json!(null));
    let fid = r.body["fid"].as_str().unwrap().to_owned();
    let mut cpu = body();
    cpu["kind"] = json!("cpu");
    cpu["cluster"] = json!("eu-west-1b");
    let cpu = t.capacity(cpu).await;
    let mut old = body();
    old["starts_at"] = json!(now_plus(-10 * 86_400).to_rfc3339());
    old["ends_at"] = json!(now_plus(-86_400).to_rfc3339());
    let expired = t.capacity(old).await;

    assert_eq!(fids(&t.capacity_list("").await), vec![fid.as_str(), cpu.as_str()]);
    assert_eq!(fids(&t.capacity_list("?cluster=us-east-1a").await), vec![fid.as_str()]);
    assert_eq!(fids(&t.capacity_list("?kinds=cpu,tpu").await), vec![cpu.as_str()]);
    assert_eq!(
        fids(&t.capacity_list("?kinds=gpu,cpu").await),
        vec![fid.as_str(), cpu.as_str()]
    );
    assert_eq!(
        fids(&t.capacity_list("?show_expired=true").await),
        vec![fid.as_str(), cpu.as_str(), expired.as_str()]
    );
    let prices = t.capacity_list("").await;
    assert_eq!(prices[0]["flexible_usage_buyback_price"], "0.75");
}

#[tokio::test]
async fn delete_is_soft_and_idempotent() {
    let t = spawn_app().await;
    let fid = t.capacity(body()).await;
    let d = t.delete(&format!("/v2/grants/{fid}")).await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.body);
    let at = d.body["deleted_at"].clone();
    assert!(at.is_string());
    let again = t.delete(&format!("/v2/grants/{fid}")).await;
    assert_eq!((again.status, again.body["deleted_at"].clone()), (StatusCode::OK, at));
    assert!(t.capacity_list("").await.is_empty());
    assert_eq!(
        fids(&t.capacity_list("?show_expired=true").await),
        vec![fid.as_str()],
        "the row stays"
    );
    assert_eq!(
        t.delete("/v2/grants/cap_01NOSUCHGRANT000000000000").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(t.delete("/v2/grants/nonsense").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn resell_replaces_the_grant_with_a_smaller_one_from_now_to_the_old_end() {
    let t = spawn_app().await;
    let b = body();
    let fid = t.capacity(b.clone()).await;
    let r = t.resell(&fid, json!(4)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let new = r.body.clone();
    assert_eq!(new["quantity"], json!(4));
    assert_eq!(new["ends_at"], b["ends_at"]);
    assert_eq!(new["resold_from"], json!(fid));
    assert_eq!(new["unit_price"], "2.50");
    let new_fid = new["fid"].as_str().unwrap();
    assert_ne!(new_fid, fid);
    let old = &new["replaced_grant"];
    assert_eq!(
        old["deleted_at"], new["starts_at"],
        "the old grant is deleted at the new one's start"
    );
    assert_eq!(old["resold_to"], json!(new_fid));
    assert!(old["quantity"] == json!(10));
    // Listing shows only the replacement; show_expired shows both, linked both ways.
    assert_eq!(fids(&t.capacity_list("").await), vec![new_fid]);
    let all = t.capacity_list("?show_expired=true").await;
    assert_eq!(all.len(), 2);
    assert_eq!(all[0]["resold_to"], json!(new_fid));
    // The replacement can itself be resold.
    assert_eq!(t.resell(new_fid, json!(1)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn resell_refuses_bad_quantities_and_dead_grants() {
    let t = spawn_app().await;
    let fid = t.capacity(body()).await;
    for q in [
        json!(0),
        json!(10),
        json!(11),
        json!(-1),
        json!(2.5),
        json!("3"),
        json!(null),
    ] {
        let r = t.resell(&fid, q.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q} -> {}", r.body);
        assert_eq!(r.body["errors"][0]["field"], "new_quantity", "{q}");
    }
    let r = t
        .raw(
            Method::POST,
            &format!("/v2/grants/{fid}/resell"),
            Key::Bearer(&t.admin_key),
            b"nope",
        )
        .await;
    assert_eq!(r.body["errors"][0]["field"], "body");

    let resold = t.resell(&fid, json!(5)).await;
    assert_eq!(resold.status, StatusCode::OK);
    let again = t.resell(&fid, json!(2)).await;
    assert_eq!(
        (again.status, again.body["code"].clone()),
        (StatusCode::CONFLICT, json!("grant_already_resold"))
    );

    let deleted = t.capacity(body()).await;
    t.delete(&format!("/v2/grants/{deleted}")).await;
    let r = t.resell(&deleted, json!(2)).await;
    assert_eq!(
        (r.status, r.body["code"].clone()),
        (StatusCode::CONFLICT, json!("grant_deleted"))
    );

    let mut b = body();
    b["starts_at"] = json!(now_plus(-10 * 86_400).to_rfc3339());
    b["ends_at"] = json!(now_plus(-60).to_rfc3339());
    let expired = t.capacity(b).await;
    let r = t.resell(&expired, json!(2)).await;
    assert_eq!(
        (r.status, r.body["code"].clone()),
        (StatusCode::CONFLICT, json!("grant_expired"))
    );
    assert_eq!(
        t.resell("cap_01NOSUCHGRANT000000000000", json!(1)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        t.capacity_list("?show_expired=true").await.len(),
        4,
        "nothing else was written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_concurrent_resells_one_wins_the_other_is_409() {
    let t = Arc::new(spawn_app().await);
    for round in 0..5 {
        let fid = t.capacity(body()).await;
        let tasks: Vec<_> = [3, 6]
            .into_iter()
            .map(|q| {
                let (t, fid) = (Arc::clone(&t), fid.clone());
                tokio::spawn(async move { t.resell(&fid, json!(q)).await })
            })
            .collect();
        let mut statuses = Vec::new();
        for task in tasks {
            statuses.push(task.await.unwrap().status);
        }
        statuses.sort();
        assert_eq!(statuses, vec![StatusCode::OK, StatusCode::CONFLICT], "round {round}");
        let all = t.capacity_list("?show_expired=true").await;
        let replacements = all.iter().filter(|g| g["resold_from"] == json!(fid)).count();
        assert_eq!(replacements, 1, "round {round}: exactly one replacement");
    }
}

#[tokio::test]
async fn bad_bodies_are_400_naming_the_field_and_write_nothing() {
    let t = spawn_app().await;
    let set = |k: &str, v: Value| {
        let mut b = body();
        if v.is_null() {
            b.as_object_mut().unwrap().remove(k);
        } else {
            b[k] = v;
        }
        b
    };
    let cases: Vec<(Value, &str)> = vec![
        (set("kind", Value::Null), "kind"),
        (set("kind", json!("")), "kind"),
        (set("cluster", json!(7)), "cluster"),
        (set("quantity", Value::Null), "quantity"),
        (set("quantity", json!(0)), "quantity"),
        (set("quantity", json!(1.5)), "quantity"),
        (set("quantity", json!("10")), "quantity"),
        (set("ends_at", Value::Null), "ends_at"),
        (set("ends_at", json!("later")), "ends_at"),
        (set("ends_at", json!(now_plus(-2 * 86_400).to_rfc3339())), "ends_at"),
        (set("starts_at", json!("2026-13-01T00:00:00Z")), "starts_at"),
        (set("unit_price", Value::Null), "unit_price"),
        (set("unit_price", json!("-1")), "unit_price"),
        (set("unit_price", json!("abc")), "unit_price"),
        (set("unit_price", json!("1e3")), "unit_price"),
        (set("unit_price", json!(true)), "unit_price"),
        (
            set("early_termination_buyback_price", json!("2.51")),
            "early_termination_buyback_price",
        ),
        (
            set("flexible_usage_buyback_price", json!("9")),
            "flexible_usage_buyback_price",
        ),
        (
            set("flexible_usage_buyback_price", json!("0.0000000000001")),
            "flexible_usage_buyback_price",
        ),
    ];
    for (b, field) in cases {
        let r = t.post("/v2/grants", b.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{b} -> {}", r.body);
        assert!(
            r.body["errors"].as_array().unwrap().iter().any(|e| e["field"] == field),
            "{field}: {}",
            r.body
        );
    }
    for q in ["?show_expired=maybe"] {
        let r = t.get(&format!("/v2/grants{q}")).await;
        assert_eq!(
            (r.status, r.body["errors"][0]["field"].clone()),
            (StatusCode::BAD_REQUEST, json!("show_expired"))
        );
    }
    assert!(t.capacity_list("?show_expired=true").await.is_empty());
    // A number is accepted as a price and kept as written.
    let raw = body().to_string().replace("\"2.50\"", "3.10");
    let r = t
        .raw(Method::POST, "/v2/grants", Key::Bearer(&t.admin_key), raw.as_bytes())
        .await;
    assert_eq!(
        (r.status, r.body["unit_price"].clone()),
        (StatusCode::CREATED, json!("3.10")),
        "{raw}"
    );
}

#[tokio::test]
async fn members_only_list_and_other_organizations_get_404() {
    let t = spawn_app().await;
    let other = spawn_app().await;
    let fid = t.capacity(body()).await;
    let m = Key::Bearer(&t.member_key);
    let b = body().to_string();
    assert_eq!(
        t.raw(Method::POST, "/v2/grants", m, b.as_bytes()).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        t.raw(Method::DELETE, &format!("/v2/grants/{fid}"), m, b"").await.status,
        StatusCode::FORBIDDEN
    );
    let resell = json!({"new_quantity": 2}).to_string();
    let r = t
        .raw(Method::POST, &format!("/v2/grants/{fid}/resell"), m, resell.as_bytes())
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(t.raw(Method::GET, "/v2/grants", m, b"").await.status, StatusCode::OK);

    assert_eq!(
        other.delete(&format!("/v2/grants/{fid}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(other.resell(&fid, json!(2)).await.status, StatusCode::NOT_FOUND);
    assert!(other.capacity_list("?show_expired=true").await.is_empty());
    let mine = t.capacity_list("").await;
    assert_eq!(
        (mine.len(), mine[0]["deleted_at"].clone(), mine[0]["quantity"].clone()),
        (1, json!(null), json!(10))
    );
}

#[tokio::test]
async fn an_idempotency_key_makes_a_retried_create_return_the_first_grant() {
    let t = spawn_app().await;
    let send = |b: Value, key: &'static str| {
        let t = &t;
        async move {
            let bytes = b.to_string();
            t.raw_with(
                Method::POST,
                "/v2/grants",
                Key::Bearer(&t.admin_key),
                bytes.as_bytes(),
                &[("idempotency-key", key)],
            )
            .await
        }
    };
    let b = body();
    let first = send(b.clone(), "order-7").await;
    let again = send(b.clone(), "order-7").await;
    assert_eq!((first.status, again.status), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!(first.body["fid"], again.body["fid"]);
    let mut other = b.clone();
    other["quantity"] = json!(11);
    let clash = send(other, "order-7").await;
    assert_eq!(clash.status, StatusCode::CONFLICT, "{}", clash.body);
    assert_eq!(clash.body["details"]["differingFields"], json!(["quantity"]));
    assert_eq!(t.capacity_list("").await.len(), 1);
    let bad = send(body(), "").await;
    assert_eq!(
        (bad.status, bad.body["errors"][0]["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("Idempotency-Key"))
    );
}
