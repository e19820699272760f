//! POST /v1/webhooks/payments: a payment provider's signed event in, onto the payment-events queue.
//! No API key: the signature (HMAC-SHA256 with the tenant's webhook secret, or during a rotation
//! either of its two, 5 minute tolerance) is the only authentication. Anything that fails
//! verification is a 400 and nothing is enqueued. The header's presence, form and timestamp are
//! checked before the claimed account is looked at, and an unknown account fails exactly as a
//! wrong signature does, so the answers do not tell accounts apart.
use crate::openapi::{BadRequest, Busy, TooLarge, Unauthorized, Unsupported};
use crate::{ApiError, ApiRequest, ApiResponse, App, Store};
use grants_domain::payments::{SignatureError, SignatureHeader, WebhookError, SIGNATURE_HEADER};
use http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

/// What the webhook answers once an event is queued.
#[derive(Serialize, ToSchema)]
pub struct Received {
    #[schema(schema_with = true_constant)]
    pub received: bool,
    /// The event's id.
    pub id: String,
}

fn true_constant() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    crate::wire::constant(serde_json::Value::Bool(true))
}

fn signature_error(e: SignatureError) -> ApiError {
    signature_error_of(SIGNATURE_HEADER, e)
}

/// A signature header's problem as a 400 naming `header` (the sandbox's and Stripe's routes).
pub(crate) fn signature_error_of(header: &'static str, e: SignatureError) -> ApiError {
    let code = match e {
        SignatureError::Missing => "signature_missing",
        SignatureError::Malformed => "signature_malformed",
        SignatureError::Stale => "signature_stale",
        SignatureError::Mismatch => "signature_invalid",
    };
    ApiError::field(header, code, e.to_string())
}

/// Signed payment events in; verified ones to the payment-events queue.
///
/// The payment provider's signed events (header `grants-signature`: an HMAC-SHA256 over the
/// timestamp and the body with the tenant's webhook secret, 5 minutes' tolerance). Verified, then
/// queued for fulfilment. No API key.
#[utoipa::path(post, path = "/v1/webhooks/payments", operation_id = "paymentWebhook", tag = "payments",
    security(()),
    params(("grants-signature" = String, Header)),
    request_body = crate::payment_events::WireEvent,
    responses(
        (status = 200, description = "Accepted (queued).", body = Received),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 413, response = TooLarge), (status = 415, response = Unsupported),
        (status = 503, response = Busy),
    ))]
pub async fn payment_webhook<S: Store>(app: &App<S>, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::field("body", "required", "must be a JSON payment event"));
    }
    if let Err(e) = serde_json::from_slice::<serde_json::Value>(&req.body) {
        return Err(ApiError::field(
            "body",
            "invalid_json",
            format!("is not valid JSON ({e})"),
        ));
    }
    let now = app.clock.now();
    let signature = SignatureHeader::parse(req.header(SIGNATURE_HEADER), now).map_err(signature_error)?;
    // The account only chooses which secrets to check with; a forged one fails the signature.
    let Some(tenant) = crate::payment_events::claimed_account(&req.body) else {
        return Err(signature_error(SignatureError::Mismatch));
    };
    let secrets = match app.secrets.webhook(&tenant).await {
        Ok(Some(secrets)) => secrets.active(now),
        // Unknown account: indistinguishable from a bad signature.
        Ok(None) => return Err(signature_error(SignatureError::Mismatch)),
        Err(e) => {
            tracing::error!(error = %e, "webhook secrets unavailable");
            return Err(ApiError::unavailable());
        }
    };
    let event = app
        .payments
        .verify_webhook(&secrets, &signature, &req.body)
        .map_err(|e| match e {
            WebhookError::Signature(s) => signature_error(s),
            WebhookError::Event(ev) => ApiError::field(ev.field, "invalid", ev.message),
        })?;
    // A Stripe session's events come from Stripe's route only (under `stripe+sandbox` the
    // sandbox's secret must not speak for a Stripe payment).
    if crate::stripe::payment_intent_of_session(&event.session_id).is_some() {
        return Err(ApiError::field(
            "sessionId",
            "invalid",
            "is a Stripe payment session: its events come from Stripe",
        ));
    }
    app.payment_events
        .send(crate::payment_events::encode(&event))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "could not enqueue a payment event");
            ApiError::unavailable()
        })?;
    tracing::info!(event = %event.id, kind = event.kind.as_str(), invoice = %event.invoice_id, "payment event enqueued");
    Ok(ApiResponse::json(
        StatusCode::OK,
        &Received {
            received: true,
            id: event.id,
        },
    ))
}
