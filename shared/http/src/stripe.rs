//! Stripe as the payment provider (`PAYMENT_PROVIDER=stripe`, issue 18), the parts served over
//! HTTP: the hosted payment page a purchase's `paymentSessions[0].url` opens, and the route Stripe
//! sends a tenant's webhook events to. The Stripe API calls themselves (creating and canceling
//! PaymentIntents) are `grants_lambda::stripe`'s.
//!
//! **The payment page**, `GET /pay/{sessionId}`: the invoice's amount and a card field from
//! Stripe.js (Elements); Pay calls `stripe.confirmCardPayment(clientSecret, {payment_method:
//! {card}})` (Stripe.js runs 3-D Secure itself when the card asks for it), then the browser goes
//! to the purchase's `successUrl` (or the page says it is paid); Cancel goes to `cancelUrl`. The
//! card never reaches this service. Stripe.js is loaded from `STRIPE_JS_URL` (deployed:
//! `https://js.stripe.com/v3/`; locally the local Stripe server's copy).
//!
//! **The webhook route**, `POST /v1/webhooks/stripe/{tenantId}`: the endpoint URL a merchant gives
//! Stripe for the tenant. `Stripe-Signature` (`t=<unix seconds>,v1=<hex HMAC-SHA256 of
//! "<t>.<body>">`, several `v1` during a secret's roll) is verified against the tenant's webhook
//! signing secrets, with 5 minutes' tolerance, before anything else of the body is believed. Then:
//!
//! | Stripe event | payment event queued |
//! |---|---|
//! | `payment_intent.succeeded` | `payment.paid` (amount: `amount_received`) |
//! | `payment_intent.payment_failed` | `payment.failed` (failure: `last_payment_error.decline_code` or `.code`) |
//! | `payment_intent.canceled` | `payment.expired` |
//! | `charge.refunded` | `payment.refunded` (amount: `amount_refunded`, the running total) |
//!
//! Events of PaymentIntents this service did not open for this tenant (no `grants_tenant` /
//! `grants_invoice_id` metadata, or another tenant's) and other event types are answered 200 and
//! ignored: a Stripe account may also take payments this service knows nothing of. The payment
//! session of a PaymentIntent is `ps_<PaymentIntent id>`, so the fulfilment's session check is the
//! PaymentIntent check; amount and currency are checked there too (a mismatch is dead-lettered).
use crate::openapi::{BadRequest, Busy, TooLarge, Unsupported};
use crate::{html_escape as escape, ApiError, ApiRequest, ApiResponse, App, Store};
use grants_domain::money::Currency;
use grants_domain::payments::{EventError, PaymentEvent, PaymentEventKind, SignatureError, SignatureHeader};
use grants_domain::purchases::{self, Invoice, InvoiceLookupError, InvoiceStatus};
use grants_domain::tenants::origin_of;
use grants_domain::{InvoiceId, SessionId, TenantId, Timestamp};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// [`PaymentProvider::name`](grants_domain::payments::PaymentProvider::name) of Stripe.
pub const STRIPE_PROVIDER: &str = "stripe";
pub const STRIPE_SIGNATURE_HEADER: &str = "stripe-signature";
/// Where a purchase's payment page is, under the public base URL.
pub const PAY_PATH: &str = "/pay/";
/// Stripe.js as Stripe serves it.
pub const DEFAULT_STRIPE_JS_URL: &str = "https://js.stripe.com/v3/";
/// PaymentIntent metadata naming the tenant and invoice (set when the PaymentIntent is opened).
pub const METADATA_TENANT: &str = "grants_tenant";
pub const METADATA_INVOICE: &str = "grants_invoice_id";

/// The payment session of a PaymentIntent: `ps_<PaymentIntent id>`.
pub fn session_of_payment_intent(payment_intent: &str) -> Option<SessionId> {
    payment_intent
        .starts_with("pi_")
        .then(|| SessionId::parse(&format!("{}{payment_intent}", SessionId::PREFIX)).ok())
        .flatten()
}

