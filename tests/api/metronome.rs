//! The Metronome surface and the credit-type catalogue on the real local DynamoDB: one ledger seen
//! through two surfaces, bad input, and who may do what. (The SDK's own view is tests/compat.)
use crate::helpers::{spawn_app, Key, TestApp};
use http::{Method, StatusCode};
use serde_json::{json, Value};

const USD_CENTS: &str = "2714e483-4ff1-48e4-9e25-ac732e8f24f2";

fn grant_body(customer: &str) -> Value {
    json!({
        "customer_id": customer,
        "expires_at": "2099-01-01T00:00:00Z",
        "grant_amount": {"amount": 100, "credit_type_id": USD_CENTS},
        "paid_amount": {"amount": 10, "credit_type_id": USD_CENTS},
        "name": "Initial credit purchase",
        "priority": 0.5,
    })
}

impl TestApp {
    async fn customer(&self) -> (String, String) {
        let customer = format!("cus_m{}", crate::helpers::random_suffix());
        let ent = self.entitlement_with(json!({"customerId": customer})).await;
        (customer, ent)
    }
    async fn list_credit_grants(&self, body: Value) -> Vec<Value> {
        let r = self.post("/v1/credits/listGrants?limit=100", body).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body["data"].as_array().unwrap().clone()
    }
}

fn with(mut body: Value, path: &[&str], value: Value) -> Value {
    let mut at = &mut body;
    for p in &path[..path.len() - 1] {
        at = &mut at[*p];
    }
    match value {
        Value::Null => {
            at.as_object_mut().unwrap().remove(path[path.len() - 1]);
        }
        v => at[path[path.len() - 1]] = v,
    }
    body
}

