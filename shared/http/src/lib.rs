//! The HTTP surface, independent of how requests arrive (Lambda, tests): routes, auth, parsing,
//! JSON shapes and the one mapping from domain errors to HTTP.
pub mod body;
pub mod capacity;
pub mod error;
pub mod flexprice;
pub mod fulfilment;
pub mod metronome;
pub mod paygentic;
pub mod payment_events;
pub mod providers;
pub mod sandbox;
pub mod secrets;
pub mod webhooks;

use crate::providers::NoProvider;
use crate::secrets::Secrets;
use async_trait::async_trait;
pub use error::ApiError;
use grants_domain::auth::{authenticate, KeyCache};
use grants_domain::credits::CreditTypeCache;
use grants_domain::messaging::{MessageQueue, QueueError};
use grants_domain::payments::PaymentProvider;
use grants_domain::ports::Store;
use grants_domain::secrets::InMemorySecrets;
use grants_domain::tenants::TenantCache;
use grants_domain::{Clock, SystemClock};
use http::{HeaderMap, Method, StatusCode};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// Bodies above this are refused with 413 before parsing (API Gateway itself allows 10 MB).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Everything a handler needs. Built once per Lambda instance (cold start) and shared.
pub struct App {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub keys: KeyCache,
    pub tenants: TenantCache,
    pub credit_types: CreditTypeCache,
    /// What grants copy from their entitlement (see [`EntitlementFacts`](grants_domain::grants::EntitlementFacts)).
    pub entitlement_facts: grants_domain::grants::EntitlementFactsCache,
    pub payments: Arc<dyn PaymentProvider>,
    /// Webhook signing secrets and the page-cursor key (Secrets Manager when deployed).
    pub secrets: Arc<Secrets>,
    /// Where this service is reachable from outside (`PUBLIC_BASE_URL`), for URLs it stores and
    /// hands out. Never taken from a request header a client controls; without it, API Gateway's
    /// own `requestContext.domainName` is used (see [`ApiRequest::gateway_domain`]).
    pub public_base_url: Option<String>,
    /// Verified payment events, for the fulfilment function.
    pub payment_events: Arc<dyn MessageQueue>,
    /// Outbound `invoice.paid.v0` events.
    pub invoice_events: Arc<dyn MessageQueue>,
}

/// Stands in for a queue or transport a function was not configured with: every use fails.
struct Unconfigured(&'static str);

#[async_trait]
impl MessageQueue for Unconfigured {
    async fn send(&self, _body: String) -> Result<(), QueueError> {
        Err(QueueError(format!("{} is not configured", self.0)))
    }
}

impl App {
    /// An app with no payment provider, no queues and secrets in process memory (see the `with_`
    /// methods; [`crate::config::app_from_env`] wires the deployed ones).
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            keys: KeyCache::default(),
            tenants: TenantCache::new(Duration::from_secs(60)),
            credit_types: CreditTypeCache::new(Duration::from_secs(60)),
            entitlement_facts: grants_domain::grants::EntitlementFactsCache::new(Duration::from_secs(60)),
            payments: Arc::new(NoProvider),
            secrets: Arc::new(Secrets::new(Arc::new(InMemorySecrets::default()), "local")),
            public_base_url: None,
            payment_events: Arc::new(Unconfigured("payment events queue")),
            invoice_events: Arc::new(Unconfigured("invoice events queue")),
        }
    }
    pub fn with_system_clock(store: Arc<dyn Store>) -> Self {
        Self::new(store, Arc::new(SystemClock))
    }
    pub fn with_queues(self, payment_events: Arc<dyn MessageQueue>, invoice_events: Arc<dyn MessageQueue>) -> Self {
        Self {
            payment_events,
            invoice_events,
            ..self
        }
    }
    pub fn with_secrets(self, secrets: Arc<Secrets>) -> Self {
        Self { secrets, ..self }
    }
    /// `base` must be an absolute http(s) URL (checked by [`crate::config`] at init).
    pub fn with_public_base_url(self, base: Option<String>) -> Self {
        Self {
            public_base_url: base.map(|b| b.trim_end_matches('/').to_owned()),
            ..self
        }
    }
    /// Where this service is reachable, for a request: the configured public base URL, else API
    /// Gateway's own domain for the request (never the `Host` header). None: neither is known.
    pub fn base_url(&self, req: &ApiRequest) -> Option<String> {
        self.public_base_url
            .clone()
            .or_else(|| req.gateway_domain.as_ref().map(|d| format!("https://{d}")))
    }
    /// Replaces the key cache (tests that count round trips keep keys for longer than a request).
    pub fn with_key_cache(self, keys: KeyCache) -> Self {
        Self { keys, ..self }
    }
    pub fn with_provider(self, payments: Arc<dyn PaymentProvider>) -> Self {
        Self { payments, ..self }
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
    /// API Gateway's `requestContext.domainName` (set by the gateway, not by the client; only
    /// filled in on AWS, see [`crate::lambda::to_api_request`]).
    pub gateway_domain: Option<String>,
}

