//! A purchase: the checks, then an open invoice with its payment session, created idempotently.
use super::{
    Invoice, InvoiceStatus, PurchaseStore, RedirectUrl, DEFAULT_PAYMENT_WINDOW_SECONDS, MAX_PAYMENT_WINDOW_SECONDS,
    PURCHASE_SCOPE,
};
use crate::auth::Principal;
use crate::entitlement_store::EntitlementStore;
use crate::kernel::{claimed_id, insert_claimed, Claim, Created, IdempotencyKey, StoreError};
use crate::model::{check_rollover_bounds, RolloverBoundsError};
use crate::money::{Price, PriceError};
use crate::payments::{PaymentProvider, ProviderError, SessionRequest};
use crate::tenants::{self, origin_of, TenantCache, TenantError, TenantSettings, TenantStore};
use crate::{Clock, CreditAmount, EntitlementId, InvoiceId, NonNegative, TenantId, Timestamp};
use std::collections::BTreeMap;

/// A validated purchase request. `price` is checked against the tenant's currency in [`purchase`].
#[derive(Debug, Clone)]
pub struct NewPurchase {
    pub entitlement_id: EntitlementId,
    pub amount: CreditAmount,
    pub price: String,
    pub idempotency_key: IdempotencyKey,
    pub effective_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
    pub success_url: Option<RedirectUrl>,
    pub cancel_url: Option<RedirectUrl>,
    pub payment_expires_at: Option<Timestamp>,
    pub reset_max_rollover: Option<NonNegative>,
    pub reset_min_rollover: Option<NonNegative>,
}

