//! Every route: its method, path, Lambda function, who may call it and its handler, in one
//! table; and [`dispatch`], which runs a request through body limits, authentication and the
//! route's handler. A Lambda function names its [`endpoint`] (a function generic over the store),
//! so its binary links only that route's handler (not the table's others).
use crate::{capacity, flexprice, metronome, paygentic, portal, sandbox, stripe, svix, webhooks};
use crate::{ApiError, ApiRequest, ApiResponse, App, Store, MAX_BODY_BYTES};
use futures::future::BoxFuture;
use grants_domain::auth::{authenticate, Principal};
use http::Method;
use std::collections::HashMap;
use tracing::Instrument;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No API key: the webhook is authenticated by its signature, the checkout page by the
    /// unguessable session id in its URL.
    Public,
    /// Any key of the tenant.
    Member,
    /// Only an `admin` key (a `member` gets 403).
    Admin,
}

type Answer<'a> = BoxFuture<'a, Result<ApiResponse, ApiError>>;

/// A route's handler, for an app whose store is `S`.
pub enum Handler<S> {
    Public(for<'a> fn(&'a App<S>, &'a ApiRequest) -> Answer<'a>),
    Authenticated(for<'a> fn(&'a App<S>, &'a Principal, &'a ApiRequest) -> Answer<'a>),
}

impl<S> Clone for Handler<S> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S> Copy for Handler<S> {}

/// A route with its handler: what one Lambda function serves.
pub struct Endpoint<S> {
    pub route: Route,
    pub handler: Handler<S>,
}

impl<S> Clone for Endpoint<S> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S> Copy for Endpoint<S> {}

macro_rules! handler {
    (public $h:path) => {
        Handler::Public(|app, req| Box::pin($h(app, req)))
    };
    ($access:ident $h:path) => {
        Handler::Authenticated(|app, who, req| Box::pin($h(app, who, req)))
    };
}

macro_rules! access {
    (public) => {
        Access::Public
    };
    (member) => {
        Access::Member
    };
    (admin) => {
        Access::Admin
    };
}

