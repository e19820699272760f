//! Stripe as the payment provider (`PAYMENT_PROVIDER=stripe`): PaymentIntents opened for
//! purchases and canceled when their session expires, over a thin typed client of Stripe's REST API
//! (form-encoded requests, JSON answers; only the fields read are typed).
//!
//! Why not the `async-stripe` crate: its 1.0.0-rc.10 (`async-stripe` with `rustls-ring`,
//! `async-stripe-core` with `payment_intent`) fails to deserialize the PaymentIntent that the
//! local Stripe server (localstripe 1.15.10) answers to `POST /v1/payment_intents`
//! (`Err(JSONDeserialize("error deserializing request data"))`, measured in this session): its
//! generated types require fields that localstripe leaves out, so nothing could be tested end to
//! end with it. Two calls with five fields each do not need a generated client of Stripe's whole
//! API; this one reads only `id`, `client_secret` and `status`.
//!
//! Settings: `STRIPE_API_BASE` (default `https://api.stripe.com`; locally the local Stripe
//! server), and each tenant's keys in Secrets Manager (`grants-admin set-stripe-keys`).
use bytes::Bytes;
use grants_domain::payments::{
    CheckoutKeys, PaymentEvent, PaymentProvider, PaymentSession, ProviderError, SessionRequest, SignatureHeader,
    WebhookError,
};
use grants_domain::secrets::StripeApiKeys;
use grants_domain::TenantId;
use grants_http::secrets::Secrets;
use grants_http::stripe::{
    payment_intent_of_session, session_of_payment_intent, METADATA_INVOICE, METADATA_TENANT, PAY_PATH, STRIPE_PROVIDER,
};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

pub const STRIPE_API_BASE: &str = "STRIPE_API_BASE";
pub const DEFAULT_STRIPE_API_BASE: &str = "https://api.stripe.com";
pub const STRIPE_JS_URL: &str = "STRIPE_JS_URL";
/// One Stripe call, connection included.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Answers longer than this are cut (a PaymentIntent is a few KB).
const MAX_ANSWER_BYTES: usize = 256 * 1024;

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// The Stripe provider: each call reads the tenant's keys (cached a minute per instance).
pub struct StripeProvider {
    api_base: String,
    secrets: Arc<Secrets>,
    /// Built on the first call (loading the platform's roots costs milliseconds at cold start).
    client: std::sync::OnceLock<Client<Connector, Full<Bytes>>>,
}

/// The fields of a PaymentIntent this service reads.
#[derive(Debug, Deserialize)]
struct PaymentIntent {
    id: String,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

/// Stripe's error body: `{"error": {"type", "code", "message"}}`.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: StripeError,
}

#[derive(Debug, Deserialize)]
struct StripeError {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

enum Answer {
    Ok(PaymentIntent),
    /// Stripe refused (4xx): its code and message, never the request.
    Refused(u16, String),
}

impl StripeProvider {
    pub fn new(api_base: String, secrets: Arc<Secrets>) -> Self {
        Self {
            api_base: api_base.trim_end_matches('/').to_owned(),
            secrets,
            client: std::sync::OnceLock::new(),
        }
    }

    fn client(&self) -> &Client<Connector, Full<Bytes>> {
        self.client
            .get_or_init(|| crate::webhooks::https_client(HttpConnector::new(), Duration::from_secs(5)))
    }

    /// The tenant's Stripe API keys (None: it has none).
    pub async fn api_keys(&self, tenant: &TenantId) -> Result<Option<StripeApiKeys>, ProviderError> {
        self.secrets
            .stripe_api(tenant)
            .await
            .map_err(|e| ProviderError::Unavailable(e.to_string()))
    }

    async fn secret_key(&self, tenant: &TenantId) -> Result<(String, String), ProviderError> {
        match self.api_keys(tenant).await? {
            Some(keys) => Ok((keys.secret_key, keys.publishable_key)),
            None => Err(ProviderError::Refused(
                "this tenant is not set up with Stripe yet (its operator sets its keys)".to_owned(),
            )),
        }
    }

