//! Input a client can send: always a 4xx JSON error naming what is wrong, and nothing written.
use crate::helpers::{spawn_app, Key};
use http::{Method, StatusCode};
use serde_json::json;

/// (body, the field the error must name)
fn bad_grant_bodies() -> Vec<(Vec<u8>, &'static str)> {
    let j = |v: serde_json::Value| v.to_string().into_bytes();
    let long_key = "k".repeat(256);
    vec![
        (b"{not json".to_vec(), "body"),
        (b"".to_vec(), "body"),
        (b"[1,2]".to_vec(), "body"),
        (b"\"amount\"".to_vec(), "body"),
        (j(json!({"idempotencyKey": "k"})), "amount"),
        (j(json!({"amount": null, "idempotencyKey": "k"})), "amount"),
        (j(json!({"amount": "500", "idempotencyKey": "k"})), "amount"),
        (j(json!({"amount": true, "idempotencyKey": "k"})), "amount"),
        (j(json!({"amount": 0, "idempotencyKey": "k"})), "amount"),
        (j(json!({"amount": -5, "idempotencyKey": "k"})), "amount"),
        (j(json!({"amount": 1e300, "idempotencyKey": "k"})), "amount"),
        (b"{\"amount\": 1e99999, \"idempotencyKey\": \"k\"}".to_vec(), "amount"),
        (
            b"{\"amount\": 123456789012345678901234567890123456789, \"idempotencyKey\": \"k\"}".to_vec(),
            "amount",
        ),
        (
            j(json!({"amount": 10000000000000001u64, "idempotencyKey": "k"})),
            "amount",
        ),
        (j(json!({"amount": 5})), "idempotencyKey"),
        (j(json!({"amount": 5, "idempotencyKey": ""})), "idempotencyKey"),
        (j(json!({"amount": 5, "idempotencyKey": 7})), "idempotencyKey"),
        (j(json!({"amount": 5, "idempotencyKey": long_key})), "idempotencyKey"),
        (
            j(json!({"amount": 5, "idempotencyKey": "k", "effectiveAt": "yesterday"})),
            "effectiveAt",
        ),
        (
            j(json!({"amount": 5, "idempotencyKey": "k", "effectiveAt": "2026-02-30T00:00:00Z"})),
            "effectiveAt",
        ),
        (
            j(json!({"amount": 5, "idempotencyKey": "k", "expiresAt": 12345})),
            "expiresAt",
        ),
        (
            j(
                json!({"amount": 5, "idempotencyKey": "k", "effectiveAt": "2030-01-02T00:00:00Z", "expiresAt": "2030-01-01T00:00:00Z"}),
            ),
            "expiresAt",
        ),
        (
            j(json!({"amount": 5, "idempotencyKey": "k", "expiresAt": "1999-01-01T00:00:00Z"})),
            "expiresAt",
        ),
        (
            j(json!({"amount": 5, "idempotencyKey": "k", "priority": 1.5})),
            "priority",
        ),
        (
            j(json!({"amount": 5, "idempotencyKey": "k", "priority": "high"})),
            "priority",
        ),
        (
            j(json!({"amount": 5, "idempotencyKey": "k", "resetMaxRollover": -1})),
            "resetMaxRollover",
        ),
        (
            j(json!({"amount": 5, "idempotencyKey": "k", "resetMinRollover": 10, "resetMaxRollover": 5})),
            "resetMinRollover",
        ),
    ]
}

#[tokio::test]
async fn bad_grant_bodies_are_400_naming_the_field_and_write_nothing() {
    let t = spawn_app().await;
    let ent = t.entitlement().await;
    let path = format!("/v1/entitlements/{ent}/grants");
    for (body, field) in bad_grant_bodies() {
        let r = t.raw(Method::POST, &path, Key::Bearer(&t.admin_key), &body).await;
        let shown = String::from_utf8_lossy(&body).chars().take(80).collect::<String>();
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{shown} -> {}", r.body);
        assert_eq!(r.body["error"], "validation_error", "{shown}");
        assert!(
            r.body["message"].as_str().unwrap().contains(field),
            "{shown} -> {}",
            r.body
        );
        let fields: Vec<_> = r.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].clone())
            .collect();
        assert!(fields.contains(&json!(field)), "{shown} -> {}", r.body);
    }
    assert!(t.all_grants(&ent).await.is_empty());
}

#[tokio::test]
async fn every_bad_field_is_named_at_once() {
    let t = spawn_app().await;
    let ent = t.entitlement().await;
    let r = t
        .post(
            &format!("/v1/entitlements/{ent}/grants"),
            json!({"amount": -1, "effectiveAt": "x"}),
        )
        .await;
    let fields: Vec<_> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["amount", "idempotencyKey", "effectiveAt"]);
    assert!(r.body["errors"][0]["code"].is_string());
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let t = spawn_app().await;
    let ent = t.entitlement().await;
    let huge = format!(
        r#"{{"amount": 5, "idempotencyKey": "{}"}}"#,
        "x".repeat(10 * 1024 * 1024)
    );
    let r = t
        .raw(
            Method::POST,
            &format!("/v1/entitlements/{ent}/grants"),
            Key::Bearer(&t.admin_key),
            huge.as_bytes(),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.body["message"].is_string());
    assert!(t.all_grants(&ent).await.is_empty());
}

#[tokio::test]
async fn bad_query_parameters_are_400_naming_them() {
    let t = spawn_app().await;
    let ent = t.entitlement().await;
    for (q, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=abc", "limit"),
        ("offset=-1", "offset"),
        ("includeVoided=maybe", "includeVoided"),
    ] {
        let r = t.get(&format!("/v1/entitlements/{ent}/grants?{q}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}");
        assert_eq!(r.body["errors"][0]["field"], field);
    }
    let r = t.get("/v1/entitlements?limit=1000").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn unknown_routes_and_malformed_ids_are_json_404() {
    let t = spawn_app().await;
    for (m, p) in [
        (Method::GET, "/v1/nothing-here"),
        (Method::PATCH, "/v1/entitlements"),
        (Method::GET, "/v1/entitlements/../../etc/passwd"),
        (Method::GET, "/v1/entitlements/%00"),
        (Method::GET, "/v1/entitlements/ent_with%2Fslash"),
        (Method::DELETE, "/v1/entitlements/ent_x/grants/grt_%F0%9F%92%A5"),
        (Method::POST, "/v1/entitlements/not-an-id/cancel"),
        (Method::POST, "/v1/entitlements/ent_01MISSING0000000000000000/cancel"),
    ] {
        let r = t.raw(m.clone(), p, Key::Bearer(&t.admin_key), b"").await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{m} {p}");
        assert!(r.body["message"].is_string());
    }
}
