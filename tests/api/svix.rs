//! Svix's endpoint management (`/api/v1/app/{app_id}/endpoint...`) on DynamoDB Local: an endpoint
//! created, listed, read, changed, its secret read and rotated, deleted; another application (or
//! another tenant's) is 404; bad input is a 422 in Svix's shape naming the field, nothing written.
use crate::helpers::{spawn_app, Key, TestApp};
use http::{Method, StatusCode};
use serde_json::{json, Value};

async fn application(t: &TestApp) -> String {
    let r = t.call(Method::POST, "/v0/webhooks", None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["applicationId"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_endpoint_is_created_listed_changed_rotated_and_deleted() {
    let t = spawn_app().await;
    let app = application(&t).await;
    let base = format!("/api/v1/app/{app}/endpoint");
    let created = t
        .post(
            &base,
            json!({"url": "https://example.com/hooks", "description": "prod", "eventTypes": ["invoice.paid.v0"]}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let ep = created.body.clone();
    let id = ep["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("ep_"));
    assert_eq!(ep["url"], "https://example.com/hooks");
    assert_eq!(ep["eventTypes"], json!(["invoice.paid.v0"]));
    assert_eq!(ep["filterTypes"], ep["eventTypes"]);
    assert_eq!(ep["metadata"], json!({}));
    assert_eq!(ep["disabled"], false);
    assert!(ep.get("secret").is_none(), "the secret is read on its own");

    let second = t.post(&base, json!({"url": "http://127.0.0.1:9/x"})).await;
    assert_eq!(second.body["eventTypes"], Value::Null, "every type");
    // In id order (creation order, to the millisecond).
    let (low, high) = if id.as_str() < second.body["id"].as_str().unwrap() {
        (&ep, &second.body)
    } else {
        (&second.body, &ep)
    };
    let page = t.get(&format!("{base}?limit=1&order=ascending")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(page.body["data"], json!([low]));
    assert_eq!(page.body["done"], false);
    let next = t
        .get(&format!(
            "{base}?limit=1&order=ascending&iterator={}",
            page.body["iterator"].as_str().unwrap()
        ))
        .await;
    assert_eq!(next.body["data"], json!([high]));
    assert_eq!(next.body["done"], true);
    let back = t
        .get(&format!(
            "{base}?limit=1&order=ascending&iterator={}",
            next.body["prevIterator"].as_str().unwrap()
        ))
        .await;
    assert_eq!(back.body["data"], json!([low]), "prevIterator pages backwards");
    let newest_first = t.get(&base).await;
    assert_eq!(newest_first.body["data"], json!([high, low]));

    let one = format!("{base}/{id}");
    assert_eq!(t.get(&one).await.body, ep);
    let patched = t
        .call(
            Method::PATCH,
            &one,
            Some(json!({"url": "https://example.com/v2", "disabled": true, "eventTypes": null})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.body["url"], "https://example.com/v2");
    assert_eq!(patched.body["disabled"], true);
    assert_eq!(patched.body["eventTypes"], Value::Null);
    assert_eq!(patched.body["description"], "prod", "unchanged when not sent");

    let secret = t.get(&format!("{one}/secret")).await;
    assert_eq!(secret.status, StatusCode::OK, "{}", secret.body);
    let key = secret.body["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("whsec_") && key.len() == 38, "{key}");
    let rotated = t.post(&format!("{one}/secret/rotate"), json!({})).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let new_key = rotated.body["key"].as_str().unwrap();
    assert_ne!(new_key, key);
    assert_eq!(t.get(&format!("{one}/secret")).await.body["key"], new_key);
    let chosen = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let r = t
        .post(
            &format!("{one}/secret/rotate"),
            json!({"key": chosen, "gracePeriodSeconds": 0}),
        )
        .await;
    assert_eq!(
        r.body["key"],
        format!("whsec_{chosen}"),
        "the prefix is optional, as in Svix"
    );

    let deleted = t.delete(&one).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = t.get(&one).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.body, json!({"code": "not_found", "detail": "Endpoint not found"}));
    assert_eq!(t.delete(&one).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn another_application_is_not_found_and_bad_input_is_a_422_naming_the_field() {
    let t = spawn_app().await;
    let app = application(&t).await;
    let other = spawn_app().await;
    let theirs = application(&other).await;
    let r = t
        .post(
            &format!("/api/v1/app/{theirs}/endpoint"),
            json!({"url": "https://example.com"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert_eq!(r.body["code"], "not_found");
    let r = t.get("/api/v1/app/app_nope/endpoint").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let base = format!("/api/v1/app/{app}/endpoint");
    for (body, field) in [
        (json!({}), "url"),
        (json!({"url": "ftp://example.com"}), "url"),
        (json!({"url": "https://user:pw@example.com"}), "url"),
        (json!({"url": "https://example.com", "eventTypes": []}), "eventTypes"),
        (
            json!({"url": "https://example.com", "eventTypes": ["a b"]}),
            "eventTypes[0]",
        ),
        (json!({"url": "https://example.com", "secret": "whsec_short"}), "secret"),
        (json!({"url": "https://example.com", "uid": "mine"}), "uid"),
        (
            json!({"url": format!("https://example.com/{}", "é".repeat(400))}),
            "url",
        ),
        (json!({"url": "https://example.com", "disabled": "yes"}), "disabled"),
    ] {
        let r = t.post(&base, body.clone()).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {}", r.body);
        let loc: Vec<String> = r.body["detail"][0]["loc"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(loc.join("."), format!("body.{field}"), "{body}: {}", r.body);
    }
    assert_eq!(t.get(&base).await.body["data"], json!([]), "nothing written");
    let r = t.raw(Method::GET, &base, Key::Bearer(&t.member_key), b"").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.body["code"], "insufficient_access");
    let r = t.raw(Method::GET, &base, Key::None, b"").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["code"], "authentication_failed");
}
