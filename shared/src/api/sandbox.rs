//! The sandbox payment provider's checkout page: what a customer sees at a purchase's payment URL.
//! GET shows the amount, the currency and Pay / Cancel; POST makes the sandbox provider emit a
//! signed webhook to this service, exactly as a real provider would, then redirects the browser to
//! the purchase's successUrl (Pay) or cancelUrl (Cancel). Cancel expires the session: the invoice
//! is canceled, no grant, no charge.
use super::{ApiError, ApiRequest, ApiResponse, App};
use crate::domain::payments::{self, PaymentEvent, PaymentEventKind};
use crate::domain::purchases::{self, Invoice, InvoiceLookupError, InvoiceStatus};
use crate::domain::tenants;
use crate::domain::SessionId;
use http::StatusCode;

pub const WEBHOOK_PATH: &str = "/v1/webhooks/payments";

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn page(status: StatusCode, title: &str, body: &str) -> ApiResponse {
    ApiResponse::html(
        status,
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem}}\
             .amount{{font-size:2rem;font-weight:600}} button{{font-size:1rem;padding:.6rem 1.4rem;margin-right:.5rem}}\
             .note{{color:#666;font-size:.85rem}}</style></head><body>\
             <p class=\"note\">Sandbox payment provider &mdash; no real money moves.</p>{body}</body></html>",
            t = escape(title)
        ),
    )
}

/// The session in the path; not found unless the configured provider is the sandbox.
fn session_in_path(app: &App, req: &ApiRequest) -> Result<SessionId, ApiResponse> {
    if app.payments.name() != "sandbox" {
        return Err(not_found());
    }
    SessionId::parse(req.param("sessionId")).map_err(|_| not_found())
}

fn not_found() -> ApiResponse {
    page(StatusCode::NOT_FOUND, "Payment not found", "<h1 id=\"status\">Payment not found</h1>")
}

fn summary(i: &Invoice) -> String {
    format!(
        "<p class=\"amount\" id=\"amount\">{price} {currency}</p><p id=\"credits\">{credits} credits</p>",
        price = escape(&i.price.to_wire()),
        currency = escape(&i.price.currency().code().to_uppercase()),
        credits = escape(&i.grant_amount.value().normalize().to_string()),
    )
}

/// The page for the invoice's state as of now.
fn render(i: &Invoice, now: crate::domain::Timestamp, notice: Option<&str>) -> ApiResponse {
    let notice = notice.map(|n| format!("<p id=\"notice\">{}</p>", escape(n))).unwrap_or_default();
    let body = match i.status_at(now) {
        InvoiceStatus::Open => format!(
            "<h1 id=\"status\">Pay for credits</h1>{notice}{summary}\
             <form method=\"post\"><button type=\"submit\" name=\"action\" value=\"pay\" id=\"pay\">Pay</button>\
             <button type=\"submit\" name=\"action\" value=\"cancel\" id=\"cancel\">Cancel</button></form>\
             <p class=\"note\">Expires {expires}</p>",
            summary = summary(i),
            expires = escape(&i.session.expires_at.to_rfc3339()),
        ),
        InvoiceStatus::Paid => format!("<h1 id=\"status\">Paid</h1>{notice}{}", summary(i)),
        InvoiceStatus::Canceled => format!("<h1 id=\"status\">This payment has expired</h1>{notice}{}", summary(i)),
    };
    page(StatusCode::OK, "Checkout", &body)
}

async fn load(app: &App, id: &SessionId) -> Result<Invoice, ApiResponse> {
    match purchases::invoice_for_session(app.store.as_ref(), id).await {
        Ok(i) => Ok(i),
        Err(InvoiceLookupError::NotFound) => Err(not_found()),
        Err(InvoiceLookupError::Store(e)) => Err(ApiError::from(e).into_response()),
    }
}

pub async fn checkout_page(app: &App, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
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

pub async fn checkout_action(app: &App, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let id = match session_in_path(app, req) {
        Ok(id) => id,
        Err(r) => return Ok(r),
    };
    let action = form_urlencoded::parse(&req.body).find(|(k, _)| k == "action").map(|(_, v)| v.into_owned());
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
    let settings = tenants::settings(app.store.as_ref(), &app.tenants, &invoice.tenant).await?;
    let event = PaymentEvent {
        id: payments::sandbox_event_id(),
        kind,
        tenant: invoice.tenant.clone(),
        invoice_id: invoice.id.clone(),
        session_id: invoice.session.id.clone(),
        amount_minor: invoice.session.amount_minor,
        currency: invoice.price.currency(),
        occurred_at: now,
    };
    let body = event.to_json();
    let signature = payments::sign(&settings.webhook_secret, now, body.as_bytes());
    let url = format!("{}{WEBHOOK_PATH}", req.base_url());
    match app.delivery.deliver(&url, &signature, body).await {
        Ok(status) if (200..300).contains(&status) => {}
        Ok(status) => {
            tracing::error!(status, "the webhook refused the sandbox event");
            return Ok(page(StatusCode::BAD_GATEWAY, "Payment failed", "<h1 id=\"status\">The merchant did not accept the payment; try again</h1>"));
        }
        Err(e) => {
            tracing::error!(error = %e, "could not deliver the sandbox event");
            return Ok(page(StatusCode::BAD_GATEWAY, "Payment failed", "<h1 id=\"status\">The merchant could not be reached; try again</h1>"));
        }
    }
    tracing::info!(event = %event.id, kind = kind.as_str(), invoice = %invoice.id, "sandbox event delivered");
    let (target, result) = match kind {
        PaymentEventKind::Paid => (invoice.success_url.as_deref(), "paid"),
        _ => (invoice.cancel_url.as_deref(), "canceled"),
    };
    let fallback = format!("{}/sandbox/pay/{}?result={result}", req.base_url(), invoice.session.id);
    Ok(ApiResponse::see_other(target.unwrap_or(&fallback)))
}