#[tokio::test]
async fn one_ledger_two_surfaces() {
    let t = spawn_app().await;
    let (customer, ent) = t.customer().await;
    let pg = t
        .post(
            &format!("/v1/entitlements/{ent}/grants"),
            json!({"amount": 7, "idempotencyKey": "pg"}),
        )
        .await;
    let pg_id = pg.body["id"].as_str().unwrap().to_owned();
    let created = t.post("/v1/credits/createGrant", grant_body(&customer)).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let m_id = created.body["data"]["id"].as_str().unwrap().to_owned();

    // The Paygentic grant through Metronome: a never-expiring grant shows the documented far future.
    let listed = t.list_credit_grants(json!({"customer_ids": [customer]})).await;
    let ids: Vec<&str> = listed.iter().map(|g| g["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![pg_id.as_str(), m_id.as_str()]);
    assert_eq!(listed[0]["expires_at"], "9999-12-31T00:00:00Z");
    assert_eq!(listed[0]["priority"], json!(0));
    assert_eq!(
        listed[0]["grant_amount"]["credit_type"],
        json!({"id": USD_CENTS, "name": "USD (cents)"})
    );
    // The Metronome grant through Paygentic: a fractional priority is left out there.
    let g = t.get(&format!("/v1/entitlements/{ent}/grants/{m_id}")).await;
    assert_eq!((g.body["amount"].clone(), g.body.get("priority")), (json!(100), None));
    assert_eq!(
        t.get(&format!("/v1/entitlements/{ent}")).await.body["balance"],
        json!(107)
    );
    // Priority 0 (Paygentic, none given) burns before 0.5.
    let u = t
        .post(
            &format!("/v1/entitlements/{ent}/usage"),
            json!({"eventId": "u", "amount": 10}),
        )
        .await;
    assert_eq!(
        u.body["deductions"],
        json!([{"grantId": pg_id, "amount": 7}, {"grantId": m_id, "amount": 3}])
    );
    // Voiding through Metronome is seen by Paygentic.
    let v = t.post("/v1/credits/voidGrant", json!({"id": m_id})).await;
    assert_eq!(v.status, StatusCode::OK);
    assert!(t.get(&format!("/v1/entitlements/{ent}/grants/{m_id}")).await.body["voidedAt"].is_string());
}

#[tokio::test]
async fn bad_create_grant_bodies_are_400_naming_the_field_and_write_nothing() {
    let t = spawn_app().await;
    let (customer, ent) = t.customer().await;
    let base = grant_body(&customer);
    let cases: Vec<(Value, &str)> = vec![
        (with(base.clone(), &["customer_id"], Value::Null), "customer_id"),
        (with(base.clone(), &["customer_id"], json!("")), "customer_id"),
        (with(base.clone(), &["expires_at"], Value::Null), "expires_at"),
        (with(base.clone(), &["expires_at"], json!("soon")), "expires_at"),
        (
            with(base.clone(), &["expires_at"], json!("2000-01-01T00:00:00Z")),
            "expires_at",
        ),
        (with(base.clone(), &["grant_amount"], Value::Null), "grant_amount"),
        (with(base.clone(), &["grant_amount"], json!(100)), "grant_amount"),
        (
            with(base.clone(), &["grant_amount", "amount"], json!(0)),
            "grant_amount.amount",
        ),
        (
            with(base.clone(), &["grant_amount", "amount"], json!("100")),
            "grant_amount.amount",
        ),
        (
            with(base.clone(), &["grant_amount", "credit_type_id"], Value::Null),
            "grant_amount.credit_type_id",
        ),
        (
            with(base.clone(), &["grant_amount", "credit_type_id"], json!("ct_nope")),
            "grant_amount.credit_type_id",
        ),
        (
            with(base.clone(), &["paid_amount", "amount"], json!(-1)),
            "paid_amount.amount",
        ),
        (
            with(base.clone(), &["paid_amount", "credit_type_id"], json!("ct_nope")),
            "paid_amount.credit_type_id",
        ),
        (with(base.clone(), &["name"], Value::Null), "name"),
        (with(base.clone(), &["priority"], Value::Null), "priority"),
        (with(base.clone(), &["priority"], json!("high")), "priority"),
        (with(base.clone(), &["uniqueness_key"], json!("")), "uniqueness_key"),
        (
            with(base.clone(), &["custom_fields"], json!({"a": 1})),
            "custom_fields.a",
        ),
        (with(base.clone(), &["product_ids"], json!("p1")), "product_ids"),
        (
            with(base.clone(), &["effective_at"], json!("2100-01-01T00:00:00Z")),
            "expires_at",
        ),
    ];
    for (body, field) in cases {
        let r = t.post("/v1/credits/createGrant", body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body} -> {}", r.body);
        assert_eq!(r.header("x-should-retry"), Some("false"));
        assert!(
            r.body["errors"].as_array().unwrap().iter().any(|e| e["field"] == field),
            "{field}: {}",
            r.body
        );
    }
    let r = t
        .raw(
            Method::POST,
            "/v1/credits/createGrant",
            Key::Bearer(&t.admin_key),
            b"{nope",
        )
        .await;
    assert_eq!(
        (r.status, r.body["errors"][0]["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("body"))
    );
    let unknown = t.post("/v1/credits/createGrant", grant_body("cus_nobody")).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.body);
    assert!(t.all_grants(&ent).await.is_empty());
}

#[tokio::test]
async fn bad_list_edit_void_and_entries_requests_are_4xx_naming_the_field() {
    let t = spawn_app().await;
    let (customer, _) = t.customer().await;
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "/v1/credits/listGrants",
            json!({"credit_grant_ids": ["grt_1"], "customer_ids": ["c"]}),
            "credit_grant_ids",
        ),
        (
            "/v1/credits/listGrants",
            json!({"credit_grant_ids": ["grt_1"], "credit_type_ids": [USD_CENTS]}),
            "credit_grant_ids",
        ),
        ("/v1/credits/listGrants", json!({"customer_ids": "c"}), "customer_ids"),
        (
            "/v1/credits/listGrants",
            json!({"customer_ids": [1]}),
            "customer_ids[0]",
        ),
        (
            "/v1/credits/listGrants",
            json!({"effective_before": "noon"}),
            "effective_before",
        ),
        ("/v1/credits/listGrants?limit=0", json!({}), "limit"),
        ("/v1/credits/listGrants?limit=101", json!({}), "limit"),
        ("/v1/credits/listGrants?next_page=zz", json!({}), "next_page"),
        ("/v1/credits/listEntries?sort=sideways", json!({}), "sort"),
        (
            "/v1/credits/listEntries",
            json!({"ending_before": "2999-01-01T00:00:00Z"}),
            "ending_before",
        ),
        (
            "/v1/credits/listEntries",
            json!({"starting_on": "2026-02-01T00:00:00Z", "ending_before": "2026-01-01T00:00:00Z"}),
            "starting_on",
        ),
        ("/v1/credits/listEntries?next_page=abc", json!({}), "next_page"),
        ("/v1/credits/voidGrant", json!({}), "id"),
        ("/v1/credits/editGrant", json!({"name": "x"}), "id"),
        (
            "/v1/credits/voidGrant",
            json!({"id": "grt_x", "release_uniqueness_key": "yes"}),
            "release_uniqueness_key",
        ),
    ];
    for (path, body, field) in cases {
        let r = t.post(path, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path} {body} -> {}", r.body);
        assert!(
            r.body["errors"].as_array().unwrap().iter().any(|e| e["field"] == field),
            "{path} {field}: {}",
            r.body
        );
    }
    for path in ["/v1/credits/voidGrant", "/v1/credits/editGrant"] {
        let r = t.post(path, json!({"id": "grt_01NOSUCHGRANT0000000000000"})).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(r.header("x-should-retry"), Some("false"));
    }
    let created = t.post("/v1/credits/createGrant", grant_body(&customer)).await;
    let id = created.body["data"]["id"].as_str().unwrap();
    let r = t
        .post(
            "/v1/credits/editGrant",
            json!({"id": id, "expires_at": "2001-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["errors"][0]["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("expires_at"))
    );
    // An empty body is no filter at all.
    let r = t
        .raw(Method::POST, "/v1/credits/listGrants", Key::Bearer(&t.admin_key), b"")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn members_read_only_and_other_tenants_see_nothing() {
    let t = spawn_app().await;
    let other = spawn_app().await;
    let (customer, _) = t.customer().await;
    let created = t.post("/v1/credits/createGrant", grant_body(&customer)).await;
    let id = created.body["data"]["id"].as_str().unwrap().to_owned();
    let m = Key::Bearer(&t.member_key);
    let write = |path: &'static str, body: Value| {
        let (t, body) = (&t, body.to_string());
        async move { t.raw(Method::POST, path, m, body.as_bytes()).await.status }
    };
    assert_eq!(
        write("/v1/credits/createGrant", grant_body(&customer)).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        write("/v1/credits/voidGrant", json!({"id": id})).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        write("/v1/credits/editGrant", json!({"id": id, "name": "x"})).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        write("/v1/credit-types", json!({"name": "x"})).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(write("/v1/credits/listGrants", json!({})).await, StatusCode::OK);
    assert_eq!(write("/v1/credits/listEntries", json!({})).await, StatusCode::OK);
    assert_eq!(
        t.raw(Method::GET, "/v1/credit-types", m, b"").await.status,
        StatusCode::OK
    );

    assert_eq!(
        other.post("/v1/credits/voidGrant", json!({"id": id})).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        other
            .post("/v1/credits/editGrant", json!({"id": id, "name": "stolen"}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert!(other.list_credit_grants(json!({})).await.is_empty());
    assert!(other
        .list_credit_grants(json!({"credit_grant_ids": [id]}))
        .await
        .is_empty());
    assert!(other
        .list_credit_grants(json!({"customer_ids": [customer]}))
        .await
        .is_empty());
    let entries = other
        .post("/v1/credits/listEntries", json!({"customer_ids": [customer]}))
        .await;
    assert_eq!(entries.body["data"][0]["ledgers"], json!([]));
    assert_eq!(
        other
            .post("/v1/credits/createGrant", grant_body(&customer))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let mine = t.list_credit_grants(json!({"credit_grant_ids": [id]})).await;
    assert_eq!(mine[0]["name"], "Initial credit purchase");
}

#[tokio::test]
async fn credit_types_are_a_per_tenant_catalogue_with_a_default() {
    let t = spawn_app().await;
    let other = spawn_app().await;
    let list = t.get("/v1/credit-types").await;
    assert_eq!(list.body["data"], json!([{"id": USD_CENTS, "name": "USD (cents)"}]));
    let ct = t.post("/v1/credit-types", json!({"name": "GPU hours"})).await;
    assert_eq!(ct.status, StatusCode::CREATED, "{}", ct.body);
    let ct_id = ct.body["id"].as_str().unwrap().to_owned();
    let dup = t.post("/v1/credit-types", json!({"name": "gpu HOURS"})).await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert_eq!(dup.body["details"]["id"], json!(ct_id));
    assert_eq!(
        t.post("/v1/credit-types", json!({"name": "usd (cents)"})).await.status,
        StatusCode::CONFLICT
    );
    for body in [json!({}), json!({"name": ""}), json!({"name": 5})] {
        let r = t.post("/v1/credit-types", body).await;
        assert_eq!(
            (r.status, r.body["errors"][0]["field"].clone()),
            (StatusCode::BAD_REQUEST, json!("name"))
        );
    }
    let names: Vec<Value> = t.get("/v1/credit-types").await.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].clone())
        .collect();
    assert_eq!(names, vec![json!("USD (cents)"), json!("GPU hours")]);
    assert_eq!(
        other.get("/v1/credit-types").await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Entitlements are provisioned in a credit type; an unknown (or another tenant's) one is refused.
    let ent = t.entitlement_with(json!({"pricingUnitId": ct_id})).await;
    assert_eq!(
        t.get(&format!("/v1/entitlements/{ent}")).await.body["pricingUnitId"],
        json!(ct_id)
    );
    let r = other
        .post(
            "/v1/entitlements",
            json!({"customerId": "c", "featureKey": "k", "pricingUnitId": ct_id}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["errors"][0]["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("pricingUnitId"))
    );
    let usd = t.entitlement_with(json!({"pricingUnitId": USD_CENTS})).await;
    assert_eq!(
        t.get(&format!("/v1/entitlements/{usd}")).await.body["pricingUnitId"],
        json!(null)
    );
}

#[tokio::test]
async fn paging_through_a_sparse_filter_has_no_gaps_or_duplicates() {
    let t = spawn_app().await;
    let (customer, _) = t.customer().await;
    let mut long = Vec::new();
    for i in 0..12 {
        let expires = if i % 3 == 0 {
            "2099-01-01T00:00:00Z"
        } else {
            "2098-01-01T00:00:00Z"
        };
        let body = with(grant_body(&customer), &["expires_at"], json!(expires));
        let r = t.post("/v1/credits/createGrant", body).await;
        if i % 3 == 0 {
            long.push(r.body["data"]["id"].as_str().unwrap().to_owned());
        }
    }
    for scope in [json!({"customer_ids": [customer]}), json!({})] {
        let mut filter = scope.clone();
        filter["not_expiring_before"] = json!("2098-06-01T00:00:00Z");
        let (mut seen, mut cursor) = (Vec::new(), None::<String>);
        loop {
            let q = cursor.as_ref().map(|c| format!("&next_page={c}")).unwrap_or_default();
            let r = t
                .post(&format!("/v1/credits/listGrants?limit=2{q}"), filter.clone())
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            let page = r.body["data"].as_array().unwrap();
            assert!(page.len() <= 2);
            seen.extend(page.iter().map(|g| g["id"].as_str().unwrap().to_owned()));
            match r.body["next_page"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen, long, "{scope}");
    }
}

#[tokio::test]
async fn an_expiry_cannot_be_moved_before_usage_that_already_drew_on_the_grant() {
    let t = spawn_app().await;
    let (customer, ent) = t.customer().await;
    let start = crate::helpers::now_plus(-3 * 3600).to_rfc3339();
    let body = with(grant_body(&customer), &["effective_at"], json!(start));
    let id = t.post("/v1/credits/createGrant", body).await.body["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let used_at = crate::helpers::now_plus(-3600).to_rfc3339();
    let u = t
        .post(
            &format!("/v1/entitlements/{ent}/usage"),
            json!({"eventId": "u", "amount": 5, "occurredAt": used_at}),
        )
        .await;
    assert_eq!(u.status, StatusCode::CREATED);
    let early = crate::helpers::now_plus(-2 * 3600).to_rfc3339();
    let r = t
        .post("/v1/credits/editGrant", json!({"id": id, "expires_at": early}))
        .await;
    assert_eq!(
        (r.status, r.body["errors"][0]["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("expires_at")),
        "{}",
        r.body
    );
    let grant = t.get(&format!("/v1/entitlements/{ent}/grants/{id}")).await;
    assert_eq!(grant.body["expiresAt"], "2099-01-01T00:00:00Z", "nothing written");
    let later = crate::helpers::now_plus(86_400).to_rfc3339();
    assert_eq!(
        t.post("/v1/credits/editGrant", json!({"id": id, "expires_at": later}))
            .await
            .status,
        StatusCode::OK
    );
}
