//! The payment providers this service ships (adapters of the domain's
//! [`PaymentProvider`](grants_domain::payments::PaymentProvider) port): the sandbox, whose checkout
//! page this service serves, and none.
use async_trait::async_trait;
use grants_domain::payments::{
    PaymentEvent, PaymentProvider, PaymentSession, ProviderError, SessionRequest, SignatureHeader, WebhookError,
    SANDBOX_PROVIDER,
};
use grants_domain::{EventId, SessionId};

/// The sandbox provider: sessions are pages of this service (`/sandbox/pay/<session>`), events are
/// signed with the tenant's webhook secret.
#[derive(Debug, Default, Clone, Copy)]
pub struct SandboxProvider;

pub const SANDBOX_PAY_PATH: &str = "/sandbox/pay/";

#[async_trait]
impl PaymentProvider for SandboxProvider {
    fn name(&self) -> &'static str {
        SANDBOX_PROVIDER
    }
    fn is_sandbox(&self) -> bool {
        true
    }

    async fn open_session(&self, request: &SessionRequest<'_>) -> Result<PaymentSession, ProviderError> {
        let base = request.base_url.ok_or_else(|| {
            ProviderError::Unavailable("PUBLIC_BASE_URL is not set, so no checkout URL can be made".to_owned())
        })?;
        let id = SessionId::generate();
        Ok(PaymentSession {
            url: format!("{}{SANDBOX_PAY_PATH}{id}", base.trim_end_matches('/')),
            id,
            expires_at: request.expires_at,
            amount_minor: request.amount_minor,
            checkout: None,
        })
    }

    fn verify_webhook(
        &self,
        secrets: &[String],
        signature: &SignatureHeader,
        body: &[u8],
    ) -> Result<PaymentEvent, WebhookError> {
        signature.verify(secrets, body)?;
        Ok(crate::payment_events::decode(body)?)
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
        Err(ProviderError::Unavailable(
            "no payment provider is configured".to_owned(),
        ))
    }
}

/// A new provider event id for the sandbox.
pub fn sandbox_event_id() -> String {
    EventId::generate().as_str().to_owned()
}
