use crate::helpers::{spawn_app, Key};
use http::{Method, StatusCode};
use serde_json::json;

/// Every key the Paygentic SDK requires of a metered entitlement.
const ENTITLEMENT_KEYS: &[&str] = &[
    "customerId",
    "featureId",
    "featureKey",
    "featureType",
    "productId",
    "subscriptionId",
    "status",
    "activeFrom",
    "activeTo",
    "hasAccess",
    "metadata",
    "config",
    "isSoftLimit",
    "balance",
    "usageInPeriod",
    "overage",
    "pricingUnitId",
    "currentPeriodStart",
    "currentPeriodEnd",
];

#[tokio::test]
async fn provision_get_and_list() {
    let t = spawn_app().await;
    let r = t
        .post(
            "/v1/entitlements",
            json!({
                "customerId": "cus_1", "featureKey": "tokens", "subscriptionId": "sub_9",
                "currentPeriodStart": "2026-11-01T00:00:00Z", "currentPeriodEnd": "2026-12-01T00:00:00Z",
                "metadata": {"tier": "pro"}
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("ent_"));
    let got = t.get(&format!("/v1/entitlements/{id}")).await;
    assert_eq!(got.status, StatusCode::OK);
    for k in ENTITLEMENT_KEYS.iter().chain(&["object", "id"]) {
        assert!(got.body.get(*k).is_some(), "missing {k} in {}", got.body);
    }
    assert_eq!(got.body["object"], "entitlement");
    assert_eq!(got.body["featureType"], "metered");
    assert_eq!(got.body["status"], "active");
    assert_eq!(got.body["hasAccess"], json!(false), "no credits yet");
    assert_eq!(got.body["subscriptionId"], "sub_9");
    assert_eq!(got.body["metadata"], json!({"tier": "pro"}));
    assert_eq!(got.body["currentPeriodStart"], "2026-11-01T00:00:00Z");

    let other = t.entitlement().await;
    let all = t.get("/v1/entitlements").await;
    assert_eq!(all.body["pagination"], json!({"total": 2, "limit": 10, "offset": 0}));
    let mine = t.get("/v1/entitlements?customerId=cus_1").await;
    assert_eq!(mine.body["pagination"]["total"], json!(1));
    let item = &mine.body["data"][0];
    assert_eq!(item["entitlementId"], id.as_str());
    for k in ENTITLEMENT_KEYS {
        assert!(item.get(*k).is_some(), "missing {k} in list item");
    }
    let page = t.get("/v1/entitlements?limit=1&offset=1").await;
    assert_eq!(page.body["data"][0]["entitlementId"], other.as_str());
}

#[tokio::test]
async fn cancel_is_admin_only_and_idempotent() {
    let t = spawn_app().await;
    let id = t.entitlement().await;
    let path = format!("/v1/entitlements/{id}/cancel");
    let m = t.raw(Method::POST, &path, Key::Bearer(&t.member_key), b"").await;
    assert_eq!(m.status, StatusCode::FORBIDDEN);
    let a = t.raw(Method::POST, &path, Key::Bearer(&t.admin_key), b"").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let b = t.raw(Method::POST, &path, Key::Bearer(&t.admin_key), b"").await;
    assert_eq!(a.body, b.body);
    assert_eq!(b.body["status"], "canceled");
    assert!(b.body["activeTo"].is_string());
    assert_eq!(b.body["hasAccess"], json!(false));
}

#[tokio::test]
async fn provisioning_validates_its_fields() {
    let t = spawn_app().await;
    let r = t
        .post(
            "/v1/entitlements",
            json!({"featureKey": 5, "currentPeriodStart": "soon"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let fields: Vec<_> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["customerId", "featureKey", "currentPeriodStart"]);
    let r = t
        .post(
            "/v1/entitlements",
            json!({"customerId": "c", "featureKey": "k", "currentPeriodStart": "2026-12-01T00:00:00Z", "currentPeriodEnd": "2026-11-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["errors"][0]["field"], "currentPeriodEnd");
    assert_eq!(t.get("/v1/entitlements").await.body["pagination"]["total"], json!(0));
}

#[tokio::test]
async fn a_period_start_alone_defaults_to_a_calendar_month() {
    let t = spawn_app().await;
    let r = t
        .post(
            "/v1/entitlements",
            json!({"customerId": "c", "featureKey": "k", "currentPeriodStart": "2027-01-31T00:00:00Z"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["currentPeriodEnd"], "2027-02-28T00:00:00Z");
}
