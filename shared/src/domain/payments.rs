//! Payment providers behind one trait, the payment-event schema, and webhook signatures.
//!
//! A provider opens a payment session for an invoice and later reports what happened to it through
//! a signed webhook. The webhook endpoint verifies the signature and enqueues the event in the
//! schema below; the fulfilment function applies it. The default provider is [`SandboxProvider`]:
//! its session URL opens a checkout page served by this service, whose Pay and Cancel buttons emit
//! signed events exactly as a real provider's webhook would.
//!
//! Event schema (JSON, the webhook body and the SQS message body):
//! ```json
//! { "id": "evt_...", "type": "payment.paid" | "payment.expired" | "payment.failed",
//!   "account": "<tenant>", "invoiceId": "inv_...", "sessionId": "ps_...",
//!   "amount": 500, "currency": "usd", "occurredAt": "2026-03-14T10:30:00Z" }
//! ```
//! `amount` is in the currency's minor unit. Signature header:
//! `Grants-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`.
use super::money::Currency;
use super::{EventId, InvoiceId, SessionId, TenantId, Timestamp};
use async_trait::async_trait;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

pub const SIGNATURE_HEADER: &str = "grants-signature";
/// A signed event older (or further in the future) than this is refused.
pub const SIGNATURE_TOLERANCE_SECONDS: i64 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentEventKind {
    Paid,
    Expired,
    Failed,
}

impl PaymentEventKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            PaymentEventKind::Paid => "payment.paid",
            PaymentEventKind::Expired => "payment.expired",
            PaymentEventKind::Failed => "payment.failed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "payment.paid" => Some(Self::Paid),
            "payment.expired" => Some(Self::Expired),
            "payment.failed" => Some(Self::Failed),
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
}

/// The wire form of [`PaymentEvent`].
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WireEvent {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    account: String,
    invoice_id: String,
    session_id: String,
    amount: i64,
    currency: String,
    occurred_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {message}")]
pub struct EventError {
    pub field: &'static str,
    pub message: String,
}

fn invalid(field: &'static str, message: impl Into<String>) -> EventError {
    EventError {
        field,
        message: message.into(),
    }
}

impl PaymentEvent {
    pub fn to_json(&self) -> String {
        let wire = WireEvent {
            id: self.id.clone(),
            kind: self.kind.as_str().to_owned(),
            account: self.tenant.as_str().to_owned(),
            invoice_id: self.invoice_id.as_str().to_owned(),
            session_id: self.session_id.as_str().to_owned(),
            amount: self.amount_minor,
            currency: self.currency.code().to_owned(),
            occurred_at: self.occurred_at.to_rfc3339(),
        };
        serde_json::to_string(&wire).unwrap_or_default()
    }

    /// Parses and validates an event; the error names the offending field.
    pub fn from_json(bytes: &[u8]) -> Result<Self, EventError> {
        let wire: WireEvent = serde_json::from_slice(bytes)
            .map_err(|e| invalid("body", format!("is not a valid payment event ({e})")))?;
        if wire.id.is_empty() || wire.id.len() > 255 {
            return Err(invalid("id", "must be 1 to 255 characters"));
        }
        if wire.amount <= 0 {
            return Err(invalid("amount", "must be a positive integer in minor units"));
        }
        Ok(Self {
            kind: PaymentEventKind::parse(&wire.kind)
                .ok_or_else(|| invalid("type", "must be payment.paid, payment.expired or payment.failed"))?,
            tenant: TenantId::parse(&wire.account).map_err(|e| invalid("account", e.to_string()))?,
            invoice_id: InvoiceId::parse(&wire.invoice_id).map_err(|e| invalid("invoiceId", e.to_string()))?,
            session_id: SessionId::parse(&wire.session_id).map_err(|e| invalid("sessionId", e.to_string()))?,
            amount_minor: wire.amount,
            currency: Currency::parse(&wire.currency).map_err(|e| invalid("currency", e.to_string()))?,
            occurred_at: Timestamp::parse(&wire.occurred_at).map_err(|e| invalid("occurredAt", e.to_string()))?,
            id: wire.id,
        })
    }

    /// Only the tenant, read before the signature is checked (to choose the secret). Nothing else
    /// of an unverified body is trusted.
    pub fn claimed_account(bytes: &[u8]) -> Option<TenantId> {
        #[derive(Deserialize)]
        struct Account {
            account: String,
        }
        serde_json::from_slice::<Account>(bytes)
            .ok()
            .and_then(|a| TenantId::parse(&a.account).ok())
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
    /// with [`SIGNATURE_TOLERANCE_SECONDS`]. Any `i64` timestamp is handled without overflow.
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
#[cfg(test)]
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
}

/// An open payment session: where the customer pays, until when, and how much (minor units).
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentSession {
    pub id: SessionId,
    pub url: String,
    pub expires_at: Timestamp,
    pub amount_minor: i64,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("payment provider unavailable: {0}")]
pub struct ProviderError(pub String);

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
    /// Opens a session with the provider. Called before the invoice is written; a session whose
    /// invoice is never written simply expires unused.
    async fn open_session(&self, request: &SessionRequest<'_>) -> Result<PaymentSession, ProviderError>;
    /// Verifies a webhook delivery against the tenant's active secrets and reads the event from it.
    fn verify_webhook(
        &self,
        secrets: &[String],
        signature: &SignatureHeader,
        body: &[u8],
    ) -> Result<PaymentEvent, WebhookError>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error(transparent)]
    Event(#[from] EventError),
}

/// The sandbox provider: sessions are pages of this service (`/sandbox/pay/<session>`), events are
/// signed with the tenant's webhook secret.
#[derive(Debug, Default, Clone, Copy)]
pub struct SandboxProvider;

pub const SANDBOX_PAY_PATH: &str = "/sandbox/pay/";
/// The sandbox's [`PaymentProvider::name`], as stored on its invoices.
pub const SANDBOX_PROVIDER: &str = "sandbox";

#[async_trait]
impl PaymentProvider for SandboxProvider {
    fn name(&self) -> &'static str {
        SANDBOX_PROVIDER
    }
    fn is_sandbox(&self) -> bool {
        true
    }

    async fn open_session(&self, request: &SessionRequest<'_>) -> Result<PaymentSession, ProviderError> {
        let base = request
            .base_url
            .ok_or_else(|| ProviderError("PUBLIC_BASE_URL is not set, so no checkout URL can be made".to_owned()))?;
        let id = SessionId::generate();
        Ok(PaymentSession {
            url: format!("{}{SANDBOX_PAY_PATH}{id}", base.trim_end_matches('/')),
            id,
            expires_at: request.expires_at,
            amount_minor: request.amount_minor,
        })
    }

    fn verify_webhook(
        &self,
        secrets: &[String],
        signature: &SignatureHeader,
        body: &[u8],
    ) -> Result<PaymentEvent, WebhookError> {
        signature.verify(secrets, body)?;
        Ok(PaymentEvent::from_json(body)?)
    }
}

/// No payment provider: purchases are refused (503) and the sandbox pages are not served. What a
/// production stack runs until a real provider adapter exists (`PAYMENT_PROVIDER=none`).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProvider;

#[async_trait]
impl PaymentProvider for NoProvider {
    fn name(&self) -> &'static str {
        "none"
    }
    fn takes_payments(&self) -> bool {
        false
    }

    async fn open_session(&self, _request: &SessionRequest<'_>) -> Result<PaymentSession, ProviderError> {
        Err(ProviderError("no payment provider is configured".to_owned()))
    }

    fn verify_webhook(
        &self,
        _secrets: &[String],
        _signature: &SignatureHeader,
        _body: &[u8],
    ) -> Result<PaymentEvent, WebhookError> {
        Err(WebhookError::Signature(SignatureError::Mismatch))
    }
}