/// The PaymentIntent of a payment session opened by Stripe.
pub fn payment_intent_of_session(session: &SessionId) -> Option<&str> {
    session
        .as_str()
        .strip_prefix(SessionId::PREFIX)
        .filter(|pi| pi.starts_with("pi_"))
}

// ---------------------------------------------------------------------------------------------
// The payment page

/// The page's script (constant, so that the Content-Security-Policy allows exactly it by hash).
/// It reads its settings from the JSON block `#checkout` (which is data, never run).
const PAGE_SCRIPT: &str = r#"(function () {
  var cfg = JSON.parse(document.getElementById('checkout').textContent);
  var stripe = Stripe(cfg.publishableKey);
  var card = stripe.elements().create('card');
  card.mount('#card-element');
  var form = document.getElementById('payment-form');
  var pay = document.getElementById('pay');
  var error = document.getElementById('error');
  form.addEventListener('submit', function (e) {
    e.preventDefault();
    pay.disabled = true;
    error.textContent = '';
    stripe.confirmCardPayment(cfg.clientSecret, { payment_method: { card: card } }).then(function (r) {
      if (r.error) {
        error.textContent = (r.error.message || 'The payment failed.') + ' You can try another card.';
        pay.disabled = false;
        return;
      }
      var status = r.paymentIntent && r.paymentIntent.status;
      if (status === 'succeeded' || status === 'processing' || status === 'requires_capture') {
        if (cfg.successUrl) { window.location.assign(cfg.successUrl); return; }
        document.getElementById('status').textContent = 'Paid';
        form.hidden = true;
      } else {
        error.textContent = 'The payment did not complete (' + status + ').';
        pay.disabled = false;
      }
    });
  });
})();"#;

/// The settings the page's script reads.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PageSettings<'a> {
    publishable_key: &'a str,
    client_secret: &'a str,
    success_url: Option<&'a str>,
}

fn sha256_base64(s: &str) -> String {
    use sha2::{Digest, Sha256};
    base64_standard(&Sha256::digest(s.as_bytes()))
}

