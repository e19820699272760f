//! Webhook configuration (`/v0/webhooks`) on DynamoDB Local: enabled once (a second enable is 400
//! `DUPLICATE_RESOURCE`), paused and resumed keeping its application, 404 before it exists and for
//! another organization, admin only to change, and bad input named in a 400 with nothing written.
use crate::helpers::{spawn_app, Key};
use http::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn webhooks_are_enabled_once_then_paused_and_resumed() {
    let t = spawn_app().await;
    let before = t.get("/v0/webhooks").await;
    assert_eq!(before.status, StatusCode::NOT_FOUND, "{}", before.body);
    assert_eq!(before.body["code"], "webhooks_not_enabled");
    for method in [Method::PATCH, Method::DELETE] {
        let body = (method == Method::PATCH).then(|| json!({"enabled": true}));
        let r = t.call(method.clone(), "/v0/webhooks", body).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{method}: {}", r.body);
    }

    let enabled = t.call(Method::POST, "/v0/webhooks", None).await;
    assert_eq!(enabled.status, StatusCode::CREATED, "{}", enabled.body);
    let c = &enabled.body;
    assert_eq!(c["object"], "webhooks");
    assert_eq!(c["enabled"], true);
    assert_eq!(c["merchantId"], t.tenant.as_str());
    let app = c["applicationId"].as_str().unwrap();
    assert!(app.starts_with("app_") && app.len() == 30, "{app}");
    assert_eq!(c["createdAt"], c["updatedAt"]);
    let keys: Vec<&String> = c.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "applicationId",
            "createdAt",
            "enabled",
            "merchantId",
            "object",
            "updatedAt"
        ]
    );

    let again = t.call(Method::POST, "/v0/webhooks", None).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "{}", again.body);
    assert_eq!(again.body["code"], "DUPLICATE_RESOURCE");
    let got = t.get(&format!("/v0/webhooks?merchantId={}", t.tenant.as_str())).await;
    assert_eq!(
        (got.status, &got.body),
        (StatusCode::OK, c),
        "the first configuration stays"
    );

    let paused = t.call(Method::DELETE, "/v0/webhooks", None).await;
    assert_eq!(paused.status, StatusCode::NO_CONTENT);
    assert_eq!(paused.body, Value::Null);
    let got = t.get("/v0/webhooks").await;
    assert_eq!(got.body["enabled"], false);
    assert_eq!(got.body["applicationId"], app, "pausing keeps the application");

    let resumed = t
        .call(Method::PATCH, "/v0/webhooks", Some(json!({"enabled": true})))
        .await;
    assert_eq!(resumed.status, StatusCode::OK, "{}", resumed.body);
    assert_eq!(resumed.body["enabled"], true);
    assert_eq!(resumed.body["applicationId"], app);
    assert_eq!(resumed.body["createdAt"], c["createdAt"]);
    let again = t.call(Method::POST, "/v0/webhooks", None).await;
    assert_eq!(
        again.body["code"], "DUPLICATE_RESOURCE",
        "paused or not, enable is once"
    );
}

#[tokio::test]
async fn another_organization_is_not_found_and_a_member_only_reads() {
    let t = spawn_app().await;
    let enabled = t.call(Method::POST, "/v0/webhooks?merchantId=someone-else", None).await;
    assert_eq!(enabled.status, StatusCode::NOT_FOUND, "{}", enabled.body);
    assert_eq!(enabled.body["code"], "merchant_not_found");
    assert_eq!(
        t.get("/v0/webhooks").await.status,
        StatusCode::NOT_FOUND,
        "nothing written"
    );
    assert_eq!(
        t.call(Method::POST, "/v0/webhooks", None).await.status,
        StatusCode::CREATED
    );
    let other = t.get("/v0/webhooks?merchantId=someone-else").await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    let r = t
        .raw(Method::GET, "/v0/webhooks", Key::Bearer(&t.member_key), b"")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for method in [Method::POST, Method::PATCH, Method::DELETE] {
        let r = t
            .raw(
                method.clone(),
                "/v0/webhooks",
                Key::Bearer(&t.member_key),
                br#"{"enabled":false}"#,
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{method}: {}", r.body);
    }
    assert_eq!(t.get("/v0/webhooks").await.body["enabled"], true);
}

#[tokio::test]
async fn a_bad_update_names_the_field_and_writes_nothing() {
    let t = spawn_app().await;
    assert_eq!(
        t.call(Method::POST, "/v0/webhooks", None).await.status,
        StatusCode::CREATED
    );
    let before = t.get("/v0/webhooks").await.body;
    for (body, field, code) in [
        (json!({}), "enabled", "required"),
        (json!({"enabled": "false"}), "enabled", "invalid_type"),
        (json!({"enabled": null}), "enabled", "required"),
    ] {
        let r = t.call(Method::PATCH, "/v0/webhooks", Some(body.clone())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
        assert_eq!(r.body["errors"][0]["field"], field, "{body}: {}", r.body);
        assert_eq!(r.body["errors"][0]["code"], code, "{body}: {}", r.body);
    }
    let r = t
        .raw(Method::PATCH, "/v0/webhooks", Key::Bearer(&t.admin_key), b"{not json")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(t.get("/v0/webhooks").await.body, before, "nothing written");
}