impl NewPurchase {
    /// The request parameters as sent, for replay comparison.
    fn fingerprint(&self) -> BTreeMap<String, String> {
        let mut f = BTreeMap::new();
        f.insert("amount".to_owned(), self.amount.value().to_string());
        let price = crate::amount::parse_decimal(&self.price).map(|d| d.normalize().to_string());
        f.insert("price".to_owned(), price.unwrap_or_else(|_| self.price.clone()));
        let mut opt = |name: &str, v: Option<String>| {
            if let Some(v) = v {
                f.insert(name.to_owned(), v);
            }
        };
        opt("effectiveAt", self.effective_at.map(|t| t.to_storage()));
        opt("expiresAt", self.expires_at.map(|t| t.to_storage()));
        opt("successUrl", self.success_url.as_ref().map(|u| u.as_str().to_owned()));
        opt("cancelUrl", self.cancel_url.as_ref().map(|u| u.as_str().to_owned()));
        opt("paymentExpiresAt", self.payment_expires_at.map(|t| t.to_storage()));
        opt(
            "resetMaxRollover",
            self.reset_max_rollover.map(|v| v.value().to_string()),
        );
        opt(
            "resetMinRollover",
            self.reset_min_rollover.map(|v| v.value().to_string()),
        );
        f
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PurchaseError {
    #[error(transparent)]
    Rollover(#[from] RolloverBoundsError),
    #[error("purchases need an admin key unless the tenant allows members")]
    MembersMayNotPurchase,
    #[error("price is below the tenant's minimum of {minimum} for this amount")]
    PriceBelowMinimum { minimum: String },
    #[error("{field} is not on an allowed origin")]
    RedirectNotAllowed { field: &'static str, allowed: Vec<String> },
    #[error("entitlement not found")]
    EntitlementNotFound,
    #[error("entitlement is {0}, not active")]
    EntitlementNotActive(&'static str),
    #[error("price {0}")]
    InvalidPrice(PriceError),
    #[error("expiresAt must be after effectiveAt")]
    ExpiresNotAfterEffective,
    #[error("paymentExpiresAt must be in the future and at most 30 days away")]
    PaymentWindow,
    #[error("idempotency key reused with different parameters: {}", .0.join(", "))]
    IdempotencyMismatch(Vec<String>),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Tenant(#[from] TenantError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a purchase needs: the storage it reads and writes, one port each, and its collaborators.
pub struct PurchaseContext<'a> {
    /// The tenant's settings (who may buy, the currency, the minimum price, redirect origins).
    pub tenant_store: &'a dyn TenantStore,
    /// The entitlement the credits are bought for (read, never written).
    pub entitlement_store: &'a dyn EntitlementStore,
    /// The invoice, its payment-session lookup and its idempotency claim.
    pub purchase_store: &'a dyn PurchaseStore,
    pub clock: &'a dyn Clock,
    pub provider: &'a dyn PaymentProvider,
    pub tenants: &'a TenantCache,
    /// Where this service is reachable, for the provider's session URL (None: not known).
    pub base_url: Option<&'a str>,
}

/// Where a checkout may send the customer back to: an origin the tenant allows; with none set,
/// any `https` URL, and only with the sandbox provider (security review finding 7).
fn check_redirect(
    settings: &TenantSettings,
    sandbox: bool,
    field: &'static str,
    url: Option<&RedirectUrl>,
) -> Result<(), PurchaseError> {
    let Some(url) = url else { return Ok(()) };
    let origin = origin_of(url.as_str());
    let allowed = if settings.allowed_redirect_origins.is_empty() {
        sandbox && url.as_str().starts_with("https://") && origin.is_some()
    } else {
        origin.is_some_and(|o| {
            settings
                .allowed_redirect_origins
                .iter()
                .any(|a| a.eq_ignore_ascii_case(&o))
        })
    };
    if allowed {
        Ok(())
    } else {
        Err(PurchaseError::RedirectNotAllowed {
            field,
            allowed: settings.allowed_redirect_origins.clone(),
        })
    }
}

/// Creates an open invoice and its payment session, idempotently. No grant exists until payment.
///
/// Who may: an admin key, or a member key when the tenant's settings allow members. The price must
/// meet the tenant's minimum per credit, the redirect URLs its allowed origins, and the rollover
/// bounds rule (`check_rollover_bounds`).
pub async fn purchase(
    ctx: &PurchaseContext<'_>,
    who: &Principal,
    req: NewPurchase,
) -> Result<Created<Invoice>, PurchaseError> {
    let tenant = &who.tenant;
    let checked = check_purchase(ctx, who, &req).await?;
    let fingerprint = req.fingerprint();
    let invoice = open_invoice(ctx, tenant, req, checked, &fingerprint).await?;
    let opened = invoice.session.clone();
    let outcome = claim_invoice(ctx, tenant, invoice, fingerprint).await;
    // Only when the session certainly belongs to no invoice: the claim answered with another
    // invoice (a replay whose provider opened a new session), or refused the request. After any
    // other error it is left open: the provider (Stripe, for 24 hours) answers a retry of the same
    // purchase with this very session, and the write may even have happened.
    let orphaned = match &outcome {
        Ok(Created::Replayed(stored)) => stored.session.id != opened.id,
        Err(PurchaseError::IdempotencyMismatch(_)) => true,
        _ => false,
    };
    if orphaned {
        if let Err(e) = ctx.provider.cancel_session(tenant, &opened).await {
            tracing::warn!(session = %opened.id, error = %e, "could not close an unused payment session");
        }
    }
    outcome
}

/// Writes the open invoice under the purchase's idempotency claim (or finds the claim's invoice).
async fn claim_invoice(
    ctx: &PurchaseContext<'_>,
    tenant: &TenantId,
    invoice: Invoice,
    fingerprint: BTreeMap<String, String>,
) -> Result<Created<Invoice>, PurchaseError> {
    let claim = Claim {
        scope: PURCHASE_SCOPE.to_owned(),
        key: invoice.idempotency_key.clone(),
        object_id: invoice.id.as_str().to_owned(),
        fingerprint: fingerprint.clone(),
    };
    let claimed = insert_claimed(
        "invoice",
        ctx.purchase_store.insert_purchase(&invoice, &claim),
        &fingerprint,
        |id| async move {
            ctx.purchase_store
                .get_invoice(tenant, &claimed_id(InvoiceId::parse, &id)?)
                .await
        },
        PurchaseError::IdempotencyMismatch,
    )
    .await?;
    let entitlement_id = invoice.entitlement_id.clone();
    match claimed.into_created(invoice) {
        Some(created) => Ok(created),
        None => match ctx.entitlement_store.get_entitlement(tenant, &entitlement_id).await? {
            None => Err(PurchaseError::EntitlementNotFound),
            Some(e) => Err(PurchaseError::EntitlementNotActive(e.status.as_str())),
        },
    }
}

/// What [`check_purchase`] settled: the price in the tenant's currency, and the payment session's
/// expiry, counted from `now`.
struct Checked {
    price: Price,
    now: Timestamp,
    payment_expires_at: Timestamp,
}

/// The tenant's rules for a purchase, checked before its entitlement is read or a session opened:
/// who may buy, that a provider takes payments, the price (its currency and the tenant's minimum),
/// the rollover bounds, the redirect origins and the payment window.
async fn check_purchase(
    ctx: &PurchaseContext<'_>,
    who: &Principal,
    req: &NewPurchase,
) -> Result<Checked, PurchaseError> {
    let tenant = &who.tenant;
    let settings = match tenants::settings(ctx.tenant_store, ctx.tenants, tenant).await {
        Err(TenantError::NotConfigured) => tenants::ensure(ctx.tenant_store, ctx.clock, tenant, None).await?,
        other => other?,
    };
    if !who.is_admin() && !settings.members_may_purchase {
        return Err(PurchaseError::MembersMayNotPurchase);
    }
    if !ctx.provider.takes_payments() {
        return Err(PurchaseError::Provider(ProviderError::Unavailable(
            "no payment provider is configured".to_owned(),
        )));
    }
    let price = Price::parse(&req.price, settings.currency).map_err(PurchaseError::InvalidPrice)?;
    if let Some(per_credit) = settings.min_price_per_credit {
        let minimum = per_credit.checked_mul(req.amount.value());
        if minimum.is_none_or(|m| price.value() < m) {
            let shown = minimum
                .map(|m| m.normalize().to_string())
                .unwrap_or_else(|| "more than any price".to_owned());
            return Err(PurchaseError::PriceBelowMinimum { minimum: shown });
        }
    }
    check_rollover_bounds(req.amount, req.reset_min_rollover, req.reset_max_rollover)?;
    if req.success_url.is_some() || req.cancel_url.is_some() {
        let sandbox = settings.allowed_redirect_origins.is_empty() && ctx.provider.is_sandbox_for(tenant).await?;
        check_redirect(&settings, sandbox, "successUrl", req.success_url.as_ref())?;
        check_redirect(&settings, sandbox, "cancelUrl", req.cancel_url.as_ref())?;
    }
    let now = ctx.clock.now();
    let payment_expires_at = match req.payment_expires_at {
        Some(t) => t,
        None => now
            .plus_seconds(DEFAULT_PAYMENT_WINDOW_SECONDS)
            .ok_or(PurchaseError::PaymentWindow)?,
    };
    let latest = now
        .plus_seconds(MAX_PAYMENT_WINDOW_SECONDS)
        .ok_or(PurchaseError::PaymentWindow)?;
    if payment_expires_at <= now || payment_expires_at > latest {
        return Err(PurchaseError::PaymentWindow);
    }
    Ok(Checked {
        price,
        now,
        payment_expires_at,
    })
}

/// The open invoice of a checked purchase, with the payment session the provider opened for it.
async fn open_invoice(
    ctx: &PurchaseContext<'_>,
    tenant: &TenantId,
    req: NewPurchase,
    checked: Checked,
    fingerprint: &BTreeMap<String, String>,
) -> Result<Invoice, PurchaseError> {
    let Checked {
        price,
        now,
        payment_expires_at,
    } = checked;
    let entitlement = ctx
        .entitlement_store
        .get_entitlement(tenant, &req.entitlement_id)
        .await?
        .ok_or(PurchaseError::EntitlementNotFound)?;
    let grant_effective_at = req.effective_at.unwrap_or(entitlement.current_period_start);
    if req.expires_at.is_some_and(|e| e <= grant_effective_at) {
        return Err(PurchaseError::ExpiresNotAfterEffective);
    }
    let id = InvoiceId::for_purchase(
        tenant.as_str(),
        req.entitlement_id.as_str(),
        req.idempotency_key.as_str(),
    );
    let provider_key = provider_idempotency_key(&id, fingerprint);
    let session = ctx
        .provider
        .open_session(&SessionRequest {
            tenant,
            invoice_id: &id,
            amount_minor: price.minor_units(),
            currency: price.currency(),
            expires_at: payment_expires_at,
            success_url: req.success_url.as_ref().map(RedirectUrl::as_str),
            cancel_url: req.cancel_url.as_ref().map(RedirectUrl::as_str),
            base_url: ctx.base_url,
            idempotency_key: &provider_key,
        })
        .await?;
    let provider_name = ctx.provider.name_of(&session);
    Ok(Invoice {
        id,
        tenant: tenant.clone(),
        entitlement_id: req.entitlement_id,
        customer_id: entitlement.customer_id,
        subscription_id: entitlement.subscription_id,
        credit_type_id: entitlement.pricing_unit_id,
        grant_amount: req.amount,
        price,
        grant_effective_at,
        grant_expires_at: req.expires_at,
        grant_reset_max_rollover: req.reset_max_rollover,
        grant_reset_min_rollover: req.reset_min_rollover,
        success_url: req.success_url.map(|u| u.0),
        cancel_url: req.cancel_url.map(|u| u.0),
        session,
        provider: provider_name.to_owned(),
        idempotency_key: req.idempotency_key.as_str().to_owned(),
        status: InvoiceStatus::Open,
        created_at: now,
        updated_at: now,
        paid_at: None,
        grant_id: None,
        paid_late: false,
        canceled_at: None,
        cancel_reason: None,
        failure_reason: None,
        notified_at: None,
        refunded_minor: 0,
        credits_reclaimed: rust_decimal::Decimal::ZERO,
        refunded_at: None,
        version: 1,
    })
}

/// The provider's idempotency key of a purchase: SHA-256 (hex) of its invoice id (itself derived
/// from the purchase's idempotency key) and its parameters, so that a retry asks the provider for
/// the same payment and a different request under the same key (refused here with 409) asks for
/// another one rather than being answered with the first.
fn provider_idempotency_key(invoice: &InvoiceId, fingerprint: &BTreeMap<String, String>) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new().chain_update(invoice.as_str());
    for (k, v) in fingerprint {
        h.update([0]);
        h.update(k);
        h.update([0]);
        h.update(v);
    }
    hex::encode(h.finalize())
}

#[derive(Debug, thiserror::Error)]
pub enum InvoiceLookupError {
    #[error("invoice not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn get_invoice(
    store: &dyn PurchaseStore,
    tenant: &TenantId,
    id: &InvoiceId,
) -> Result<Invoice, InvoiceLookupError> {
    store.get_invoice(tenant, id).await?.ok_or(InvoiceLookupError::NotFound)
}

/// The invoice behind a payment session (the checkout page has only the session id).
pub async fn invoice_for_session(
    store: &dyn PurchaseStore,
    session: &crate::SessionId,
) -> Result<Invoice, InvoiceLookupError> {
    let (tenant, invoice) = store.find_session(session).await?.ok_or(InvoiceLookupError::NotFound)?;
    store
        .get_invoice(&tenant, &invoice)
        .await?
        .ok_or(InvoiceLookupError::NotFound)
}
