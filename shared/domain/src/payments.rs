//! Payment providers behind one trait, the payment-event schema, and webhook signatures.
//!
//! A provider opens a payment session for an invoice and later reports what happened to it through
//! a signed webhook. The webhook endpoint verifies the signature and enqueues the event in the
//! schema below; the fulfilment function applies it. The default provider is [`SandboxProvider`]:
//! its session URL opens a checkout page served by this service, whose Pay and Cancel buttons emit
//! signed events exactly as a real provider's webhook would.
//!
//! Event schema (JSON, the webhook body and the SQS message body; encoded by `grants_http::payment_events`):
//! ```json
//! { "id": "evt_...", "type": "payment.paid" | "payment.expired" | "payment.failed" | "payment.refunded",
//!   "account": "<tenant>", "invoiceId": "inv_...", "sessionId": "ps_...",
//!   "amount": 500, "currency": "usd", "occurredAt": "2026-03-14T10:30:00Z",
//!   "failure": "card_declined" }
//! ```
//! `amount` is in the currency's minor unit; for `payment.refunded` it is the total refunded so far
//! (Stripe's `charge.amount_refunded`), so that deliveries in any order settle on the largest.
//! `failure` (optional) is the provider's reason for a failed payment. Signature header:
//! `Grants-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`.
use crate::money::Currency;
use crate::{InvoiceId, SessionId, TenantId, Timestamp};
use async_trait::async_trait;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

pub const SIGNATURE_HEADER: &str = "grants-signature";
/// A signed event older (or further in the future) than this is refused.
const SIGNATURE_TOLERANCE_SECONDS: i64 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentEventKind {
    Paid,
    Expired,
    Failed,
    /// Money was given back (part or all); `amount` is the total refunded so far.
    Refunded,
}

impl PaymentEventKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            PaymentEventKind::Paid => "payment.paid",
            PaymentEventKind::Expired => "payment.expired",
            PaymentEventKind::Failed => "payment.failed",
            PaymentEventKind::Refunded => "payment.refunded",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "payment.paid" => Some(Self::Paid),
            "payment.expired" => Some(Self::Expired),
            "payment.failed" => Some(Self::Failed),
            "payment.refunded" => Some(Self::Refunded),
            _ => None,
        }
    }
}

/// What a provider reports about a payment session, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentEvent {
    /// The provider's event id (deliveries of one event share it).
    pub id: String,
    pub kind: PaymentEventKind,
    pub tenant: TenantId,
    pub invoice_id: InvoiceId,
    pub session_id: SessionId,
    /// In the currency's minor unit.
    pub amount_minor: i64,
    pub currency: Currency,
    pub occurred_at: Timestamp,
    /// Why a payment failed, as the provider says it (`payment.failed` only; e.g. `card_declined`).
    pub failure: Option<String>,
}

/// A payment event that is not valid: the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {message}")]
pub struct EventError {
    pub field: &'static str,
    pub message: String,
}

impl EventError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("signature header is missing")]
    Missing,
    #[error("signature header is malformed; expected t=<unix seconds>,v1=<hex>")]
    Malformed,
    #[error("signature timestamp is outside the 5 minute tolerance")]
    Stale,
    #[error("signature does not match")]
    Mismatch,
}

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The signature header value for `body` sent at `at`.
pub fn sign(secret: &str, at: Timestamp, body: &[u8]) -> String {
    let t = at.unix_seconds();
    format!("t={t},v1={}", hex::encode(mac(secret, t, body).finalize().into_bytes()))
}

/// A parsed signature header whose timestamp is within the tolerance of `now`: what can be checked
/// before knowing whose secret signed it, so that every account gets the same answer until the MAC
/// itself is compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    timestamp: i64,
    signatures: Vec<Vec<u8>>,
}

