use crate::helpers::{spawn_app, TestApp, TestResponse};
use http::StatusCode;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::Arc;

/// Sends `n` grant creates to one entitlement at once, from several threads; body `i` is `body(i)`.
async fn concurrent_creates(t: &Arc<TestApp>, ent: &str, n: usize, body: fn(usize) -> Value) -> Vec<TestResponse> {
    let path = format!("/v1/entitlements/{ent}/grants");
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (t, path) = (Arc::clone(t), path.clone());
            tokio::spawn(async move { t.post(&path, body(i)).await })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_identical_creates_make_exactly_one_grant() {
    let t = Arc::new(spawn_app().await);
    let ent = t.entitlement().await;
    let mut ids = HashSet::new();
    for r in concurrent_creates(&t, &ent, 50, |_| json!({"amount": 42, "idempotencyKey": "burst"})).await {
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        ids.insert(r.body["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1, "all 50 answers carry the same grant");
    let grants = t.all_grants(&ent).await;
    assert_eq!(grants.len(), 1);
    assert!(ids.contains(grants[0]["id"].as_str().unwrap()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_distinct_creates_make_fifty_grants() {
    let t = Arc::new(spawn_app().await);
    let ent = t.entitlement().await;
    for r in concurrent_creates(
        &t,
        &ent,
        50,
        |i| json!({"amount": 1, "idempotencyKey": format!("k{i}")}),
    )
    .await
    {
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    assert_eq!(t.all_grants(&ent).await.len(), 50);
    assert_eq!(
        t.get(&format!("/v1/entitlements/{ent}")).await.body["balance"],
        json!(50)
    );
}
