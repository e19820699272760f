//! The HTTP surface, independent of how requests arrive (Lambda, tests): routes, auth, parsing,
//! JSON shapes and the one mapping from domain errors to HTTP.
pub mod body;
pub mod error;
pub mod paygentic;

use crate::domain::auth::{authenticate, KeyCache, Principal};
use crate::domain::{Clock, SystemClock};
use crate::store::Store;
pub use error::ApiError;
use http::{HeaderMap, Method, StatusCode};
use std::collections::HashMap;
use tracing::Instrument;
use std::sync::Arc;
use std::time::Duration;

/// Bodies above this are refused with 413 before parsing (API Gateway itself allows 10 MB).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Everything a handler needs. Built once per Lambda instance (cold start) and shared.
pub struct App {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub keys: KeyCache,
}

impl App {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock, keys: KeyCache::new(Duration::from_secs(60)) }
    }
    pub fn with_system_clock(store: Arc<dyn Store>) -> Self {
        Self::new(store, Arc::new(SystemClock))
    }
}

/// A request as the handlers see it.
#[derive(Debug, Clone, Default)]
pub struct ApiRequest {
    pub method: Method,
    pub path: String,
    pub path_params: HashMap<String, String>,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: bytes::Bytes,
    pub request_id: String,
}

impl ApiRequest {
    pub fn param(&self, name: &str) -> &str {
        self.path_params.get(name).map(String::as_str).unwrap_or_default()
    }
    pub fn query_value(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    /// The API key, from `Authorization: Bearer <key>` or `x-api-key: <key>`.
    pub fn api_key(&self) -> Option<&str> {
        let bearer = self
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, rest) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then_some(rest.trim())
            });
        bearer.or_else(|| self.headers.get("x-api-key").and_then(|v| v.to_str().ok()))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    pub status: StatusCode,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl ApiResponse {
    pub fn json(status: StatusCode, value: &serde_json::Value) -> Self {
        Self {
            status,
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body: value.to_string(),
        }
    }
}

macro_rules! routes {
    ($($variant:ident => $method:ident $template:literal $function:literal $doc:literal,)*) => {
        /// Every endpoint: its method, path template (API Gateway syntax) and Lambda function name.
        /// template.yaml and the local router in Cargo.toml are checked against this table.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Route { $(#[doc = $doc] $variant,)* }

        impl Route {
            pub const ALL: &'static [Route] = &[$(Route::$variant,)*];
            pub fn method(self) -> Method { match self { $(Route::$variant => Method::$method,)* } }
            pub fn template(self) -> &'static str { match self { $(Route::$variant => $template,)* } }
            pub fn function(self) -> &'static str { match self { $(Route::$variant => $function,)* } }
        }
    };
}

routes! {
    ListEntitlements => GET "/v1/entitlements" "list-entitlements" "List the tenant's entitlements.",
    CreateEntitlement => POST "/v1/entitlements" "create-entitlement" "Provision an entitlement (admin).",
    GetEntitlement => GET "/v1/entitlements/{id}" "get-entitlement" "One entitlement with its balance.",
    CancelEntitlement => POST "/v1/entitlements/{id}/cancel" "cancel-entitlement" "Cancel an entitlement (admin).",
    CreateGrant => POST "/v1/entitlements/{id}/grants" "create-grant" "Create a grant, idempotently.",
    ListGrants => GET "/v1/entitlements/{id}/grants" "list-grants" "List an entitlement's grants.",
    GetGrant => GET "/v1/entitlements/{id}/grants/{grantId}" "get-grant" "One grant.",
    VoidGrant => DELETE "/v1/entitlements/{id}/grants/{grantId}" "void-grant" "Void a grant, idempotently.",
}

impl Route {
    pub fn by_function(name: &str) -> Option<Route> {
        Route::ALL.iter().copied().find(|r| r.function() == name)
    }