    /// One call: `method path` with a form body, answered with a PaymentIntent or Stripe's refusal.
    async fn call(
        &self,
        method: http::Method,
        path: &str,
        secret_key: &str,
        idempotency_key: Option<&str>,
        form: &[(&str, &str)],
    ) -> Result<Answer, ProviderError> {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.api_base))
            .header("authorization", format!("Bearer {secret_key}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("user-agent", "grants-service/1");
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ProviderError::Unavailable(format!("Stripe request: {e}")))?;
        let response = tokio::time::timeout(CALL_TIMEOUT, self.client().request(request))
            .await
            .map_err(|_| ProviderError::Unavailable("Stripe did not answer in time".to_owned()))?
            .map_err(|e| ProviderError::Unavailable(format!("Stripe unreachable: {e}")))?;
        let status = response.status();
        let bytes = http_body_util::Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| ProviderError::Unavailable(format!("Stripe's answer: {e}")))?
            .to_bytes();
        if status.is_success() {
            return serde_json::from_slice::<PaymentIntent>(&bytes)
                .map(Answer::Ok)
                .map_err(|e| ProviderError::Unavailable(format!("Stripe's answer is not a PaymentIntent: {e}")));
        }
        let refusal = serde_json::from_slice::<ErrorBody>(&bytes)
            .map(|b| {
                format!(
                    "{}: {}",
                    b.error.code.unwrap_or_else(|| "error".to_owned()),
                    b.error.message.unwrap_or_default()
                )
            })
            .unwrap_or_else(|_| format!("HTTP {status}"));
        if status.is_client_error() {
            Ok(Answer::Refused(status.as_u16(), refusal))
        } else {
            Err(ProviderError::Unavailable(format!(
                "Stripe answered {status}: {refusal}"
            )))
        }
    }
}

#[async_trait::async_trait]
impl PaymentProvider for StripeProvider {
    fn name(&self) -> &'static str {
        STRIPE_PROVIDER
    }

    /// `POST /v1/payment_intents` (amount in minor units, the invoice's currency, card payments,
    /// metadata `grants_tenant` and `grants_invoice_id`) with `Idempotency-Key:
    /// grants-purchase-<the purchase's key>`: a retried purchase gets the same PaymentIntent.
    async fn open_session(&self, request: &SessionRequest<'_>) -> Result<PaymentSession, ProviderError> {
        let base = request.base_url.ok_or_else(|| {
            ProviderError::Unavailable("PUBLIC_BASE_URL is not set, so no payment page URL can be made".to_owned())
        })?;
        let (secret_key, publishable_key) = self.secret_key(request.tenant).await?;
        let amount = request.amount_minor.to_string();
        let form = [
            ("amount", amount.as_str()),
            ("currency", request.currency.code()),
            ("payment_method_types[0]", "card"),
            ("metadata[grants_tenant]", request.tenant.as_str()),
            ("metadata[grants_invoice_id]", request.invoice_id.as_str()),
        ];
        debug_assert!(form[3].0.contains(METADATA_TENANT) && form[4].0.contains(METADATA_INVOICE));
        let key = format!("grants-purchase-{}", request.idempotency_key);
        let intent = match self
            .call(
                http::Method::POST,
                "/v1/payment_intents",
                &secret_key,
                Some(&key),
                &form,
            )
            .await?
        {
            Answer::Ok(pi) => pi,
            // The tenant's keys are wrong or revoked: its operator must act (no retry helps), and
            // Stripe's words about keys are not the caller's business.
            Answer::Refused(401 | 403, why) => {
                tracing::error!(tenant = %request.tenant, reason = %why, "Stripe refused the tenant's keys");
                return Err(ProviderError::Refused(
                    "the payment provider refused this tenant's credentials".to_owned(),
                ));
            }
            // 409: the same purchase is being opened by a concurrent request; 429: rate limited.
            Answer::Refused(409 | 429, why) => return Err(ProviderError::Unavailable(format!("Stripe: {why}"))),
            Answer::Refused(_, why) => return Err(ProviderError::Refused(format!("Stripe: {why}"))),
        };
        let id = session_of_payment_intent(&intent.id).ok_or_else(|| {
            ProviderError::Unavailable(format!("Stripe answered an odd PaymentIntent id {:?}", intent.id))
        })?;
        let client_secret = intent
            .client_secret
            .ok_or_else(|| ProviderError::Unavailable("Stripe's PaymentIntent has no client_secret".to_owned()))?;
        Ok(PaymentSession {
            url: format!("{}{PAY_PATH}{id}", base.trim_end_matches('/')),
            id,
            expires_at: request.expires_at,
            amount_minor: request.amount_minor,
            checkout: Some(CheckoutKeys {
                client_secret,
                publishable_key,
            }),
        })
    }

    /// `POST /v1/payment_intents/<id>/cancel`. When Stripe refuses, the PaymentIntent's status
    /// decides: already `canceled` is done; `succeeded`, `processing` or `requires_capture` means
    /// the payment went through (`Ok(false)`).
    async fn cancel_session(&self, tenant: &TenantId, session: &PaymentSession) -> Result<bool, ProviderError> {
        let Some(pi) = payment_intent_of_session(&session.id) else {
            return Ok(true);
        };
        let (secret_key, _) = self.secret_key(tenant).await?;
        let path = format!("/v1/payment_intents/{pi}");
        match self
            .call(http::Method::POST, &format!("{path}/cancel"), &secret_key, None, &[])
            .await?
        {
            Answer::Ok(_) => Ok(true),
            Answer::Refused(401 | 403, why) => Err(ProviderError::Refused(format!(
                "Stripe refused the tenant's credentials: {why}"
            ))),
            Answer::Refused(..) => match self.call(http::Method::GET, &path, &secret_key, None, &[]).await? {
                Answer::Ok(current) => match current.status.as_deref() {
                    Some("canceled") => Ok(true),
                    Some("succeeded" | "processing" | "requires_capture") => Ok(false),
                    other => Err(ProviderError::Unavailable(format!(
                        "PaymentIntent {pi} could not be canceled ({other:?})"
                    ))),
                },
                Answer::Refused(status, why) => Err(ProviderError::Unavailable(format!(
                    "PaymentIntent {pi}: {status} {why}"
                ))),
            },
        }
    }
}

