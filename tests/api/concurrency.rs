use crate::helpers::spawn_app;
use http::StatusCode;
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_identical_creates_make_exactly_one_grant() {
    let t = Arc::new(spawn_app().await);
    let ent = t.entitlement().await;
    let path = format!("/v1/entitlements/{ent}/grants");
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (t, path) = (Arc::clone(&t), path.clone());
            tokio::spawn(async move { t.post(&path, json!({"amount": 42, "idempotencyKey": "burst"})).await })
        })
        .collect();
    let mut ids = HashSet::new();
    for task in tasks {
        let r = task.await.unwrap();
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
    let path = format!("/v1/entitlements/{ent}/grants");
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let (t, path) = (Arc::clone(&t), path.clone());
            tokio::spawn(async move { t.post(&path, json!({"amount": 1, "idempotencyKey": format!("k{i}")})).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().status, StatusCode::CREATED);
    }
    assert_eq!(t.all_grants(&ent).await.len(), 50);
    assert_eq!(t.get(&format!("/v1/entitlements/{ent}")).await.body["balance"], json!(50));
}