impl ApiRequest {
    pub fn param(&self, name: &str) -> &str {
        self.path_params.get(name).map(String::as_str).unwrap_or_default()
    }
    pub fn query_value(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
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
            headers: vec![
                ("content-type".to_owned(), "application/json".to_owned()),
                ("x-content-type-options".to_owned(), "nosniff".to_owned()),
            ],
            body: value.to_string(),
        }
    }
    /// An HTML page that may not be framed, sniffed, cached or leak its URL as a referrer, and
    /// whose forms may post only to itself (widen `form-action` with [`page_csp`] and
    /// [`Self::set_header`]).
    pub fn html(status: StatusCode, body: String) -> Self {
        Self {
            status,
            headers: vec![
                ("content-type".to_owned(), "text/html; charset=utf-8".to_owned()),
                ("cache-control".to_owned(), "no-store".to_owned()),
                ("content-security-policy".to_owned(), page_csp(&[])),
                ("x-frame-options".to_owned(), "DENY".to_owned()),
                ("x-content-type-options".to_owned(), "nosniff".to_owned()),
                ("referrer-policy".to_owned(), "no-referrer".to_owned()),
            ],
            body,
        }
    }
    /// Replaces a header (or adds it).
    pub fn set_header(&mut self, name: &str, value: &str) {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_owned()));
    }
    /// 303 See Other: the browser follows with a GET.
    pub fn see_other(location: &str) -> Self {
        Self {
            status: StatusCode::SEE_OTHER,
            headers: vec![
                ("location".to_owned(), location.to_owned()),
                ("cache-control".to_owned(), "no-store".to_owned()),
                ("referrer-policy".to_owned(), "no-referrer".to_owned()),
            ],
            body: String::new(),
        }
    }
}