/// Standard base64 with padding (for a CSP hash source).
fn base64_standard(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The page's policy: its own script by hash and Stripe.js's origin; frames and requests to
/// Stripe (Stripe's documented sources, or the local Stripe server's origin); navigation to the
/// purchase's redirect origins only.
fn page_csp(js_url: &str, redirects: &[&str]) -> String {
    let js_origin = origin_of(js_url).unwrap_or_else(|| "https://js.stripe.com".to_owned());
    let (frames, connect) = if js_origin == "https://js.stripe.com" {
        (
            "https://js.stripe.com https://hooks.stripe.com".to_owned(),
            "https://api.stripe.com".to_owned(),
        )
    } else {
        (js_origin.clone(), js_origin.clone())
    };
    let mut navigate: Vec<String> = redirects.iter().filter_map(|u| origin_of(u)).collect();
    navigate.insert(0, "'self'".to_owned());
    format!(
        "default-src 'none'; script-src 'sha256-{hash}' {js_origin}; frame-src {frames}; connect-src {connect}; \
         img-src https: data:; style-src 'unsafe-inline'; form-action {nav}; frame-ancestors 'none'; base-uri 'none'",
        hash = sha256_base64(PAGE_SCRIPT),
        nav = navigate.join(" "),
    )
}

fn not_found_page() -> ApiResponse {
    crate::checkout_page(
        StatusCode::NOT_FOUND,
        "Payment not found",
        "",
        "<h1 id=\"status\">Payment not found</h1>",
    )
}

/// The page for the invoice's state as of `now`.
fn render(i: &Invoice, now: Timestamp, js_url: &str) -> ApiResponse {
    let status = i.status_at(now);
    let keys = match (&i.session.checkout, status) {
        (Some(keys), InvoiceStatus::Open) => keys,
        (_, InvoiceStatus::Paid) => {
            return crate::checkout_page(
                StatusCode::OK,
                "Paid",
                "",
                &format!("<h1 id=\"status\">Paid</h1>{}", crate::checkout_summary(i)),
            )
        }
        (_, InvoiceStatus::Canceled) => {
            return crate::checkout_page(
                StatusCode::OK,
                "Payment expired",
                "",
                &format!(
                    "<h1 id=\"status\">This payment has expired</h1>{}",
                    crate::checkout_summary(i)
                ),
            )
        }
        (None, InvoiceStatus::Open) => return not_found_page(),
    };
    let settings = PageSettings {
        publishable_key: &keys.publishable_key,
        client_secret: &keys.client_secret,
        success_url: i.success_url.as_deref(),
    };
    // JSON inside <script type="application/json">: "<" escaped so that no "</script>" ends it.
    let settings = serde_json::to_string(&settings)
        .unwrap_or_default()
        .replace('<', "\\u003c");
    let failure = i
        .failure_reason
        .as_deref()
        .map(|f| {
            format!(
                "<p class=\"note\" id=\"last-failure\">The last attempt failed: {}</p>",
                escape(f)
            )
        })
        .unwrap_or_default();
    let cancel = i
        .cancel_url
        .as_deref()
        .map(|u| format!("<p><a id=\"cancel\" href=\"{}\">Cancel</a></p>", escape(u)))
        .unwrap_or_default();
    let body = format!(
        "<h1 id=\"status\">Pay for credits</h1>{summary}{failure}\
         <form id=\"payment-form\"><div id=\"card-element\"></div>\
         <button type=\"submit\" id=\"pay\">Pay {price} {currency}</button>\
         <p id=\"error\" role=\"alert\"></p></form>{cancel}\
         <p class=\"note\">Card payments by Stripe. Expires {expires}</p>\
         <script type=\"application/json\" id=\"checkout\">{settings}</script>\
         <script>{PAGE_SCRIPT}</script>",
        summary = crate::checkout_summary(i),
        price = escape(&i.price.to_wire()),
        currency = escape(&i.price.currency().code().to_uppercase()),
        expires = escape(&i.session.expires_at.to_rfc3339()),
    );
    let head = format!("<script src=\"{}\"></script>", escape(js_url));
    let mut page = crate::checkout_page(StatusCode::OK, "Checkout", &head, &body);
    let redirects: Vec<&str> = [i.success_url.as_deref(), i.cancel_url.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    page.set_header("content-security-policy", &page_csp(js_url, &redirects));
    page
}

/// The hosted payment page of a Stripe payment session (HTML).
///
/// No API key; the session id is the page's secret. Served only while the provider is Stripe.
#[utoipa::path(get, path = "/pay/{sessionId}", operation_id = "stripePaymentPage", tag = "payments",
    security(()),
    params(crate::sandbox::SessionPath),
    responses(
        (status = 200, description = "The payment page.", body = String, content_type = "text/html"),
        (status = 404, description = "No such session.", body = String, content_type = "text/html"),
        (status = 503, response = Busy),
    ))]
