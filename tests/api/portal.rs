//! The webhook portal on DynamoDB Local: Paygentic's `GET /v0/webhooks/portal` link (admin, 404
//! before webhooks are enabled), and the page it opens (no API key): one tenant's endpoints only,
//! every change through a form, bad input a 400 page naming the field with nothing written, an
//! unknown token a 404 page. The page as a person uses it: tests/browser/portal.test.mjs.
use crate::helpers::{spawn_app, Key, TestApp};
use http::{Method, StatusCode};
use serde_json::json;

/// A portal link's path for the tenant (webhooks enabled first).
async fn portal_path(t: &TestApp) -> (String, String) {
    let enabled = t.call(Method::POST, "/v0/webhooks", None).await;
    assert_eq!(enabled.status, StatusCode::CREATED, "{}", enabled.body);
    let link = t.call(Method::GET, "/v0/webhooks/portal", None).await;
    assert_eq!(link.status, StatusCode::OK, "{}", link.body);
    assert_eq!(link.body["object"], "webhookPortal");
    assert!(link.body["expiresAt"].as_str().is_some());
    let url = link.body["url"].as_str().unwrap();
    let path = format!("/webhooks/portal/{}", url.rsplit('/').next().unwrap());
    assert!(url.ends_with(&path), "{url}");
    (path, enabled.body["applicationId"].as_str().unwrap().to_owned())
}

async fn page(t: &TestApp, path: &str) -> (StatusCode, String) {
    let r = t.raw(Method::GET, path, Key::None, b"").await;
    (r.status, r.body.as_str().unwrap_or_default().to_owned())
}

async fn post(t: &TestApp, path: &str, form: &str) -> (StatusCode, Option<String>, String) {
    let r = t
        .raw_with(
            Method::POST,
            path,
            Key::None,
            form.as_bytes(),
            &[("content-type", "application/x-www-form-urlencoded")],
        )
        .await;
    (
        r.status,
        r.header("location").map(str::to_owned),
        r.body.as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn the_link_needs_webhooks_enabled_an_admin_key_and_the_tenants_own_merchant_id() {
    let t = spawn_app().await;
    let before = t.call(Method::GET, "/v0/webhooks/portal", None).await;
    assert_eq!(before.status, StatusCode::NOT_FOUND, "{}", before.body);
    let member = t
        .raw(Method::GET, "/v0/webhooks/portal", Key::Bearer(&t.member_key), b"")
        .await;
    assert_eq!(member.status, StatusCode::FORBIDDEN);
    portal_path(&t).await;
    let other = t
        .call(Method::GET, "/v0/webhooks/portal?merchantId=someone-else", None)
        .await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_page_manages_endpoints_through_forms() {
    let t = spawn_app().await;
    let (path, _) = portal_path(&t).await;
    let (status, html) = page(&t, &path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("id=\"no-endpoints\""), "{html}");
    assert!(html.contains("invoice.paid.v0") && html.contains("grant.voided.v0"));

    // Add, with one event type.
    let (status, location, _) = post(
        &t,
        &path,
        "action=add&url=https%3A%2F%2Fexample.com%2Fhooks&description=prod&types=invoice.paid.v0",
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location.as_deref(), Some(format!("{path}?done=added").as_str()));
    let (_, html) = page(&t, &format!("{path}?done=added")).await;
    assert!(html.contains("Endpoint added."));
    let id = html
        .split("class=\"endpoint\" id=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    assert!(id.starts_with("ep_"));

    // Bad input: a 400 page naming the field; nothing written.
    let (status, _, html) = post(&t, &path, "action=add&url=ftp%3A%2F%2Fexample.com").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("URL:"), "{html}");
    let (status, _, html) = post(
        &t,
        &path,
        "action=add&url=https%3A%2F%2Fexample.com%2Fb&types=not%20a%20type",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("Event type"), "{html}");
    assert_eq!(html.matches("class=\"endpoint\"").count(), 1, "nothing written");
    let (status, _, _) = post(&t, &path, "action=explode").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Update: URL, every type, disabled.
    let (status, _, _) = post(
        &t,
        &path,
        &format!("action=update&endpoint={id}&url=https%3A%2F%2Fexample.com%2Fv2&description=v2&disabled=on"),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, html) = page(&t, &path).await;
    assert!(html.contains("https://example.com/v2") && html.contains("Disabled"));

    // Reveal, then rotate: another secret.
    let (status, _, html) = post(&t, &path, &format!("action=reveal&endpoint={id}")).await;
    assert_eq!(status, StatusCode::OK);
    let secret = |html: &str| {
        html.split("class=\"secret\">")
            .nth(1)
            .and_then(|r| r.split('<').next())
            .map(str::to_owned)
    };
    let first = secret(&html).unwrap();
    assert!(first.starts_with("whsec_"));
    assert_eq!(
        post(&t, &path, &format!("action=rotate&endpoint={id}")).await.0,
        StatusCode::SEE_OTHER
    );
    let (_, _, html) = post(&t, &path, &format!("action=reveal&endpoint={id}")).await;
    assert_ne!(secret(&html).unwrap(), first);
    let (_, html) = page(&t, &path).await;
    assert!(secret(&html).is_none(), "a secret shows only when revealed");

    // Resend to the disabled endpoint: refused; once enabled, an unknown message is a 404 page.
    let resend = format!("action=resend&endpoint={id}&message=msg_grant_created_01UNKNOWN");
    let (status, _, html) = post(&t, &path, &resend).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("enable it before resending"), "{html}");
    let (status, _, _) = post(
        &t,
        &path,
        &format!("action=update&endpoint={id}&url=https%3A%2F%2Fexample.com%2Fv2&description=v2"),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = post(&t, &path, &resend).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Delete.
    assert_eq!(
        post(&t, &path, &format!("action=delete&endpoint={id}")).await.0,
        StatusCode::SEE_OTHER
    );
    let (_, html) = page(&t, &path).await;
    assert!(html.contains("id=\"no-endpoints\""));
    let (status, _, _) = post(&t, &path, &format!("action=delete&endpoint={id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_link_shows_and_changes_only_its_own_tenants_endpoints() {
    let (a, b) = (spawn_app().await, spawn_app().await);
    let (path_a, _) = portal_path(&a).await;
    let (_, app_b) = portal_path(&b).await;
    let theirs = b
        .post(
            &format!("/api/v1/app/{app_b}/endpoint"),
            json!({"url": "https://example.com/b-only"}),
        )
        .await;
    assert_eq!(theirs.status, StatusCode::CREATED);
    let their_id = theirs.body["id"].as_str().unwrap();
    let (_, html) = page(&a, &path_a).await;
    assert!(!html.contains("b-only"));
    let (status, _, _) = post(&a, &path_a, &format!("action=delete&endpoint={their_id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let still = b
        .call(Method::GET, &format!("/api/v1/app/{app_b}/endpoint/{their_id}"), None)
        .await;
    assert_eq!(still.status, StatusCode::OK, "another tenant's endpoint is untouched");
}

#[tokio::test]
async fn an_unknown_or_malformed_token_is_a_404_page() {
    let t = spawn_app().await;
    for token in ["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "short", "%3Cscript%3E"] {
        let (status, html) = page(&t, &format!("/webhooks/portal/{token}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{token}");
        assert!(html.contains("not valid"));
        let (status, _, _) = post(
            &t,
            &format!("/webhooks/portal/{token}"),
            "action=add&url=https%3A%2F%2Fx.example",
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}
