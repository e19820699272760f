//! POST /v1/webhooks/payments: a payment provider's signed event in, onto the payment-events queue.
//! No API key: the signature (HMAC-SHA256 with the tenant's webhook secret, 5 minute tolerance) is
//! the only authentication. Anything that fails verification is a 400 and nothing is enqueued.
use super::{ApiError, ApiRequest, ApiResponse, App};
use crate::domain::payments::{PaymentEvent, SignatureError, WebhookError, SIGNATURE_HEADER};
use crate::domain::tenants::{self, TenantError};
use http::StatusCode;
use serde_json::json;

fn signature_error(e: SignatureError) -> ApiError {
    let code = match e {
        SignatureError::Missing => "signature_missing",
        SignatureError::Malformed => "signature_malformed",
        SignatureError::Stale => "signature_stale",
        SignatureError::Mismatch => "signature_invalid",
    };
    ApiError::field(SIGNATURE_HEADER, code, e.to_string())
}

pub async fn payment_webhook(app: &App, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::field("body", "required", "must be a JSON payment event"));
    }
    if let Err(e) = serde_json::from_slice::<serde_json::Value>(&req.body) {
        return Err(ApiError::field("body", "invalid_json", format!("is not valid JSON ({e})")));
    }
    // The account only chooses which secret to check with; a forged one fails the signature.
    let tenant = PaymentEvent::claimed_account(&req.body)
        .ok_or_else(|| ApiError::field("account", "invalid", "must name the account the event belongs to"))?;
    let secret = match tenants::settings(app.store.as_ref(), &app.tenants, &tenant).await {
        Ok(settings) => settings.webhook_secret,
        // Unknown account: indistinguishable from a bad signature.
        Err(TenantError::NotConfigured) => return Err(signature_error(SignatureError::Mismatch)),
        Err(e) => return Err(e.into()),
    };
    let event = app
        .payments
        .verify_webhook(&secret, req.header(SIGNATURE_HEADER), &req.body, app.clock.now())
        .map_err(|e| match e {
            WebhookError::Signature(s) => signature_error(s),
            WebhookError::Event(ev) => ApiError::field(ev.field, "invalid", ev.message),
        })?;
    app.payment_events.send(event.to_json()).await.map_err(|e| {
        tracing::error!(error = %e, "could not enqueue a payment event");
        ApiError::unavailable()
    })?;
    tracing::info!(event = %event.id, kind = event.kind.as_str(), invoice = %event.invoice_id, "payment event enqueued");
    Ok(ApiResponse::json(StatusCode::OK, &json!({ "received": true, "id": event.id })))
}