impl SignatureHeader {
    /// Parses `t=<unix seconds>,v1=<hex>[,v1=<hex>...]` and checks the timestamp against `now`
    /// with `SIGNATURE_TOLERANCE_SECONDS` (300 seconds). Any `i64` timestamp is handled without
    /// overflow.
    pub fn parse(header: Option<&str>, now: Timestamp) -> Result<Self, SignatureError> {
        let header = header.ok_or(SignatureError::Missing)?;
        let mut timestamp = None;
        let mut signatures = Vec::new();
        for part in header.split(',') {
            match part.trim().split_once('=') {
                Some(("t", v)) => timestamp = v.parse::<i64>().ok(),
                Some(("v1", v)) => signatures.push(hex::decode(v).map_err(|_| SignatureError::Malformed)?),
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
        if signatures.is_empty() || signatures.len() > 8 {
            return Err(SignatureError::Malformed);
        }
        // abs_diff cannot overflow, whatever the client sent (i64::MIN included).
        if now.unix_seconds().abs_diff(timestamp) > SIGNATURE_TOLERANCE_SECONDS.unsigned_abs() {
            return Err(SignatureError::Stale);
        }
        Ok(Self { timestamp, signatures })
    }

    /// Checks the MAC, in constant time, against each of `secrets` (several during a rotation's
    /// overlap window).
    pub fn verify<S: AsRef<str>>(&self, secrets: &[S], body: &[u8]) -> Result<(), SignatureError> {
        for secret in secrets {
            let expected = mac(secret.as_ref(), self.timestamp, body);
            if self.signatures.iter().any(|s| expected.clone().verify_slice(s).is_ok()) {
                return Ok(());
            }
        }
        Err(SignatureError::Mismatch)
    }
}

/// Checks a signature header against the body, in constant time, and its timestamp against `now`.
pub fn verify<S: AsRef<str>>(
    secrets: &[S],
    header: Option<&str>,
    body: &[u8],
    now: Timestamp,
) -> Result<(), SignatureError> {
    SignatureHeader::parse(header, now)?.verify(secrets, body)
}

/// What a provider needs to open a payment session for an invoice.
#[derive(Debug, Clone)]
pub struct SessionRequest<'a> {
    pub tenant: &'a TenantId,
    pub invoice_id: &'a InvoiceId,
    pub amount_minor: i64,
    pub currency: Currency,
    pub expires_at: Timestamp,
    pub success_url: Option<&'a str>,
    pub cancel_url: Option<&'a str>,
    /// Where this service is reachable (for pages it serves itself); never derived from a client
    /// header. None: not configured.
    pub base_url: Option<&'a str>,
    /// The same for every retry of one purchase and different for any other (64 hex characters):
    /// a provider that deduplicates requests (Stripe's `Idempotency-Key`) opens one payment for it.
    pub idempotency_key: &'a str,
}

/// An open payment session: where the customer pays, until when, and how much (minor units).
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentSession {
    pub id: SessionId,
    pub url: String,
    pub expires_at: Timestamp,
    pub amount_minor: i64,
    /// What the provider's script in the payment page needs (Stripe: the PaymentIntent's client
    /// secret and the tenant's publishable key). Never shown by the API, only by the page.
    pub checkout: Option<CheckoutKeys>,
}

/// The browser-side keys of a provider's payment page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutKeys {
    pub client_secret: String,
    pub publishable_key: String,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// The provider could not be reached or failed (a retry may succeed: 503).
    #[error("payment provider unavailable: {0}")]
    Unavailable(String),
    /// The provider refused this payment by its own rules (e.g. Stripe's minimum charge in a
    /// currency), or the tenant is not set up with it: the same request will not succeed (422).
    /// The text is safe to show the caller.
    #[error("payment provider refused: {0}")]
    Refused(String),
}

#[async_trait]
pub trait PaymentProvider: Send + Sync {
    /// Stored on invoices (`invoice.provider`).
    fn name(&self) -> &'static str;
    /// False for [`NoProvider`]: purchases are refused (503) before anything is checked or written.
    fn takes_payments(&self) -> bool {
        true
    }
    /// True for a provider under which no money moves ([`SandboxProvider`]): its checkout pages are
    /// served, its invoices are marked `sandbox`, and any https redirect is allowed when the tenant
    /// names no origins.
    fn is_sandbox(&self) -> bool {
        false
    }
    /// Whether the tenant's purchases go to the sandbox (the redirect rule's relaxation applies):
    /// [`Self::is_sandbox`], unless the provider chooses per tenant.
    async fn is_sandbox_for(&self, _tenant: &TenantId) -> Result<bool, ProviderError> {
        Ok(self.is_sandbox())
    }
    /// True when this provider's sessions named `name` are its own (a provider that chooses
    /// between two per tenant offers both).
    fn offers(&self, name: &str) -> bool {
        self.name() == name
    }
    /// The name stored on the invoice of `session` (the provider that opened it).
    fn name_of(&self, _session: &PaymentSession) -> &'static str {
        self.name()
    }
    /// Opens a session with the provider. Called before the invoice is written; a session whose
    /// invoice is never written simply expires unused.
    async fn open_session(&self, request: &SessionRequest<'_>) -> Result<PaymentSession, ProviderError>;
    /// Closes an unpaid session so that it can no longer be paid (its invoice is about to be
    /// canceled as expired). `Ok(false)`: the provider says the payment already went through or
    /// is being processed, so the invoice must stay open for the paid event.
    async fn cancel_session(&self, _tenant: &TenantId, _session: &PaymentSession) -> Result<bool, ProviderError> {
        Ok(true)
    }
    /// Verifies a delivery to the service's own payment webhook (`/v1/webhooks/payments`) against
    /// the tenant's active secrets and reads the event from it. By default nothing verifies: only
    /// the sandbox speaks there (Stripe has its own route).
    fn verify_webhook(
        &self,
        _secrets: &[String],
        _signature: &SignatureHeader,
        _body: &[u8],
    ) -> Result<PaymentEvent, WebhookError> {
        Err(WebhookError::Signature(SignatureError::Mismatch))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error(transparent)]
    Event(#[from] EventError),
}

/// The sandbox provider's [`PaymentProvider::name`], as stored on its invoices.
pub const SANDBOX_PROVIDER: &str = "sandbox";

#[cfg(test)]
mod tests {
    use super::*;

    /// Security review finding 6: a timestamp at the edge of the integer range overflowed a
    /// subtraction (a panic in debug builds). Every i64 is now just stale.
    #[test]
    fn extreme_timestamps_are_stale_not_a_panic() {
        let now = Timestamp::parse("2026-03-14T10:31:00Z").unwrap();
        for t in [i64::MIN, i64::MIN + 1, -1, 0, i64::MAX - 1, i64::MAX] {
            let header = format!("t={t},v1=00");
            assert_eq!(
                SignatureHeader::parse(Some(&header), now),
                Err(SignatureError::Stale),
                "{t}"
            );
        }
    }
}