/// What a function without the Stripe client has as its provider when `PAYMENT_PROVIDER=stripe`:
/// it is named `stripe` (the payment page and the webhook route serve), and opens nothing.
pub struct StripeUnwired;

#[async_trait::async_trait]
impl PaymentProvider for StripeUnwired {
    fn name(&self) -> &'static str {
        STRIPE_PROVIDER
    }
    async fn open_session(&self, _request: &SessionRequest<'_>) -> Result<PaymentSession, ProviderError> {
        Err(ProviderError::Unavailable(
            "this function is not wired with the Stripe client".to_owned(),
        ))
    }
    async fn cancel_session(&self, _tenant: &TenantId, _session: &PaymentSession) -> Result<bool, ProviderError> {
        Err(ProviderError::Unavailable(
            "this function is not wired with the Stripe client".to_owned(),
        ))
    }
}

/// `PAYMENT_PROVIDER=stripe+sandbox`, for staging and the local stack: tenants with Stripe keys
/// sell through Stripe, the others through the sandbox (whose pages say no money moves). Each
/// invoice records which one opened its session.
pub struct StripeOrSandbox {
    /// None in a function not wired with the Stripe client.
    pub stripe: Option<StripeProvider>,
}

pub const STRIPE_OR_SANDBOX: &str = "stripe+sandbox";

#[async_trait::async_trait]
impl PaymentProvider for StripeOrSandbox {
    fn name(&self) -> &'static str {
        STRIPE_OR_SANDBOX
    }
    /// Per tenant: see [`Self::is_sandbox_for`].
    fn is_sandbox(&self) -> bool {
        false
    }
    /// The sandbox for a tenant without Stripe keys (unknown in a function without the Stripe
    /// client: not the sandbox).
    async fn is_sandbox_for(&self, tenant: &TenantId) -> Result<bool, ProviderError> {
        match &self.stripe {
            Some(stripe) => Ok(stripe.api_keys(tenant).await?.is_none()),
            None => Ok(false),
        }
    }
    fn offers(&self, name: &str) -> bool {
        name == STRIPE_PROVIDER || name == grants_domain::payments::SANDBOX_PROVIDER
    }
    fn name_of(&self, session: &PaymentSession) -> &'static str {
        if payment_intent_of_session(&session.id).is_some() {
            STRIPE_PROVIDER
        } else {
            grants_domain::payments::SANDBOX_PROVIDER
        }
    }
    async fn open_session(&self, request: &SessionRequest<'_>) -> Result<PaymentSession, ProviderError> {
        if let Some(stripe) = &self.stripe {
            if stripe.api_keys(request.tenant).await?.is_some() {
                return stripe.open_session(request).await;
            }
        }
        grants_http::providers::SandboxProvider.open_session(request).await
    }
    async fn cancel_session(&self, tenant: &TenantId, session: &PaymentSession) -> Result<bool, ProviderError> {
        match (&self.stripe, payment_intent_of_session(&session.id)) {
            (_, None) => Ok(true),
            (Some(stripe), Some(_)) => stripe.cancel_session(tenant, session).await,
            (None, Some(_)) => Err(ProviderError::Unavailable(
                "this function is not wired with the Stripe client".to_owned(),
            )),
        }
    }
    fn verify_webhook(
        &self,
        secrets: &[String],
        signature: &SignatureHeader,
        body: &[u8],
    ) -> Result<PaymentEvent, WebhookError> {
        grants_http::providers::SandboxProvider.verify_webhook(secrets, signature, body)
    }
}
