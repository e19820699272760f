//! The HTTP surface, independent of how requests arrive (Lambda, tests): routes, auth, parsing,
//! JSON shapes and domain errors as HTTP.
//!
//! Each vendor surface is a folder of thin adapters (`paygentic/`, `metronome/`, `flexprice/`,
//! `capacity/`): a file per resource or operation group, and an `errors.rs` mapping the errors of
//! the domain operations that surface calls. `error/` holds the error type and the failures every
//! surface shares.
pub mod body;
pub mod capacity;
pub mod error;
pub mod flexprice;
pub mod fulfilment;
pub mod metronome;
pub mod openapi;
pub mod paygentic;
pub mod payment_events;
pub mod portal;
pub mod providers;
pub mod routes;
pub mod sandbox;
pub mod secrets;
pub mod stripe;
pub mod svix;
pub mod webhooks;
pub mod wire;

use crate::providers::NoProvider;
use crate::secrets::Secrets;
use async_trait::async_trait;
pub use error::ApiError;
use grants_domain::auth::KeyCache;
use grants_domain::credits::CreditTypeCache;
use grants_domain::messaging::{MessageQueue, QueueError};
use grants_domain::payments::PaymentProvider;
pub use grants_domain::ports::Store;
use grants_domain::secrets::InMemorySecrets;
use grants_domain::tenants::TenantCache;
use grants_domain::{Clock, SystemClock};
use http::{HeaderMap, Method, StatusCode};
pub use routes::{dispatch, endpoint, Endpoint, Route};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Bodies above this are refused with 413 before parsing (API Gateway itself allows 10 MB).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Everything a handler needs. Built once per Lambda instance (cold start) and shared.
///
/// Generic over its store (`DynamoStore` when deployed) rather than holding a `dyn Store`: a
/// `dyn Store`'s vtable names every port method, so every binary linked all of the store's
/// DynamoDB operations; with the concrete type each binary links only what its route calls
/// (bench/REPORT.md, section 3).
pub struct App<S> {
    pub store: Arc<S>,
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
    /// Webhook delivery jobs (one message to one endpoint), for resends.
    pub webhook_deliveries: Arc<dyn MessageQueue>,
    /// Where the Stripe payment page loads Stripe.js from (`STRIPE_JS_URL`).
    pub stripe_js_url: String,
}

/// Stands in for a queue or transport a function was not configured with: every use fails.
struct Unconfigured(&'static str);

#[async_trait]
impl MessageQueue for Unconfigured {
    async fn send(&self, _body: String) -> Result<(), QueueError> {
        Err(QueueError(format!("{} is not configured", self.0)))
    }
}

impl<S: Store> App<S> {
    /// An app with no payment provider, no queues and secrets in process memory (see the `with_`
    /// methods; `grants_lambda::Function` wires the deployed ones).
    pub fn new(store: Arc<S>, clock: Arc<dyn Clock>) -> Self {
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
            webhook_deliveries: Arc::new(Unconfigured("webhook deliveries queue")),
            stripe_js_url: stripe::DEFAULT_STRIPE_JS_URL.to_owned(),
        }
    }
    /// `url` must be an absolute http(s) URL (checked by the Lambda configuration at init).
    pub fn with_stripe_js_url(self, url: String) -> Self {
        Self {
            stripe_js_url: url,
            ..self
        }
    }
    pub fn with_system_clock(store: Arc<S>) -> Self {
        Self::new(store, Arc::new(SystemClock))
    }
    pub fn with_queues(self, payment_events: Arc<dyn MessageQueue>, invoice_events: Arc<dyn MessageQueue>) -> Self {
        Self {
            payment_events,
            invoice_events,
            ..self
        }
    }
    pub fn with_payment_events(self, payment_events: Arc<dyn MessageQueue>) -> Self {
        Self { payment_events, ..self }
    }
    pub fn with_invoice_events(self, invoice_events: Arc<dyn MessageQueue>) -> Self {
        Self { invoice_events, ..self }
    }
    pub fn with_webhook_deliveries(self, webhook_deliveries: Arc<dyn MessageQueue>) -> Self {
        Self {
            webhook_deliveries,
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
    /// 204 and no body.
    pub fn no_content() -> Self {
        Self {
            status: StatusCode::NO_CONTENT,
            headers: Vec::new(),
            body: String::new(),
        }
    }

    /// A JSON body: one of the surfaces' wire types (their schemas are openapi.yaml's).
    pub fn json<T: serde::Serialize + ?Sized>(status: StatusCode, value: &T) -> Self {
        let (status, body) = match serde_json::to_string(value) {
            Ok(body) => (status, body),
            Err(e) => {
                tracing::error!(error = %e, "a response body did not serialize");
                let body = r#"{"message":"Internal error","error":"internal_error","code":"internal_error"}"#;
                (StatusCode::INTERNAL_SERVER_ERROR, body.to_owned())
            }
        };
        Self {
            status,
            headers: vec![
                ("content-type".to_owned(), "application/json".to_owned()),
                ("x-content-type-options".to_owned(), "nosniff".to_owned()),
            ],
            body,
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

/// A checkout page (the sandbox's and Stripe's): one layout, `head` added to the document's head
/// (already escaped; e.g. a script tag), `body` as is.
pub(crate) fn checkout_page(status: StatusCode, title: &str, head: &str, body: &str) -> ApiResponse {
    ApiResponse::html(
        status,
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">{head}\
             <style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem}}\
             .amount{{font-size:2rem;font-weight:600}} button{{font-size:1rem;padding:.6rem 1.4rem;margin:1rem .5rem 0 0}}\
             #card-element{{padding:.7rem;border:1px solid #bbb;border-radius:.3rem}} #error{{color:#b00020}}\
             .note{{color:#666;font-size:.85rem}}\
             .sandbox{{background:#b00020;color:#fff;font-weight:700;padding:.8rem 1rem;border-radius:.3rem;text-align:center}}\
             </style></head><body>{body}</body></html>",
            t = html_escape(title)
        ),
    )
}

/// A checkout page's amount and credits.
pub(crate) fn checkout_summary(i: &grants_domain::purchases::Invoice) -> String {
    format!(
        "<p class=\"amount\" id=\"amount\">{price} {currency}</p><p id=\"credits\">{credits} credits</p>",
        price = html_escape(&i.price.to_wire()),
        currency = html_escape(&i.price.currency().code().to_uppercase()),
        credits = html_escape(&i.grant_amount.value().normalize().to_string()),
    )
}

/// Text made safe inside HTML (element content and quoted attribute values).
pub(crate) fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
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