macro_rules! routes {
    ($($variant:ident => $method:ident $template:literal $function:literal $access:ident $module:ident :: $handler:ident $doc:literal,)*) => {
        /// Every endpoint: its method, path template (API Gateway syntax), Lambda function name and
        /// who may call it. template.yaml and the local router in Cargo.toml are checked against this
        /// table (tests/api/routes.rs).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Route { $(#[doc = $doc] $variant,)* }

        impl Route {
            pub const ALL: &'static [Route] = &[$(Route::$variant,)*];
            pub fn method(self) -> Method { match self { $(Route::$variant => Method::$method,)* } }
            pub fn template(self) -> &'static str { match self { $(Route::$variant => $template,)* } }
            pub fn function(self) -> &'static str { match self { $(Route::$variant => $function,)* } }
            pub fn access(self) -> Access { match self { $(Route::$variant => access!($access),)* } }
            /// The route's endpoint, looked up at run time: links every handler (the local router and
            /// tests use it; a Lambda function names its [`endpoint`] function instead).
            pub fn endpoint<S: Store>(self) -> Endpoint<S> { match self { $(Route::$variant => endpoint::$variant(),)* } }
        }

        /// One function per route, named as its [`Route`] variant: `endpoint::CreateGrant`. A
        /// function (generic over the store) rather than a constant, so a binary that names one
        /// instantiates only that route's handler, for its own store type.
        #[allow(non_snake_case)]
        pub mod endpoint {
            use super::*;
            $(#[doc = $doc] pub fn $variant<S: Store>() -> Endpoint<S> { Endpoint { route: Route::$variant, handler: handler!($access $module::$handler) } })*
        }
    };
}

routes! {
    ListEntitlements => GET "/v1/entitlements" "list-entitlements" member paygentic::list_entitlements "List the tenant's entitlements.",
    CreateEntitlement => POST "/v1/entitlements" "create-entitlement" admin paygentic::create_entitlement "Provision an entitlement (admin).",
    GetEntitlement => GET "/v1/entitlements/{id}" "get-entitlement" member paygentic::get_entitlement "One entitlement with its balance.",
    CancelEntitlement => POST "/v1/entitlements/{id}/cancel" "cancel-entitlement" admin paygentic::cancel_entitlement "Cancel an entitlement (admin).",
    CreateGrant => POST "/v1/entitlements/{id}/grants" "create-grant" admin paygentic::create_grant "Create a grant, idempotently.",
    ListGrants => GET "/v1/entitlements/{id}/grants" "list-grants" member paygentic::list_grants "List an entitlement's grants.",
    GetGrant => GET "/v1/entitlements/{id}/grants/{grantId}" "get-grant" member paygentic::get_grant "One grant.",
    VoidGrant => DELETE "/v1/entitlements/{id}/grants/{grantId}" "void-grant" admin paygentic::void_grant "Void a grant, idempotently.",
    PurchaseGrant => POST "/v1/entitlements/{id}/grants/purchase" "purchase-grant" member paygentic::purchase_grant "Start a paid grant purchase: invoice + payment session.",
    GetInvoice => GET "/v2/invoices/{invoiceId}" "get-invoice" member paygentic::get_invoice "One invoice (a purchase's), with its grant once paid.",
    PaymentWebhook => POST "/v1/webhooks/payments" "payment-webhook" public webhooks::payment_webhook "Signed payment events in; verified ones to the payment-events queue (no API key).",
    StripeWebhook => POST "/v1/webhooks/stripe/{tenantId}" "stripe-webhook" public stripe::stripe_webhook "A tenant's signed Stripe events in; payment and refund events to the payment-events queue (no API key).",
    StripePaymentPage => GET "/pay/{sessionId}" "stripe-payment-page" public stripe::payment_page "The Stripe payment page of a purchase: the card in Stripe.js (no API key).",
    SandboxCheckout => GET "/sandbox/pay/{sessionId}" "sandbox-checkout" public sandbox::checkout_page "The sandbox provider's checkout page (no API key).",
    RecordUsage => POST "/v1/entitlements/{id}/usage" "record-usage" admin paygentic::record_usage "Record usage (or reserve it, when pending), idempotently by eventId (admin).",
    CommitUsage => POST "/v1/entitlements/{id}/usage/commit" "commit-usage" admin paygentic::commit_usage "Commit a pending usage event (admin).",
    ReleaseUsage => POST "/v1/entitlements/{id}/usage/release" "release-usage" admin paygentic::release_usage "Release a pending usage event (admin).",
    GetBalance => GET "/v1/entitlements/{id}/balance" "get-balance" member paygentic::get_balance "An entitlement's balance at any instant, per grant, with and without pending usage.",
    CreateBillableMetric => POST "/v0/billableMetrics" "create-billable-metric" admin paygentic::create_billable_metric "Paygentic: define which usage events burn credits, and by how much (admin).",
    ListBillableMetrics => GET "/v0/billableMetrics" "list-billable-metrics" member paygentic::list_billable_metrics "Paygentic: list billable metrics.",
    GetBillableMetric => GET "/v0/billableMetrics/{id}" "get-billable-metric" member paygentic::get_billable_metric "Paygentic: one billable metric.",
    EnableWebhooks => POST "/v0/webhooks" "enable-webhooks" admin paygentic::enable_webhooks "Paygentic: enable webhooks, once (admin).",
    GetWebhooks => GET "/v0/webhooks" "get-webhooks" member paygentic::get_webhooks "Paygentic: the tenant's webhook configuration.",
    GetWebhookPortal => GET "/v0/webhooks/portal" "get-webhook-portal" admin paygentic::get_webhook_portal "Paygentic: a one-hour link to the webhook portal page (admin).",
    UpdateWebhooks => PATCH "/v0/webhooks" "update-webhooks" admin paygentic::update_webhooks "Paygentic: pause or resume webhook delivery (admin).",
    DisableWebhooks => DELETE "/v0/webhooks" "disable-webhooks" admin paygentic::disable_webhooks "Paygentic: pause webhook delivery (admin).",
    SvixCreateEndpoint => POST "/api/v1/app/{app_id}/endpoint" "svix-create-endpoint" admin svix::create_endpoint "Svix: create a webhook endpoint (admin).",
    SvixListEndpoints => GET "/api/v1/app/{app_id}/endpoint" "svix-list-endpoints" admin svix::list_endpoints "Svix: list webhook endpoints (admin).",
    SvixGetEndpoint => GET "/api/v1/app/{app_id}/endpoint/{endpoint_id}" "svix-get-endpoint" admin svix::get_endpoint "Svix: one webhook endpoint (admin).",
    SvixPatchEndpoint => PATCH "/api/v1/app/{app_id}/endpoint/{endpoint_id}" "svix-patch-endpoint" admin svix::patch_endpoint "Svix: change a webhook endpoint (admin).",
    SvixGetEndpointSecret => GET "/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret" "svix-get-endpoint-secret" admin svix::get_endpoint_secret "Svix: a webhook endpoint's signing secret (admin).",
    SvixRotateEndpointSecret => POST "/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret/rotate" "svix-rotate-endpoint-secret" admin svix::rotate_endpoint_secret "Svix: rotate a webhook endpoint's signing secret (admin).",
    SvixListAttempts => GET "/api/v1/app/{app_id}/attempt/endpoint/{endpoint_id}" "svix-list-attempts" admin svix::list_attempts_by_endpoint "Svix: the delivery attempts to an endpoint, newest first (admin).",
    SvixResendMessage => POST "/api/v1/app/{app_id}/msg/{msg_id}/endpoint/{endpoint_id}/resend" "svix-resend-message" admin svix::resend_message "Svix: send a message to an endpoint again (admin).",
    SvixDeleteEndpoint => DELETE "/api/v1/app/{app_id}/endpoint/{endpoint_id}" "svix-delete-endpoint" admin svix::delete_endpoint "Svix: delete a webhook endpoint (admin).",
    IngestEvent => POST "/v0/events" "ingest-event" admin paygentic::ingest_event "Paygentic: a usage event in, metered by its type's billable metric and burned on the customer's entitlements (admin).",
    MetronomeListGrants => POST "/v1/credits/listGrants" "metronome-list-grants" member metronome::list_grants "Metronome: list credit grants with balances and deductions.",
    MetronomeCreateGrant => POST "/v1/credits/createGrant" "metronome-create-grant" admin metronome::create_grant "Metronome: create a credit grant (admin).",
    MetronomeVoidGrant => POST "/v1/credits/voidGrant" "metronome-void-grant" admin metronome::void_grant "Metronome: void a credit grant (admin).",
    MetronomeEditGrant => POST "/v1/credits/editGrant" "metronome-edit-grant" admin metronome::edit_grant "Metronome: edit a credit grant's name, expiry or type (admin).",
    MetronomeListEntries => POST "/v1/credits/listEntries" "metronome-list-entries" member metronome::list_entries "Metronome: customers' credit ledgers with running balances.",
    ListCreditTypes => GET "/v1/credit-types" "list-credit-types" member metronome::list_credit_types "The tenant's credit types, the default USD (cents) first.",
    CreateCreditType => POST "/v1/credit-types" "create-credit-type" admin metronome::create_credit_type "Add a credit type to the tenant's catalogue (admin).",
    ListCapacityGrants => GET "/v2/grants" "list-capacity-grants" member capacity::list "The organization's capacity grants (expired and deleted ones with show_expired=true).",
    CreateCapacityGrant => POST "/v2/grants" "create-capacity-grant" admin capacity::create "Create a capacity grant (admin).",
    DeleteCapacityGrant => DELETE "/v2/grants/{grant_fid}" "delete-capacity-grant" admin capacity::delete "Soft-delete a capacity grant, idempotently (admin).",
    ResellCapacityGrant => POST "/v2/grants/{grant_fid}/resell" "resell-capacity-grant" admin capacity::resell "Resell part of a capacity grant: a new smaller grant replaces it (admin).",
    FlexpriceCreateCreditGrant => POST "/v1/creditgrants" "flexprice-create-credit-grant" admin flexprice::create "Flexprice: create a credit grant plan and apply what is due (admin).",
    FlexpriceListCreditGrants => GET "/v1/creditgrants" "flexprice-list-credit-grants" member flexprice::list "Flexprice: list credit grant plans.",
    FlexpriceGetCreditGrant => GET "/v1/creditgrants/{id}" "flexprice-get-credit-grant" member flexprice::get "Flexprice: one credit grant plan.",
    FlexpriceUpdateCreditGrant => PUT "/v1/creditgrants/{id}" "flexprice-update-credit-grant" admin flexprice::update "Flexprice: change a plan's name, metadata or end date (admin).",
    FlexpriceDeleteCreditGrant => DELETE "/v1/creditgrants/{id}" "flexprice-delete-credit-grant" admin flexprice::delete "Flexprice: archive a plan, or end it at effective_date (admin).",
    SandboxCheckoutAction => POST "/sandbox/pay/{sessionId}" "sandbox-checkout-action" public sandbox::checkout_action "Pay or Cancel on the sandbox checkout page (no API key).",
    WebhookPortalPage => GET "/webhooks/portal/{token}" "webhook-portal-page" public portal::portal_page "The webhook portal page: endpoints, secrets and deliveries (the link's token, no API key).",
    WebhookPortalAction => POST "/webhooks/portal/{token}" "webhook-portal-action" public portal::portal_action "A change on the webhook portal page (the link's token, no API key).",
}

impl Route {
    /// Routes that take no API key (see [`Access::Public`]).
    pub fn is_public(self) -> bool {
        self.access() == Access::Public
    }

    /// Routes that only an `admin` key may call. Dispatch and the authorization-matrix test both
    /// read it from the table.
    pub fn requires_admin(self) -> bool {
        self.access() == Access::Admin
    }

    /// Routes of the Flexprice surface, whose errors take Flexprice's merged shape.
    pub fn is_flexprice(self) -> bool {
        self.function().starts_with("flexprice-")
    }

    /// Routes of the Svix endpoint-management surface, whose errors take Svix's shapes.
    pub fn is_svix(self) -> bool {
        self.function().starts_with("svix-")
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

/// Runs one request through auth and the route's handler (looked up in the table). Never panics on
/// client input; every failure is a JSON error.
pub async fn dispatch<S: Store>(app: &App<S>, route: Route, req: ApiRequest) -> ApiResponse {
    serve(app, route.endpoint(), req).await
}

/// Runs one request through auth and the endpoint's handler. Never panics on client input; every
/// failure is a JSON error (Flexprice's shape on Flexprice routes).
pub async fn serve<S: Store>(app: &App<S>, endpoint: Endpoint<S>, mut req: ApiRequest) -> ApiResponse {
    let route = endpoint.route;
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
        let response = match handle(app, endpoint, &req).await {
            Ok(r) => r,
            Err(e) if route.is_flexprice() => e.into_flexprice_response(),
            Err(e) if route.is_svix() => e.into_svix_response(),
            Err(e) => e.into_response(),
        };
        tracing::info!(status = response.status.as_u16(), "handled");
        response
    }
    .instrument(span)
    .await
}

async fn handle<S: Store>(app: &App<S>, endpoint: Endpoint<S>, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    if req.body.len() > MAX_BODY_BYTES {
        return Err(ApiError::payload_too_large(MAX_BODY_BYTES));
    }
    let handler = match endpoint.handler {
        Handler::Public(handler) => return handler(app, req).await,
        Handler::Authenticated(handler) => handler,
    };
    let principal = authenticate(app.store.as_ref(), app.clock.as_ref(), &app.keys, req.api_key()).await?;
    // The key's id (never the key) on every line of the request, the closing "handled" included.
    tracing::Span::current().record("key_id", principal.key_id.as_str());
    tracing::debug!(tenant = %principal.tenant, role = principal.role.as_str(), "authenticated");
    if endpoint.route.requires_admin() && !principal.is_admin() {
        return Err(ApiError::forbidden());
    }
    handler(app, &principal, req).await
}
