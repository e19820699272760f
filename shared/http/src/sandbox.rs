//! The sandbox payment provider's checkout page: what a customer sees at a purchase's payment URL.
//! GET shows the amount, the currency and Pay / Cancel; POST hands the sandbox provider's payment
//! event to the payment-events queue inside the service (the path a verified webhook takes; never
//! an HTTP call to a URL), then redirects the browser to the purchase's successUrl (Pay) or
//! cancelUrl (Cancel). Cancel expires the session: the invoice is canceled, no grant, no charge.
//!
//! The page marks itself as a sandbox on every view, and is served only while the configured
//! provider is the sandbox (`PAYMENT_PROVIDER=sandbox`): a staging stack, never production.
use crate::{page_csp, ApiError, ApiRequest, ApiResponse, App, Store};
use grants_domain::payments::{PaymentEvent, PaymentEventKind};
use grants_domain::purchases::{self, Invoice, InvoiceLookupError, InvoiceStatus};
use grants_domain::tenants::origin_of;
use grants_domain::SessionId;
use http::StatusCode;

use crate::html_escape as escape;

/// A page whose form may also redirect to `redirects` (the purchase's success and cancel URLs).
fn page_for(status: StatusCode, title: &str, body: &str, redirects: &[&str]) -> ApiResponse {
    let origins: Vec<String> = redirects.iter().filter_map(|u| origin_of(u)).collect();
    let mut response = page(status, title, body);
    response.set_header("content-security-policy", &page_csp(&origins));
    response
}

fn page(status: StatusCode, title: &str, body: &str) -> ApiResponse {
    crate::checkout_page(
        status,
        title,
        "",
        &format!(
            "<p class=\"sandbox\" id=\"sandbox-banner\" role=\"alert\">SANDBOX &mdash; TEST MODE. No real money \
             moves; do not enter real payment details.</p>{body}"
        ),
    )
}

/// The session in the path; not found unless the configured provider offers the sandbox.
fn session_in_path<S: Store>(app: &App<S>, req: &ApiRequest) -> Result<SessionId, ApiResponse> {
    if !app.payments.offers(grants_domain::payments::SANDBOX_PROVIDER) {
        return Err(not_found());
    }
    SessionId::parse(req.param("sessionId")).map_err(|_| not_found())
}

fn not_found() -> ApiResponse {
    page(
        StatusCode::NOT_FOUND,
        "Payment not found",
        "<h1 id=\"status\">Payment not found</h1>",
    )
}

/// The page for the invoice's state as of now.
fn render(i: &Invoice, now: grants_domain::Timestamp, notice: Option<&str>) -> ApiResponse {
    let notice = notice
        .map(|n| format!("<p id=\"notice\">{}</p>", escape(n)))
        .unwrap_or_default();
    let body = match i.status_at(now) {
        InvoiceStatus::Open => format!(
            "<h1 id=\"status\">Pay for credits</h1>{notice}{summary}\
             <form method=\"post\"><button type=\"submit\" name=\"action\" value=\"pay\" id=\"pay\">Pay</button>\
             <button type=\"submit\" name=\"action\" value=\"cancel\" id=\"cancel\">Cancel</button></form>\
             <p class=\"note\">Expires {expires}</p>",
            summary = crate::checkout_summary(i),
            expires = escape(&i.session.expires_at.to_rfc3339()),
        ),
        InvoiceStatus::Paid => format!("<h1 id=\"status\">Paid</h1>{notice}{}", crate::checkout_summary(i)),
        InvoiceStatus::Canceled => format!(
            "<h1 id=\"status\">This payment has expired</h1>{notice}{}",
            crate::checkout_summary(i)
        ),
    };
    let redirects: Vec<&str> = [i.success_url.as_deref(), i.cancel_url.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    page_for(StatusCode::OK, "Checkout", &body, &redirects)
}

/// The invoice of a sandbox session. Another provider's session (a Stripe one, under
/// `stripe+sandbox`) is not found here: only its own provider may say it was paid.
async fn load<S: Store>(app: &App<S>, id: &SessionId) -> Result<Invoice, ApiResponse> {
    match purchases::invoice_for_session(app.store.as_ref(), id).await {
        Ok(i) if i.is_sandbox() => Ok(i),
        Ok(_) => Err(not_found()),
        Err(InvoiceLookupError::NotFound) => Err(not_found()),
        Err(InvoiceLookupError::Store(e)) => Err(ApiError::from(e).into_response()),
    }
}

/// `sessionId` in the path: the payment session, whose unguessable id is the page's only secret.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SessionPath {
    /// A payment session id (the last segment of the purchase's payment URL).
    #[param(rename = "sessionId")]
    pub session_id: String,
}