pub async fn payment_page<S: Store>(app: &App<S>, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    if !app.payments.offers(STRIPE_PROVIDER) {
        return Ok(not_found_page());
    }
    let Ok(id) = SessionId::parse(req.param("sessionId")) else {
        return Ok(not_found_page());
    };
    match purchases::invoice_for_session(app.store.as_ref(), &id).await {
        Ok(invoice) => Ok(render(&invoice, app.clock.now(), &app.stripe_js_url)),
        Err(InvoiceLookupError::NotFound) => Ok(not_found_page()),
        Err(InvoiceLookupError::Store(e)) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------------------------------
// The webhook route

/// What the route answers for a verified event.
#[derive(Serialize, ToSchema)]
pub struct StripeReceived {
    #[schema(schema_with = true_constant)]
    pub received: bool,
    /// The Stripe event's id.
    pub id: String,
    /// Why the event changes nothing here (absent when it was queued for fulfilment).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored: Option<String>,
}

fn true_constant() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    crate::wire::constant(serde_json::Value::Bool(true))
}

/// A Stripe event, as much of it as is read (Stripe's `Event` object).
#[derive(Deserialize, ToSchema)]
pub struct StripeEvent {
    /// `evt_...`.
    pub id: String,
    /// e.g. `payment_intent.succeeded`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Unix seconds.
    pub created: i64,
    pub data: StripeEventData,
}

#[derive(Deserialize, ToSchema)]
pub struct StripeEventData {
    /// The PaymentIntent or Charge the event is about.
    #[schema(value_type = Object)]
    pub object: Value,
}

/// What a verified event means here.
enum Meaning {
    Event(PaymentEvent),
    /// A refund of the charge of this session's PaymentIntent: its invoice is looked up by the
    /// session, and only a purchase of this tenant's is read further ([`refund_event`]).
    Refund(SessionId),
    Ignored(String),
}

/// A positive whole amount in minor units at `field` of a Stripe object.
fn positive_minor(object: &Value, field: &'static str) -> Result<i64, EventError> {
    object
        .get(field)
        .and_then(Value::as_i64)
        .filter(|a| *a > 0)
        .ok_or_else(|| EventError::new(field, "must be a positive integer in minor units"))
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(*k))?.as_str()
}

/// Maps a verified Stripe event of `tenant`'s endpoint onto a payment event (see the module's table).
fn meaning(event: &StripeEvent, tenant: &TenantId) -> Result<Meaning, EventError> {
    let object = &event.data.object;
    let occurred_at = Timestamp::from_unix_seconds(event.created)
        .ok_or_else(|| EventError::new("created", "is not a time in range"))?;
    let currency = || {
        str_at(object, &["currency"])
            .and_then(|c| Currency::parse(c).ok())
            .ok_or_else(|| EventError::new("data.object.currency", "is not a supported currency"))
    };
    let minor = |field: &'static str| positive_minor(object, field);
    let kind = match event.kind.as_str() {
        "payment_intent.succeeded" => PaymentEventKind::Paid,
        "payment_intent.payment_failed" => PaymentEventKind::Failed,
        "payment_intent.canceled" => PaymentEventKind::Expired,
        "charge.refunded" => {
            let Some(session) = str_at(object, &["payment_intent"]).and_then(session_of_payment_intent) else {
                return Ok(Meaning::Ignored(
                    "a refund of a charge without a PaymentIntent".to_owned(),
                ));
            };
            return Ok(Meaning::Refund(session));
        }
        other => {
            return Ok(Meaning::Ignored(format!(
                "{other} is not an event this service acts on"
            )))
        }
    };
    if str_at(object, &["metadata", METADATA_TENANT]) != Some(tenant.as_str()) {
        return Ok(Meaning::Ignored(
            "the PaymentIntent is not a purchase of this tenant".to_owned(),
        ));
    }
    let invoice_id = str_at(object, &["metadata", METADATA_INVOICE])
        .and_then(|i| InvoiceId::parse(i).ok())
        .ok_or_else(|| EventError::new("data.object.metadata.grants_invoice_id", "is not an invoice id"))?;
    let session_id = str_at(object, &["id"])
        .and_then(session_of_payment_intent)
        .ok_or_else(|| EventError::new("data.object.id", "is not a PaymentIntent id"))?;
    let amount_minor = match kind {
        // What was actually received; the PaymentIntent's amount where Stripe's object lacks it.
        PaymentEventKind::Paid if object.get("amount_received").is_some() => minor("amount_received")?,
        _ => minor("amount")?,
    };
    let failure = (kind == PaymentEventKind::Failed).then(|| {
        str_at(object, &["last_payment_error", "decline_code"])
            .or_else(|| str_at(object, &["last_payment_error", "code"]))
            .unwrap_or("payment_failed")
            .chars()
            .take(64)
            .collect()
    });
    Ok(Meaning::Event(PaymentEvent {
        id: event.id.clone(),
        kind,
        tenant: tenant.clone(),
        invoice_id,
        session_id,
        amount_minor,
        currency: currency()?,
        occurred_at,
        failure,
    }))
}

