use crate::helpers::spawn_app;
use http::StatusCode;
use serde_json::json;

#[tokio::test]
async fn create_returns_201_with_the_documented_grant() {
    let t = spawn_app().await;
    let ent = t.entitlement().await;
    let r = t
        .post(
            &format!("/v1/entitlements/{ent}/grants"),
            json!({"amount": 500, "idempotencyKey": "promo-500"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let g = &r.body;
    assert_eq!(g["object"], "grant");
    assert!(g["id"].as_str().unwrap().starts_with("grt_"));
    assert_eq!(g["entitlementId"], ent.as_str());
    assert_eq!(g["amount"], json!(500));
    assert_eq!(g["expiresAt"], json!(null));
    assert_eq!(g["voidedAt"], json!(null));
    assert_eq!(g["recurrencePeriod"], json!(null));
    assert_eq!(g["idempotencyKey"], "promo-500");
    // effectiveAt defaults to the entitlement's current period start.
    let e = t.get(&format!("/v1/entitlements/{ent}")).await;
    assert_eq!(g["effectiveAt"], e.body["currentPeriodStart"]);
    assert_eq!(e.body["balance"], json!(500));

    let got = t
        .get(&format!("/v1/entitlements/{ent}/grants/{}", g["id"].as_str().unwrap()))
        .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(&got.body, g);
}

#[tokio::test]
async fn decimal_amounts_are_exact() {
    let t = spawn_app().await;
    let ent = t.entitlement().await;
    let r = t
        .post(
            &format!("/v1/entitlements/{ent}/grants"),
            json!({"amount": 100.0, "idempotencyKey": "a"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["amount"].to_string(), "100");
    let r = t
        .raw(
            http::Method::POST,
            &format!("/v1/entitlements/{ent}/grants"),
            crate::helpers::Key::Bearer(&t.admin_key),
            br#"{"amount": 0.100000000001, "idempotencyKey": "b"}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["amount"].to_string(), "0.100000000001");
    let e = t.get(&format!("/v1/entitlements/{ent}")).await;
    assert_eq!(e.body["balance"].to_string(), "100.100000000001");
}

#[tokio::test]
async fn identical_replay_returns_the_original_with_201() {
    let t = spawn_app().await;
    let ent = t.entitlement().await;
    let body = json!({"amount": 250, "idempotencyKey": "k", "expiresAt": "2099-01-01T00:00:00+01:00", "priority": 2});
    let first = t.post(&format!("/v1/entitlements/{ent}/grants"), body.clone()).await;
    let second = t.post(&format!("/v1/entitlements/{ent}/grants"), body).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(second.status, StatusCode::CREATED);
    assert_eq!(first.body, second.body);
    assert_eq!(first.body["expiresAt"], "2098-12-31T23:00:00Z");
    assert_eq!(t.all_grants(&ent).await.len(), 1);
}

#[tokio::test]
async fn same_key_other_parameters_is_409_naming_the_fields_and_writes_nothing() {
    let t = spawn_app().await;
    let ent = t.entitlement().await;
    let path = format!("/v1/entitlements/{ent}/grants");
    t.post(&path, json!({"amount": 250, "idempotencyKey": "k"})).await;
    let r = t
        .post(&path, json!({"amount": 300, "idempotencyKey": "k", "priority": 1}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.body["details"]["differingFields"], json!(["amount", "priority"]));
    assert!(r.body["message"].as_str().unwrap().contains("amount"));
    assert_eq!(r.header("x-should-retry"), Some("false"));
    let grants = t.all_grants(&ent).await;
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0]["amount"], json!(250));
}

#[tokio::test]
async fn keys_are_scoped_to_the_entitlement() {
    let t = spawn_app().await;
    let (a, b) = (t.entitlement().await, t.entitlement().await);
    let body = json!({"amount": 10, "idempotencyKey": "same"});
    let ga = t.post(&format!("/v1/entitlements/{a}/grants"), body.clone()).await;
    let gb = t.post(&format!("/v1/entitlements/{b}/grants"), body).await;
    assert_eq!(gb.status, StatusCode::CREATED);
    assert_ne!(ga.body["id"], gb.body["id"]);
}

#[tokio::test]
async fn void_is_idempotent_and_voided_at_never_moves() {
    let t = spawn_app().await;
    let ent = t.entitlement().await;
    let g = t
        .post(
            &format!("/v1/entitlements/{ent}/grants"),
            json!({"amount": 70, "idempotencyKey": "v"}),
        )
        .await;
    let path = format!("/v1/entitlements/{ent}/grants/{}", g.body["id"].as_str().unwrap());
    let v1 = t.delete(&path).await;
    assert_eq!(v1.status, StatusCode::OK, "{}", v1.body);
    assert!(v1.body["voidedAt"].is_string());
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let v2 = t.delete(&path).await;
    assert_eq!(v2.status, StatusCode::OK);
    assert_eq!(v1.body, v2.body);
    // Hidden from the default listing, shown with includeVoided; out of the balance.
    let list = t.get(&format!("/v1/entitlements/{ent}/grants")).await;
    assert_eq!(list.body["pagination"]["total"], json!(0));
    assert_eq!(t.all_grants(&ent).await.len(), 1);
    assert_eq!(
        t.get(&format!("/v1/entitlements/{ent}")).await.body["balance"],
        json!(0)
    );
    // A replay of the create returns the voided grant as it now is.
    let replay = t
        .post(
            &format!("/v1/entitlements/{ent}/grants"),
            json!({"amount": 70, "idempotencyKey": "v"}),
        )
        .await;
    assert_eq!(replay.status, StatusCode::CREATED);
    assert_eq!(replay.body["voidedAt"], v1.body["voidedAt"]);
}

#[tokio::test]
async fn missing_grant_is_404() {
    let t = spawn_app().await;
    let ent = t.entitlement().await;
    for path in [
        format!("/v1/entitlements/{ent}/grants/grt_01NOPE00000000000000000000"),
        format!("/v1/entitlements/{ent}/grants/not-a-grant-id"),
    ] {
        assert_eq!(t.get(&path).await.status, StatusCode::NOT_FOUND);
        let r = t.delete(&path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(r.body["code"], "grant_not_found");
    }
}

#[tokio::test]
async fn list_paginates_with_an_exact_total() {
    let t = spawn_app().await;
    let ent = t.entitlement().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let r = t
            .post(
                &format!("/v1/entitlements/{ent}/grants"),
                json!({"amount": i + 1, "idempotencyKey": format!("p{i}")}),
            )
            .await;
        ids.push(r.body["id"].as_str().unwrap().to_owned());
    }
    let page = t.get(&format!("/v1/entitlements/{ent}/grants?limit=2&offset=2")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.body["object"], "list");
    assert_eq!(page.body["pagination"], json!({"total": 5, "limit": 2, "offset": 2}));
    let got: Vec<_> = page.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, ids[2..4]);
    let past = t.get(&format!("/v1/entitlements/{ent}/grants?offset=10")).await;
    assert_eq!(past.body["pagination"], json!({"total": 5, "limit": 20, "offset": 10}));
    assert_eq!(past.body["data"], json!([]));
}

#[tokio::test]
async fn grants_need_an_active_entitlement_but_replays_still_answer() {
    let t = spawn_app().await;
    let ent = t.entitlement().await;
    let path = format!("/v1/entitlements/{ent}/grants");
    let before = t.post(&path, json!({"amount": 5, "idempotencyKey": "early"})).await;
    let c = t.post(&format!("/v1/entitlements/{ent}/cancel"), json!({})).await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.body);
    assert_eq!(c.body["status"], "canceled");
    let r = t.post(&path, json!({"amount": 5, "idempotencyKey": "late"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.body["code"], "entitlement_not_active");
    let replay = t.post(&path, json!({"amount": 5, "idempotencyKey": "early"})).await;
    assert_eq!(replay.status, StatusCode::CREATED);
    assert_eq!(replay.body["id"], before.body["id"]);
    assert_eq!(t.all_grants(&ent).await.len(), 1);
}

#[tokio::test]
async fn grant_on_a_missing_entitlement_is_404_and_writes_nothing() {
    let t = spawn_app().await;
    let r = t
        .post(
            "/v1/entitlements/ent_01MISSING0000000000000000/grants",
            json!({"amount": 5, "idempotencyKey": "x"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["code"], "entitlement_not_found");
    let list = t.get("/v1/entitlements/ent_01MISSING0000000000000000/grants").await;
    assert_eq!(list.status, StatusCode::NOT_FOUND);
}