/// The form the page posts: which button was pressed.
#[derive(utoipa::ToSchema)]
pub struct CheckoutForm {
    #[schema(schema_with = checkout_action_value)]
    pub action: String,
}

fn checkout_action_value() -> utoipa::openapi::schema::ObjectBuilder {
    crate::wire::one_of(&["pay", "cancel"], false)
}

/// The sandbox provider's checkout page (HTML).
///
/// No API key; the session id is the secret.
#[utoipa::path(get, path = "/sandbox/pay/{sessionId}", operation_id = "sandboxCheckout", tag = "payments",
    security(()),
    params(SessionPath, ("result" = Option<String>, Query, description = "paid or canceled: a notice on the page.")),
    responses(
        (status = 200, description = "The checkout page.", body = String, content_type = "text/html"),
        (status = 404, description = "No such session.", body = String, content_type = "text/html"),
        (status = 503, response = crate::openapi::Busy),
    ))]
pub async fn checkout_page<S: Store>(app: &App<S>, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let id = match session_in_path(app, req) {
        Ok(id) => id,
        Err(r) => return Ok(r),
    };
    let invoice = match load(app, &id).await {
        Ok(i) => i,
        Err(r) => return Ok(r),
    };
    let notice = match req.query_value("result") {
        Some("paid") => Some("Payment submitted. Credits appear once it is confirmed."),
        Some("canceled") => Some("Payment canceled."),
        _ => None,
    };
    Ok(render(&invoice, app.clock.now(), notice))
}

/// Pay or Cancel on the sandbox checkout page.
///
/// No API key. Pay or Cancel becomes a payment event on the queue a verified webhook feeds.
#[utoipa::path(post, path = "/sandbox/pay/{sessionId}", operation_id = "sandboxCheckoutAction", tag = "payments",
    security(()),
    params(SessionPath),
    request_body(content = CheckoutForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Back to the page, or to the purchase's success or cancel URL."),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 404, description = "No such session.", body = String, content_type = "text/html"),
        (status = 409, description = "The session is no longer open.", body = String, content_type = "text/html"),
        (status = 413, response = crate::openapi::TooLarge),
        (status = 503, description = "The event could not be recorded (HTML), or storage is busy (JSON); retry.",
            content((String = "text/html"), (crate::error::ErrorBody<'static> = "application/json"))),
    ))]
pub async fn checkout_action<S: Store>(app: &App<S>, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let id = match session_in_path(app, req) {
        Ok(id) => id,
        Err(r) => return Ok(r),
    };
    let action = form_urlencoded::parse(&req.body)
        .find(|(k, _)| k == "action")
        .map(|(_, v)| v.into_owned());
    let kind = match action.as_deref() {
        Some("pay") => PaymentEventKind::Paid,
        Some("cancel") => PaymentEventKind::Expired,
        _ => return Err(ApiError::field("action", "invalid", "must be pay or cancel")),
    };
    let invoice = match load(app, &id).await {
        Ok(i) => i,
        Err(r) => return Ok(r),
    };
    let now = app.clock.now();
    if invoice.status_at(now) != InvoiceStatus::Open {
        let mut r = render(&invoice, now, Some("This payment session is no longer open."));
        r.status = StatusCode::CONFLICT;
        return Ok(r);
    }
    let event = PaymentEvent {
        id: crate::providers::sandbox_event_id(),
        kind,
        tenant: invoice.tenant.clone(),
        invoice_id: invoice.id.clone(),
        session_id: invoice.session.id.clone(),
        amount_minor: invoice.session.amount_minor,
        currency: invoice.price.currency(),
        occurred_at: now,
        failure: None,
    };
    // The event is the service's own (nothing of the request is in it): it joins the queue a
    // verified webhook feeds, with no HTTP hop and no signature to hand anyone.
    if let Err(e) = app.payment_events.send(crate::payment_events::encode(&event)).await {
        tracing::error!(error = %e, "could not enqueue the sandbox event");
        return Ok(page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Payment failed",
            "<h1 id=\"status\">The payment could not be recorded; try again</h1>",
        ));
    }
    tracing::info!(event = %event.id, kind = kind.as_str(), invoice = %invoice.id, "sandbox event enqueued");
    let (target, result) = match kind {
        PaymentEventKind::Paid => (invoice.success_url.as_deref(), "paid"),
        _ => (invoice.cancel_url.as_deref(), "canceled"),
    };
    // Without a redirect URL, back to this page (a relative URL: no host is needed).
    let fallback = format!("{}?result={result}", invoice.session.id);
    Ok(ApiResponse::see_other(target.unwrap_or(&fallback)))
}