    /// Matches a concrete path against this route's template; returns the path parameters.
    pub fn match_path(self, path: &str) -> Option<HashMap<String, String>> {
        let want: Vec<&str> = self.template().trim_matches('/').split('/').collect();
        let got: Vec<&str> = path.trim_matches('/').split('/').collect();
        if want.len() != got.len() {
            return None;
        }
        let mut params = HashMap::new();
        for (w, g) in want.iter().zip(&got) {
            match w.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
                Some(name) if !g.is_empty() => {
                    params.insert(name.to_owned(), (*g).to_owned());
                }
                Some(_) => return None,
                None if w == g => {}
                None => return None,
            }
        }
        Some(params)
    }

    /// The route a method and path select, preferring literal segments over parameters.
    pub fn resolve(method: &Method, path: &str) -> Option<(Route, HashMap<String, String>)> {
        Route::ALL
            .iter()
            .filter(|r| r.method() == *method)
            .filter_map(|r| r.match_path(path).map(|p| (*r, p)))
            .min_by_key(|(_, p)| p.len())
    }
}

/// Runs one request through auth and the route's handler. Never panics on client input; every
/// failure is a JSON error.
pub async fn dispatch(app: &App, route: Route, mut req: ApiRequest) -> ApiResponse {
    if req.path_params.is_empty() {
        req.path_params = route.match_path(&req.path).unwrap_or_default();
    }
    let span = tracing::info_span!("request", request_id = %req.request_id, route = route.function());
    async {
        let response = handle(app, route, &req).await.unwrap_or_else(ApiError::into_response);
        tracing::info!(status = response.status.as_u16(), "handled");
        response
    }
    .instrument(span)
    .await
}

async fn handle(app: &App, route: Route, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    if req.body.len() > MAX_BODY_BYTES {
        return Err(ApiError::payload_too_large(MAX_BODY_BYTES));
    }
    let principal = authenticate(app.store.as_ref(), &app.keys, req.api_key()).await?;
    tracing::debug!(tenant = %principal.tenant, role = principal.role.as_str(), "authenticated");
    use paygentic as p;
    match route {
        Route::ListEntitlements => p::list_entitlements(app, &principal, req).await,
        Route::CreateEntitlement => p::create_entitlement(app, admin(&principal)?, req).await,
        Route::GetEntitlement => p::get_entitlement(app, &principal, req).await,
        Route::CancelEntitlement => p::cancel_entitlement(app, admin(&principal)?, req).await,
        Route::CreateGrant => p::create_grant(app, admin(&principal)?, req).await,
        Route::ListGrants => p::list_grants(app, &principal, req).await,
        Route::GetGrant => p::get_grant(app, &principal, req).await,
        Route::VoidGrant => p::void_grant(app, admin(&principal)?, req).await,
    }
}

fn admin(p: &Principal) -> Result<&Principal, ApiError> {
    if p.is_admin() {
        Ok(p)
    } else {
        Err(ApiError::forbidden())
    }
}

/// The JSON answer for a path no route serves.
pub fn not_found_route(method: &Method, path: &str) -> ApiResponse {
    ApiError::not_found("route_not_found", &format!("No route for {method} {path}")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_literals_before_parameters() {
        let (r, p) = Route::resolve(&Method::GET, "/v1/entitlements/ent_1/grants/grt_2").unwrap();
        assert_eq!(r, Route::GetGrant);
        assert_eq!(p["id"], "ent_1");
        assert_eq!(p["grantId"], "grt_2");
        assert_eq!(Route::resolve(&Method::GET, "/v1/entitlements").unwrap().0, Route::ListEntitlements);
        assert!(Route::resolve(&Method::PATCH, "/v1/entitlements").is_none());
        assert!(Route::resolve(&Method::GET, "/v1/entitlements//grants").is_none());
    }

    #[test]
    fn function_names_are_unique() {
        let mut names: Vec<_> = Route::ALL.iter().map(|r| r.function()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Route::ALL.len());
    }
}
