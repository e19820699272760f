//! Each events/ sample is a real API Gateway HTTP API v2 event (what `sam local invoke -e` or
//! `cargo lambda invoke --data-file` sends) and its function's handler accepts it.
use crate::helpers::spawn_app;
use http::StatusCode;
use serde_json::json;
use shared::Route;

const SAMPLE_KEY: &str = "gk_sample_replace_with_a_real_key";
const SAMPLE_ENTITLEMENT: &str = "ent_01SAMPLEENTITLEMENT00000";
const SAMPLE_GRANT: &str = "grt_01SAMPLEGRANT000000000000";

#[tokio::test]
async fn every_sample_event_is_accepted_by_its_handler() {
    let t = spawn_app().await;
    let ent = t.entitlement_with(json!({"customerId": "cus_demo"})).await;
    let grant = t.post(&format!("/v1/entitlements/{ent}/grants"), json!({"amount": 5, "idempotencyKey": "sample"})).await;
    let gid = grant.body["id"].as_str().unwrap();
    // Cancel last: the others need the entitlement active.
    let mut routes: Vec<Route> = Route::ALL.to_vec();
    routes.sort_by_key(|r| *r == Route::CancelEntitlement);
    for route in routes {
        let path = format!("{}/events/{}.json", env!("CARGO_MANIFEST_DIR"), route.function());
        let text = std::fs::read_to_string(&path).unwrap()
            .replace(SAMPLE_KEY, &t.admin_key)
            .replace(SAMPLE_ENTITLEMENT, &ent)
            .replace(SAMPLE_GRANT, gid);
        let event = lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
        let response = shared::lambda::handle_event(&t.app, route, event).await;
        let status = response.status();
        assert!(status.is_success(), "{path}: {status} {:?}", response.body());
        if route == Route::CreateGrant || route == Route::CreateEntitlement {
            assert_eq!(status, StatusCode::CREATED);
        }
    }
}

#[test]
fn the_catch_all_sample_is_a_json_404() {
    let text = std::fs::read_to_string(format!("{}/events/not-found.json", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let response = shared::lambda::not_found_event(&lambda_http::request::from_str(&text).unwrap());
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let lambda_http::Body::Text(body) = response.body() else { panic!("text body") };
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["code"], "route_not_found");
    assert!(body["message"].as_str().unwrap().contains("/v1/no-such-thing"));
}
