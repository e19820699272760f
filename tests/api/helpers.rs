//! Spawn-style helpers: every test gets its own tenant (admin + member keys) on the one local
//! DynamoDB table, so tests run in parallel without seeing each other.
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::{json, Value};
use shared::admin;
use shared::api::{dispatch, not_found_route, ApiRequest, App, Route};
use shared::domain::model::Role;
use shared::domain::TenantId;
use shared::store::dynamo::DynamoStore;
use std::path::Path;
use std::sync::Arc;

/// Points the AWS SDK at the local stack `make test` started (its env file), unless the
/// environment already says where it is.
pub fn use_local_stack() {
    if std::env::var_os("AWS_ENDPOINT_URL_DYNAMODB").is_some() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found = [".local/test/stack.env", admin::LOCAL_STACK_ENV].iter().any(|f| admin::load_env_file(&root.join(f)));
    assert!(found, "no local stack: run the tests with `make test` (it starts DynamoDB Local)");
}

pub fn template() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("template.yaml")).expect("template.yaml")
}

pub async fn store() -> DynamoStore {
    use_local_stack();
    let store = shared::config::store_from_env().await;
    admin::create_table_from_template(store.client(), &template(), store.table()).await.expect("create table");
    store
}

pub struct TestApp {
    pub app: App,
    pub admin_key: String,
    pub member_key: String,
}

pub struct TestResponse {
    pub status: StatusCode,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl TestResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn random_suffix() -> String {
    shared::domain::GrantId::generate().as_str()[4..].to_ascii_lowercase()
}

pub async fn spawn_app() -> TestApp {
    let store = store().await;
    let tenant = TenantId::parse(&format!("t-{}", random_suffix())).expect("tenant");
    let admin_key = admin::create_key(&store, &tenant, Role::Admin).await.expect("admin key");
    let member_key = admin::create_key(&store, &tenant, Role::Member).await.expect("member key");
    let app = App::with_system_clock(Arc::new(store.clone()));
    TestApp { app, admin_key, member_key }
}

/// How a test authenticates a request.
#[derive(Clone, Copy)]
pub enum Key<'a> {
    None,
    Bearer(&'a str),
    ApiKeyHeader(&'a str),
}

impl TestApp {
    pub async fn raw(&self, method: Method, path_and_query: &str, key: Key<'_>, body: &[u8]) -> TestResponse {
        let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
        let query = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect();
        let mut headers = HeaderMap::new();
        match key {
            Key::None => {}
            Key::Bearer(k) => {
                headers.insert("authorization", HeaderValue::from_str(&format!("Bearer {k}")).expect("header"));
            }
            Key::ApiKeyHeader(k) => {
                headers.insert("x-api-key", HeaderValue::from_str(k).expect("header"));
            }
        }
        let req = ApiRequest {
            method: method.clone(),
            path: path.to_owned(),
            query,
            headers,
            body: bytes::Bytes::copy_from_slice(body),
            request_id: "test".to_owned(),
            ..ApiRequest::default()
        };
        let response = match Route::resolve(&method, path) {
            Some((route, params)) => dispatch(&self.app, route, ApiRequest { path_params: params, ..req }).await,
            None => not_found_route(&method, path),
        };
        let body = if response.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&response.body).expect("every response is JSON")
        };
        TestResponse { status: response.status, headers: response.headers, body }
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> TestResponse {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        self.raw(method, path, Key::Bearer(&self.admin_key), &bytes).await
    }
    pub async fn get(&self, path: &str) -> TestResponse {
        self.call(Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> TestResponse {
        self.call(Method::POST, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> TestResponse {
        self.call(Method::DELETE, path, None).await
    }

    /// An active entitlement for a fresh customer; returns its id.
    pub async fn entitlement(&self) -> String {
        self.entitlement_with(json!({})).await
    }

    pub async fn entitlement_with(&self, extra: Value) -> String {
        let mut body = json!({ "customerId": format!("cus_{}", random_suffix()), "featureKey": "api_calls" });
        if let (Some(b), Value::Object(extra)) = (body.as_object_mut(), extra) {
            b.extend(extra);
        }
        let r = self.post("/v1/entitlements", body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["id"].as_str().expect("id").to_owned()
    }

    /// Every grant of the entitlement, voided included.
    pub async fn all_grants(&self, entitlement: &str) -> Vec<Value> {
        let r = self.get(&format!("/v1/entitlements/{entitlement}/grants?includeVoided=true&limit=100")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body["data"].as_array().cloned().unwrap_or_default()
    }
}