/// The Content-Security-Policy of every HTML page: nothing loads but inline styles, no framing, and
/// forms post only to the page itself and to `form_origins` (CSP `form-action` also governs the
/// redirect that follows a form post).
pub fn page_csp(form_origins: &[String]) -> String {
    let mut form_action = vec!["'self'"];
    form_action.extend(form_origins.iter().map(String::as_str));
    format!(
        "default-src 'none'; style-src 'unsafe-inline'; form-action {}; frame-ancestors 'none'; base-uri 'none'",
        form_action.join(" ")
    )
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
    PurchaseGrant => POST "/v1/entitlements/{id}/grants/purchase" "purchase-grant" "Start a paid grant purchase: invoice + payment session.",
    GetInvoice => GET "/v2/invoices/{invoiceId}" "get-invoice" "One invoice (a purchase's), with its grant once paid.",
    PaymentWebhook => POST "/v1/webhooks/payments" "payment-webhook" "Signed payment events in; verified ones to the payment-events queue (no API key).",
    SandboxCheckout => GET "/sandbox/pay/{sessionId}" "sandbox-checkout" "The sandbox provider's checkout page (no API key).",
    RecordUsage => POST "/v1/entitlements/{id}/usage" "record-usage" "Record usage (or reserve it, when pending), idempotently by eventId (admin).",
    CommitUsage => POST "/v1/entitlements/{id}/usage/commit" "commit-usage" "Commit a pending usage event (admin).",
    ReleaseUsage => POST "/v1/entitlements/{id}/usage/release" "release-usage" "Release a pending usage event (admin).",
    GetBalance => GET "/v1/entitlements/{id}/balance" "get-balance" "An entitlement's balance at any instant, per grant, with and without pending usage.",
    MetronomeListGrants => POST "/v1/credits/listGrants" "metronome-list-grants" "Metronome: list credit grants with balances and deductions.",
    MetronomeCreateGrant => POST "/v1/credits/createGrant" "metronome-create-grant" "Metronome: create a credit grant (admin).",
    MetronomeVoidGrant => POST "/v1/credits/voidGrant" "metronome-void-grant" "Metronome: void a credit grant (admin).",
    MetronomeEditGrant => POST "/v1/credits/editGrant" "metronome-edit-grant" "Metronome: edit a credit grant's name, expiry or type (admin).",
    MetronomeListEntries => POST "/v1/credits/listEntries" "metronome-list-entries" "Metronome: customers' credit ledgers with running balances.",
    ListCreditTypes => GET "/v1/credit-types" "list-credit-types" "The tenant's credit types, the default USD (cents) first.",
    CreateCreditType => POST "/v1/credit-types" "create-credit-type" "Add a credit type to the tenant's catalogue (admin).",
    ListCapacityGrants => GET "/v2/grants" "list-capacity-grants" "The organization's capacity grants (expired and deleted ones with show_expired=true).",
    CreateCapacityGrant => POST "/v2/grants" "create-capacity-grant" "Create a capacity grant (admin).",
    DeleteCapacityGrant => DELETE "/v2/grants/{grant_fid}" "delete-capacity-grant" "Soft-delete a capacity grant, idempotently (admin).",
    ResellCapacityGrant => POST "/v2/grants/{grant_fid}/resell" "resell-capacity-grant" "Resell part of a capacity grant: a new smaller grant replaces it (admin).",
    FlexpriceCreateCreditGrant => POST "/v1/creditgrants" "flexprice-create-credit-grant" "Flexprice: create a credit grant plan and apply what is due (admin).",
    FlexpriceListCreditGrants => GET "/v1/creditgrants" "flexprice-list-credit-grants" "Flexprice: list credit grant plans.",
    FlexpriceGetCreditGrant => GET "/v1/creditgrants/{id}" "flexprice-get-credit-grant" "Flexprice: one credit grant plan.",
    FlexpriceUpdateCreditGrant => PUT "/v1/creditgrants/{id}" "flexprice-update-credit-grant" "Flexprice: change a plan's name, metadata or end date (admin).",
    FlexpriceDeleteCreditGrant => DELETE "/v1/creditgrants/{id}" "flexprice-delete-credit-grant" "Flexprice: archive a plan, or end it at effective_date (admin).",
    SandboxCheckoutAction => POST "/sandbox/pay/{sessionId}" "sandbox-checkout-action" "Pay or Cancel on the sandbox checkout page (no API key).",
}

impl Route {
    /// Routes that take no API key: the webhook is authenticated by its signature, the checkout
    /// page by the unguessable session id in its URL.
    pub fn is_public(self) -> bool {
        matches!(
            self,
            Route::PaymentWebhook | Route::SandboxCheckout | Route::SandboxCheckoutAction
        )
    }

    /// Routes that only an `admin` key may call (a `member` gets 403). The one list: dispatch and
    /// the authorization-matrix test both read it.
    pub fn requires_admin(self) -> bool {
        matches!(
            self,
            Route::CreateEntitlement
                | Route::CancelEntitlement
                | Route::CreateGrant
                | Route::VoidGrant
                | Route::RecordUsage
                | Route::CommitUsage
                | Route::ReleaseUsage
                | Route::MetronomeCreateGrant
                | Route::MetronomeVoidGrant
                | Route::MetronomeEditGrant
                | Route::CreateCreditType
                | Route::CreateCapacityGrant
                | Route::DeleteCapacityGrant
                | Route::ResellCapacityGrant
                | Route::FlexpriceCreateCreditGrant
                | Route::FlexpriceUpdateCreditGrant
                | Route::FlexpriceDeleteCreditGrant
        )
    }