/// The `payment.refunded` event of a `charge.refunded` whose session is this tenant's purchase:
/// `amount` is the charge's running `amount_refunded`.
fn refund_event(
    event: &StripeEvent,
    tenant: &TenantId,
    invoice_id: InvoiceId,
    session_id: SessionId,
) -> Result<PaymentEvent, EventError> {
    let object = &event.data.object;
    Ok(PaymentEvent {
        id: event.id.clone(),
        kind: PaymentEventKind::Refunded,
        tenant: tenant.clone(),
        invoice_id,
        session_id,
        amount_minor: positive_minor(object, "amount_refunded")?,
        currency: str_at(object, &["currency"])
            .and_then(|c| Currency::parse(c).ok())
            .ok_or_else(|| EventError::new("data.object.currency", "is not a supported currency"))?,
        occurred_at: Timestamp::from_unix_seconds(event.created)
            .ok_or_else(|| EventError::new("created", "is not a time in range"))?,
        failure: None,
    })
}

fn signature_error(e: SignatureError) -> ApiError {
    crate::webhooks::signature_error_of("Stripe-Signature", e)
}

/// A tenant's Stripe events in (the endpoint URL given to Stripe).
///
/// Verified with the tenant's Stripe webhook signing secret (header `Stripe-Signature`, 5 minutes'
/// tolerance), then queued for fulfilment: `payment_intent.succeeded`, `.payment_failed`,
/// `.canceled` and `charge.refunded`. Other events, and PaymentIntents this service did not open
/// for the tenant, are answered 200 and ignored. No API key.
#[utoipa::path(post, path = "/v1/webhooks/stripe/{tenantId}", operation_id = "stripeWebhook", tag = "payments",
    security(()),
    params(
        ("tenantId" = String, Path, description = "The tenant whose Stripe account sends the event."),
        ("Stripe-Signature" = String, Header),
    ),
    request_body = StripeEvent,
    responses(
        (status = 200, description = "Verified: queued, or ignored (see `ignored`).", body = StripeReceived),
        (status = 400, response = BadRequest),
        (status = 413, response = TooLarge), (status = 415, response = Unsupported),
        (status = 503, response = Busy),
    ))]