/// A new provider event id for the sandbox.
pub fn sandbox_event_id() -> String {
    EventId::generate().as_str().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> PaymentEvent {
        PaymentEvent {
            id: "evt_1".to_owned(),
            kind: PaymentEventKind::Paid,
            tenant: TenantId::parse("acme").unwrap(),
            invoice_id: InvoiceId::parse("inv_01ABC").unwrap(),
            session_id: SessionId::parse("ps_01ABC").unwrap(),
            amount_minor: 500,
            currency: Currency::USD,
            occurred_at: Timestamp::parse("2026-03-14T10:30:00Z").unwrap(),
        }
    }

    #[test]
    fn events_round_trip_and_signatures_verify() {
        let e = event();
        let body = e.to_json();
        assert_eq!(PaymentEvent::from_json(body.as_bytes()).unwrap(), e);
        let now = Timestamp::parse("2026-03-14T10:31:00Z").unwrap();
        let header = sign("whsec_x", now, body.as_bytes());
        assert_eq!(verify(&["whsec_x"], Some(&header), body.as_bytes(), now), Ok(()));
        assert_eq!(
            verify(&["whsec_y"], Some(&header), body.as_bytes(), now),
            Err(SignatureError::Mismatch)
        );
        // During a rotation's overlap either secret verifies.
        assert_eq!(
            verify(&["whsec_y", "whsec_x"], Some(&header), body.as_bytes(), now),
            Ok(())
        );
        let tampered = body.replace("500", "501");
        assert_eq!(
            verify(&["whsec_x"], Some(&header), tampered.as_bytes(), now),
            Err(SignatureError::Mismatch)
        );
        let later = now.plus_seconds(301).unwrap();
        assert_eq!(
            verify(&["whsec_x"], Some(&header), body.as_bytes(), later),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(&["whsec_x"], Some("v1=00"), body.as_bytes(), now),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(&["whsec_x"], None, body.as_bytes(), now),
            Err(SignatureError::Missing)
        );
    }

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

    #[test]
    fn bad_events_name_the_field() {
        let body = event().to_json().replace("payment.paid", "payment.refunded");
        assert_eq!(PaymentEvent::from_json(body.as_bytes()).unwrap_err().field, "type");
        let body = event().to_json().replace("\"amount\":500", "\"amount\":-1");
        assert_eq!(PaymentEvent::from_json(body.as_bytes()).unwrap_err().field, "amount");
        assert_eq!(PaymentEvent::from_json(b"{").unwrap_err().field, "body");
    }
}