    /// Routes of the Flexprice surface, whose errors take Flexprice's merged shape.
    pub fn is_flexprice(self) -> bool {
        self.function().starts_with("flexprice-")
    }

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
    let span = tracing::info_span!(
        "request",
        request_id = %req.request_id,
        route = route.function(),
        key_id = tracing::field::Empty
    );
    async {
        let response = match handle(app, route, &req).await {
            Ok(r) => r,
            Err(e) if route.is_flexprice() => e.into_flexprice_response(),
            Err(e) => e.into_response(),
        };
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
    match route {
        Route::PaymentWebhook => return webhooks::payment_webhook(app, req).await,
        Route::SandboxCheckout => return sandbox::checkout_page(app, req).await,
        Route::SandboxCheckoutAction => return sandbox::checkout_action(app, req).await,
        _ => {}
    }
    let principal = authenticate(app.store.as_ref(), app.clock.as_ref(), &app.keys, req.api_key()).await?;
    // The key's id (never the key) on every line of the request, the closing "handled" included.
    tracing::Span::current().record("key_id", principal.key_id.as_str());
    tracing::debug!(tenant = %principal.tenant, role = principal.role.as_str(), "authenticated");
    if route.requires_admin() && !principal.is_admin() {
        return Err(ApiError::forbidden());
    }
    let who = &principal;
    use metronome as m;
    use paygentic as p;
    match route {
        Route::ListEntitlements => p::list_entitlements(app, who, req).await,
        Route::CreateEntitlement => p::create_entitlement(app, who, req).await,
        Route::GetEntitlement => p::get_entitlement(app, who, req).await,
        Route::CancelEntitlement => p::cancel_entitlement(app, who, req).await,
        Route::CreateGrant => p::create_grant(app, who, req).await,
        Route::ListGrants => p::list_grants(app, who, req).await,
        Route::GetGrant => p::get_grant(app, who, req).await,
        Route::VoidGrant => p::void_grant(app, who, req).await,
        Route::PurchaseGrant => p::purchase_grant(app, who, req).await,
        Route::GetInvoice => p::get_invoice(app, who, req).await,
        Route::RecordUsage => p::record_usage(app, who, req).await,
        Route::CommitUsage => p::commit_usage(app, who, req).await,
        Route::ReleaseUsage => p::release_usage(app, who, req).await,
        Route::GetBalance => p::get_balance(app, who, req).await,
        Route::MetronomeListGrants => m::list_grants(app, who, req).await,
        Route::MetronomeCreateGrant => m::create_grant(app, who, req).await,
        Route::MetronomeVoidGrant => m::void_grant(app, who, req).await,
        Route::MetronomeEditGrant => m::edit_grant(app, who, req).await,
        Route::MetronomeListEntries => m::list_entries(app, who, req).await,
        Route::ListCreditTypes => m::list_credit_types(app, who, req).await,
        Route::CreateCreditType => m::create_credit_type(app, who, req).await,
        Route::ListCapacityGrants => capacity::list(app, who, req).await,
        Route::CreateCapacityGrant => capacity::create(app, who, req).await,
        Route::DeleteCapacityGrant => capacity::delete(app, who, req).await,
        Route::ResellCapacityGrant => capacity::resell(app, who, req).await,
        Route::FlexpriceCreateCreditGrant => flexprice::create(app, who, req).await,
        Route::FlexpriceListCreditGrants => flexprice::list(app, who, req).await,
        Route::FlexpriceGetCreditGrant => flexprice::get(app, who, req).await,
        Route::FlexpriceUpdateCreditGrant => flexprice::update(app, who, req).await,
        Route::FlexpriceDeleteCreditGrant => flexprice::delete(app, who, req).await,
        Route::PaymentWebhook | Route::SandboxCheckout | Route::SandboxCheckoutAction => {
            Ok(not_found_route(&req.method, &req.path))
        }
    }
}

/// The optional `Idempotency-Key` header of creates whose documents have no idempotency field.
pub fn idempotency_header(req: &ApiRequest) -> Result<Option<grants_domain::grants::IdempotencyKey>, ApiError> {
    req.header("idempotency-key")
        .map(|k| {
            grants_domain::grants::IdempotencyKey::parse(k)
                .map_err(|e| ApiError::field("Idempotency-Key", "invalid", e.to_string()))
        })
        .transpose()
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
        assert_eq!(
            Route::resolve(&Method::GET, "/v1/entitlements").unwrap().0,
            Route::ListEntitlements
        );
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