pub async fn stripe_webhook<S: Store>(app: &App<S>, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::field("body", "required", "must be a Stripe event"));
    }
    let now = app.clock.now();
    let signature = SignatureHeader::parse(req.header(STRIPE_SIGNATURE_HEADER), now).map_err(signature_error)?;
    // The tenant only chooses which secrets to check with; an unknown one fails as a bad signature.
    let Ok(tenant) = TenantId::parse(req.param("tenantId")) else {
        return Err(signature_error(SignatureError::Mismatch));
    };
    let secrets = match app.secrets.stripe_webhook(&tenant).await {
        Ok(Some(secrets)) => secrets.active(now),
        Ok(None) => return Err(signature_error(SignatureError::Mismatch)),
        Err(e) => {
            tracing::error!(error = %e, "Stripe keys unavailable");
            return Err(ApiError::unavailable());
        }
    };
    signature.verify(&secrets, &req.body).map_err(signature_error)?;
    let event: StripeEvent = serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::field("body", "invalid", format!("is not a Stripe event ({e})")))?;
    let received = |ignored: Option<String>| {
        Ok(ApiResponse::json(
            StatusCode::OK,
            &StripeReceived {
                received: true,
                id: event.id.clone(),
                ignored,
            },
        ))
    };
    let invalid = |e: EventError| ApiError::field(e.field, "invalid", e.message);
    let payment_event = match meaning(&event, &tenant).map_err(invalid)? {
        Meaning::Event(e) => e,
        Meaning::Ignored(why) => {
            tracing::info!(event = %event.id, kind = %event.kind, reason = %why, "Stripe event ignored");
            return received(Some(why));
        }
        // Anything of a charge that is not this tenant's purchase is ignored before it is read:
        // a 400 would have Stripe retry it for days, then disable the tenant's endpoint.
        Meaning::Refund(session) => match app.store.find_session(&session).await? {
            Some((owner, invoice_id)) if owner == tenant => {
                refund_event(&event, &tenant, invoice_id, session).map_err(invalid)?
            }
            _ => return received(Some("the refunded charge is not a purchase of this tenant".to_owned())),
        },
    };
    app.payment_events
        .send(crate::payment_events::encode(&payment_event))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "could not enqueue a payment event");
            ApiError::unavailable()
        })?;
    tracing::info!(event = %event.id, kind = payment_event.kind.as_str(), invoice = %payment_event.invoice_id, "Stripe event enqueued");
    received(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet_and_padding() {
        assert_eq!(base64_standard(b""), "");
        assert_eq!(base64_standard(b"f"), "Zg==");
        assert_eq!(base64_standard(b"fo"), "Zm8=");
        assert_eq!(base64_standard(b"foo"), "Zm9v");
        assert_eq!(base64_standard(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn sessions_and_payment_intents_map_both_ways() {
        let s = session_of_payment_intent("pi_3MtwBwLkdIwHu7ix28a3tqPa").unwrap();
        assert_eq!(s.as_str(), "ps_pi_3MtwBwLkdIwHu7ix28a3tqPa");
        assert_eq!(payment_intent_of_session(&s), Some("pi_3MtwBwLkdIwHu7ix28a3tqPa"));
        assert_eq!(session_of_payment_intent("ch_1"), None);
        assert_eq!(payment_intent_of_session(&SessionId::parse("ps_01ABC").unwrap()), None);
    }

    fn event(kind: &str, object: Value) -> StripeEvent {
        StripeEvent {
            id: "evt_1".to_owned(),
            kind: kind.to_owned(),
            created: 1_773_484_200,
            data: StripeEventData { object },
        }
    }

    #[test]
    fn payment_intent_events_map_to_payment_events() {
        let t = TenantId::parse("acme").unwrap();
        let pi = serde_json::json!({
            "id": "pi_1", "amount": 500, "amount_received": 500, "currency": "usd",
            "metadata": {"grants_tenant": "acme", "grants_invoice_id": "inv_01ABC"},
            "last_payment_error": {"code": "card_declined", "decline_code": "insufficient_funds"},
        });
        let Meaning::Event(paid) = meaning(&event("payment_intent.succeeded", pi.clone()), &t).unwrap() else {
            panic!("not an event")
        };
        assert_eq!(paid.kind, PaymentEventKind::Paid);
        assert_eq!(paid.session_id.as_str(), "ps_pi_1");
        assert_eq!(paid.amount_minor, 500);
        let Meaning::Event(failed) = meaning(&event("payment_intent.payment_failed", pi.clone()), &t).unwrap() else {
            panic!("not an event")
        };
        assert_eq!(failed.failure.as_deref(), Some("insufficient_funds"));
        let other = TenantId::parse("other").unwrap();
        assert!(matches!(
            meaning(&event("payment_intent.succeeded", pi.clone()), &other).unwrap(),
            Meaning::Ignored(_)
        ));
        assert!(matches!(
            meaning(&event("customer.created", pi), &t).unwrap(),
            Meaning::Ignored(_)
        ));
    }

    #[test]
    fn the_page_policy_allows_only_its_own_script_and_stripe() {
        let csp = page_csp(DEFAULT_STRIPE_JS_URL, &["https://shop.example.com/done"]);
        assert!(csp.contains(&format!(
            "script-src 'sha256-{}' https://js.stripe.com",
            sha256_base64(PAGE_SCRIPT)
        )));
        assert!(csp.contains("connect-src https://api.stripe.com"));
        assert!(csp.contains("form-action 'self' https://shop.example.com"));
        let local = page_csp("http://127.0.0.1:8420/js.stripe.com/v3/", &[]);
        assert!(local.contains("connect-src http://127.0.0.1:8420"));
    }
}
