//! Grant purchases: an invoice with a payment session now, exactly one grant once it is paid.
//!
//! Life of an invoice: `open` -> `paid` (a grant exists; `grant_id` set) or `open` -> `canceled`
//! (the session expired: no grant, no charge). A payment that still arrives for a canceled invoice
//! is honoured: `canceled` -> `paid` with `paid_late`, because money taken is never lost.
//! Every change is a write conditioned on the invoice's `version`, so concurrent deliveries of one
//! event race on one conditional write and exactly one of them creates the grant.
use crate::auth::Principal;
use crate::grants::{check_rollover_bounds, Created, IdempotencyKey, RolloverBoundsError};
use crate::messaging::QueueError;
use crate::model::GrantDetails;
use crate::model::{Claim, Grant};
use crate::money::{Price, PriceError};
use crate::payments::{PaymentEvent, PaymentEventKind, PaymentProvider, PaymentSession, ProviderError, SessionRequest};
use crate::ports::{InsertOutcome, Store, StoreError};
use crate::tenants::{self, origin_of, TenantCache, TenantError, TenantSettings};
use crate::{Clock, CreditAmount, EntitlementId, GrantId, InvoiceId, NonNegative, TenantId, Timestamp};
use std::collections::BTreeMap;

/// Session lifetime when the request names none (Paygentic's example: one day).
pub const DEFAULT_PAYMENT_WINDOW_SECONDS: i64 = 24 * 3600;
/// The longest payment window accepted.
pub const MAX_PAYMENT_WINDOW_SECONDS: i64 = 30 * 24 * 3600;
pub const PURCHASE_SCOPE: &str = "purchase";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvoiceStatus {
    Open,
    Paid,
    Canceled,
}

impl InvoiceStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            InvoiceStatus::Open => "open",
            InvoiceStatus::Paid => "paid",
            InvoiceStatus::Canceled => "canceled",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(Self::Open),
            "paid" => Some(Self::Paid),
            "canceled" => Some(Self::Canceled),
            _ => None,
        }
    }
}

/// An ad-hoc invoice for a grant purchase.
#[derive(Debug, Clone, PartialEq)]
pub struct Invoice {
    pub id: InvoiceId,
    pub tenant: TenantId,
    pub entitlement_id: EntitlementId,
    pub customer_id: String,
    pub subscription_id: Option<String>,
    /// The entitlement's credit type (None: the default), carried to the grant.
    pub credit_type_id: Option<String>,
    /// Credits granted on payment.
    pub grant_amount: CreditAmount,
    pub price: Price,
    /// The grant's effective time, resolved at purchase (default: the entitlement's period start).
    pub grant_effective_at: Timestamp,
    pub grant_expires_at: Option<Timestamp>,
    pub grant_reset_max_rollover: Option<NonNegative>,
    pub grant_reset_min_rollover: Option<NonNegative>,
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
    pub session: PaymentSession,
    pub provider: String,
    pub idempotency_key: String,
    pub status: InvoiceStatus,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub paid_at: Option<Timestamp>,
    pub grant_id: Option<GrantId>,
    /// Paid after the session expired or the invoice was canceled.
    pub paid_late: bool,
    pub canceled_at: Option<Timestamp>,
    pub cancel_reason: Option<String>,
    /// The last failed payment attempt's reason (the invoice stays open).
    pub failure_reason: Option<String>,
    /// When `invoice.paid.v0` was published.
    pub notified_at: Option<Timestamp>,
    /// Bumped by every write; each write is conditioned on the version it read.
    pub version: u64,
}

impl Invoice {
    /// The status a reader sees: an open invoice past its session's expiry is canceled even before
    /// the scheduled sweep writes it so.
    pub fn status_at(&self, now: Timestamp) -> InvoiceStatus {
        if self.status == InvoiceStatus::Open && now >= self.session.expires_at {
            InvoiceStatus::Canceled
        } else {
            self.status
        }
    }

    fn next(&self, now: Timestamp) -> Invoice {
        Invoice {
            version: self.version + 1,
            updated_at: now,
            ..self.clone()
        }
    }

    /// Handled by the sandbox provider: no money moved.
    pub fn is_sandbox(&self) -> bool {
        self.provider == super::payments::SANDBOX_PROVIDER
    }

    /// The request parameters as sent, for replay comparison.
    fn fingerprint(req: &NewPurchase) -> BTreeMap<String, String> {
        let mut f = BTreeMap::new();
        f.insert("amount".to_owned(), req.amount.value().to_string());
        let price = crate::amount::parse_decimal(&req.price).map(|d| d.normalize().to_string());
        f.insert("price".to_owned(), price.unwrap_or_else(|_| req.price.clone()));
        let mut opt = |name: &str, v: Option<String>| {
            if let Some(v) = v {
                f.insert(name.to_owned(), v);
            }
        };
        opt("effectiveAt", req.effective_at.map(|t| t.to_storage()));
        opt("expiresAt", req.expires_at.map(|t| t.to_storage()));
        opt("successUrl", req.success_url.as_ref().map(|u| u.as_str().to_owned()));
        opt("cancelUrl", req.cancel_url.as_ref().map(|u| u.as_str().to_owned()));
        opt("paymentExpiresAt", req.payment_expires_at.map(|t| t.to_storage()));
        opt(
            "resetMaxRollover",
            req.reset_max_rollover.map(|v| v.value().to_string()),
        );
        opt(
            "resetMinRollover",
            req.reset_min_rollover.map(|v| v.value().to_string()),
        );
        f
    }
}

/// An absolute http(s) URL of at most 2048 characters (a redirect target).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectUrl(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be an absolute http or https URL of at most 2048 characters")]
pub struct UrlError;

impl RedirectUrl {
    pub fn parse(s: &str) -> Result<Self, UrlError> {
        let rest = s
            .strip_prefix("https://")
            .or_else(|| s.strip_prefix("http://"))
            .ok_or(UrlError)?;
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if host.is_empty() || s.len() > 2048 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(UrlError);
        }
        Ok(Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

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

/// What a purchase needs besides the store.
pub struct PurchaseContext<'a> {
    pub store: &'a dyn Store,
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
    provider: &dyn PaymentProvider,
    field: &'static str,
    url: Option<&RedirectUrl>,
) -> Result<(), PurchaseError> {
    let Some(url) = url else { return Ok(()) };
    let origin = origin_of(url.as_str());
    let allowed = if settings.allowed_redirect_origins.is_empty() {
        provider.is_sandbox() && url.as_str().starts_with("https://") && origin.is_some()
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
/// bounds [`check_rollover_bounds`].
pub async fn purchase(
    ctx: &PurchaseContext<'_>,
    who: &Principal,
    req: NewPurchase,
) -> Result<Created<Invoice>, PurchaseError> {
    let tenant = &who.tenant;
    let settings = match tenants::settings(ctx.store, ctx.tenants, tenant).await {
        Err(TenantError::NotConfigured) => tenants::ensure(ctx.store, ctx.clock, tenant, None).await?,
        other => other?,
    };
    if !who.is_admin() && !settings.members_may_purchase {
        return Err(PurchaseError::MembersMayNotPurchase);
    }
    if !ctx.provider.takes_payments() {
        return Err(PurchaseError::Provider(ProviderError(
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
    check_redirect(&settings, ctx.provider, "successUrl", req.success_url.as_ref())?;
    check_redirect(&settings, ctx.provider, "cancelUrl", req.cancel_url.as_ref())?;
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
    let entitlement = ctx
        .store
        .get_entitlement(tenant, &req.entitlement_id)
        .await?
        .ok_or(PurchaseError::EntitlementNotFound)?;
    let grant_effective_at = req.effective_at.unwrap_or(entitlement.current_period_start);
    if req.expires_at.is_some_and(|e| e <= grant_effective_at) {
        return Err(PurchaseError::ExpiresNotAfterEffective);
    }
    let id = InvoiceId::generate();
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
        })
        .await?;
    let fingerprint = Invoice::fingerprint(&req);
    let invoice = Invoice {
        id,
        tenant: tenant.clone(),
        entitlement_id: req.entitlement_id.clone(),
        customer_id: entitlement.customer_id.clone(),
        subscription_id: entitlement.subscription_id.clone(),
        credit_type_id: entitlement.pricing_unit_id.clone(),
        grant_amount: req.amount,
        price,
        grant_effective_at,
        grant_expires_at: req.expires_at,
        grant_reset_max_rollover: req.reset_max_rollover,
        grant_reset_min_rollover: req.reset_min_rollover,
        success_url: req.success_url.map(|u| u.0),
        cancel_url: req.cancel_url.map(|u| u.0),
        session,
        provider: ctx.provider.name().to_owned(),
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
        version: 1,
    };
    let claim = Claim {
        scope: PURCHASE_SCOPE.to_owned(),
        key: req.idempotency_key.as_str().to_owned(),
        object_id: invoice.id.as_str().to_owned(),
        fingerprint: fingerprint.clone(),
    };
    match ctx.store.insert_purchase(&invoice, &claim).await? {
        InsertOutcome::Inserted => Ok(Created::New(invoice)),
        InsertOutcome::ClaimExists(existing) => {
            let id = existing
                .replayed_id(&fingerprint)
                .map_err(PurchaseError::IdempotencyMismatch)?;
            let id = InvoiceId::parse(id).map_err(|_| StoreError::Corrupt(format!("claim points at {id}")))?;
            let original = ctx
                .store
                .get_invoice(tenant, &id)
                .await?
                .ok_or_else(|| StoreError::Corrupt(format!("claimed invoice {id} is missing")))?;
            Ok(Created::Replayed(original))
        }
        InsertOutcome::ParentUnavailable => match ctx.store.get_entitlement(tenant, &req.entitlement_id).await? {
            None => Err(PurchaseError::EntitlementNotFound),
            Some(e) => Err(PurchaseError::EntitlementNotActive(e.status.as_str())),
        },
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InvoiceLookupError {
    #[error("invoice not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn get_invoice(store: &dyn Store, tenant: &TenantId, id: &InvoiceId) -> Result<Invoice, InvoiceLookupError> {
    store.get_invoice(tenant, id).await?.ok_or(InvoiceLookupError::NotFound)
}

/// The invoice behind a payment session (the checkout page has only the session id).
pub async fn invoice_for_session(store: &dyn Store, session: &super::SessionId) -> Result<Invoice, InvoiceLookupError> {
    let (tenant, invoice) = store.find_session(session).await?.ok_or(InvoiceLookupError::NotFound)?;
    store
        .get_invoice(&tenant, &invoice)
        .await?
        .ok_or(InvoiceLookupError::NotFound)
}

/// What applying a payment event did. Every variant means the event is fully handled.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// The invoice is now paid and this grant was created.
    Fulfilled { grant_id: GrantId, late: bool },
    /// The invoice was already paid (a duplicate or redelivery): nothing new was written.
    AlreadyFulfilled { grant_id: GrantId },
    /// The session expired: the open invoice is now canceled.
    Canceled,
    /// A failed payment attempt was recorded; the invoice stays open.
    FailureRecorded,
    /// Nothing to do (an expiry or failure for an invoice that is no longer open).
    Ignored(&'static str),
}

#[derive(Debug, thiserror::Error)]
pub enum FulfilError {
    /// No such invoice for the event's account: a person must look (dead-letter queue).
    #[error("unknown invoice {0}")]
    UnknownInvoice(InvoiceId),
    /// The event does not match the invoice (amount, currency, session): never fulfilled.
    #[error("event does not match invoice {invoice}: {what}")]
    Mismatch { invoice: InvoiceId, what: String },
    #[error("could not publish invoice.paid.v0: {0}")]
    Publish(#[from] QueueError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl FulfilError {
    /// True when retrying cannot help (the message will end in the dead-letter queue).
    pub fn is_permanent(&self) -> bool {
        matches!(self, FulfilError::UnknownInvoice(_) | FulfilError::Mismatch { .. })
    }
}

/// Where `invoice.paid.v0` goes.
pub struct Fulfilment<'a> {
    pub store: &'a dyn Store,
    pub clock: &'a dyn Clock,
    pub invoice_events: &'a dyn InvoiceEvents,
}

/// Where `invoice.paid.v0` goes once an invoice is paid and its grant exists (deployed: the
/// invoice-events queue, as JSON). Ok once the event is durably accepted.
#[async_trait::async_trait]
pub trait InvoiceEvents: Send + Sync {
    async fn invoice_paid(&self, invoice: &Invoice) -> Result<(), QueueError>;
}

/// Version races one event may lose before giving up (the message is then retried by SQS).
const VERSION_RETRIES: usize = 8;

/// Applies one payment event, exactly once per invoice whatever the duplicates, redeliveries,
/// concurrency or order.
pub async fn apply_payment_event(f: &Fulfilment<'_>, event: &PaymentEvent) -> Result<Applied, FulfilError> {
    for _ in 0..VERSION_RETRIES {
        let invoice = f
            .store
            .get_invoice(&event.tenant, &event.invoice_id)
            .await?
            .ok_or_else(|| FulfilError::UnknownInvoice(event.invoice_id.clone()))?;
        check_matches(&invoice, event)?;
        let now = f.clock.now();
        let outcome = match (event.kind, invoice.status) {
            (PaymentEventKind::Paid, InvoiceStatus::Paid) => {
                let grant_id = invoice
                    .grant_id
                    .clone()
                    .ok_or_else(|| StoreError::Corrupt("paid invoice without grant".to_owned()))?;
                if invoice.notified_at.is_none() {
                    // An earlier delivery created the grant but did not get to publish.
                    notify(f, &invoice).await?;
                }
                return Ok(Applied::AlreadyFulfilled { grant_id });
            }
            (PaymentEventKind::Paid, status) => {
                let late = status == InvoiceStatus::Canceled || event.occurred_at >= invoice.session.expires_at;
                let grant = grant_for(&invoice, now);
                let mut paid = invoice.next(now);
                paid.status = InvoiceStatus::Paid;
                paid.paid_at = Some(now);
                paid.grant_id = Some(grant.id.clone());
                paid.paid_late = late;
                if f.store.settle_invoice(&paid, invoice.version, &grant).await? {
                    notify(f, &paid).await?;
                    return Ok(Applied::Fulfilled {
                        grant_id: grant.id,
                        late,
                    });
                }
                continue;
            }
            (PaymentEventKind::Expired, InvoiceStatus::Open) => {
                let canceled = cancel(&invoice, now, "payment_session_expired");
                (
                    f.store.update_invoice(&canceled, invoice.version).await?,
                    Applied::Canceled,
                )
            }
            (PaymentEventKind::Failed, InvoiceStatus::Open) => {
                let mut failed = invoice.next(now);
                failed.failure_reason = Some("PAYMENT_FAILED".to_owned());
                (
                    f.store.update_invoice(&failed, invoice.version).await?,
                    Applied::FailureRecorded,
                )
            }
            (PaymentEventKind::Expired | PaymentEventKind::Failed, _) => {
                return Ok(Applied::Ignored("invoice is no longer open"));
            }
        };
        if outcome.0 {
            return Ok(outcome.1);
        }
    }
    Err(FulfilError::Store(StoreError::Contention))
}

fn check_matches(invoice: &Invoice, event: &PaymentEvent) -> Result<(), FulfilError> {
    let mismatch = |what: String| FulfilError::Mismatch {
        invoice: invoice.id.clone(),
        what,
    };
    if event.session_id != invoice.session.id {
        return Err(mismatch(format!(
            "session {} is not the invoice's {}",
            event.session_id, invoice.session.id
        )));
    }
    if event.kind == PaymentEventKind::Paid {
        if event.currency != invoice.price.currency() {
            return Err(mismatch(format!(
                "currency {} is not {}",
                event.currency,
                invoice.price.currency()
            )));
        }
        if event.amount_minor != invoice.session.amount_minor {
            return Err(mismatch(format!(
                "amount {} is not {}",
                event.amount_minor, invoice.session.amount_minor
            )));
        }
    }
    Ok(())
}

fn cancel(invoice: &Invoice, now: Timestamp, reason: &str) -> Invoice {
    let mut canceled = invoice.next(now);
    canceled.status = InvoiceStatus::Canceled;
    canceled.canceled_at = Some(now);
    canceled.cancel_reason = Some(reason.to_owned());
    canceled
}

/// The grant a paid invoice creates.
fn grant_for(invoice: &Invoice, now: Timestamp) -> Grant {
    Grant {
        id: GrantId::generate(),
        tenant: invoice.tenant.clone(),
        entitlement_id: invoice.entitlement_id.clone(),
        customer_id: invoice.customer_id.clone(),
        amount: invoice.grant_amount,
        remaining: invoice.grant_amount.value(),
        effective_at: invoice.grant_effective_at,
        expires_at: invoice.grant_expires_at,
        voided_at: None,
        created_at: now,
        priority: None,
        reset_max_rollover: invoice.grant_reset_max_rollover,
        reset_min_rollover: invoice.grant_reset_min_rollover,
        recurrence_period: None,
        idempotency_key: Some(invoice.idempotency_key.clone()),
        reserved: rust_decimal::Decimal::ZERO,
        last_used_at: None,
        version: 0,
        credit_type_id: invoice.credit_type_id.clone(),
        details: GrantDetails {
            // Paid in US cents is the default credit type's unit; other currencies have no credit type.
            paid_amount: (invoice.price.currency().code().eq_ignore_ascii_case("usd"))
                .then(|| rust_decimal::Decimal::from(invoice.session.amount_minor)),
            invoice_id: Some(invoice.id.as_str().to_owned()),
            ..GrantDetails::default()
        },
    }
}

/// Publishes `invoice.paid.v0`, then records that it did. A crash in between publishes again on
/// redelivery: consumers deduplicate by the event `id`, which is fixed per invoice.
async fn notify(f: &Fulfilment<'_>, invoice: &Invoice) -> Result<(), FulfilError> {
    f.invoice_events.invoice_paid(invoice).await?;
    let mut notified = invoice.next(f.clock.now());
    notified.notified_at = Some(f.clock.now());
    // Losing this race only means another delivery recorded it first.
    f.store.update_invoice(&notified, invoice.version).await?;
    Ok(())
}

/// Cancels open invoices whose payment session has expired (the scheduled sweep). Returns how many
/// it canceled. An invoice that changed meanwhile (paid at the last second) is left as it is.
pub async fn expire_due_sessions(store: &dyn Store, clock: &dyn Clock, limit: usize) -> Result<usize, StoreError> {
    let now = clock.now();
    let mut canceled = 0;
    for invoice in store.due_open_invoices(now, limit).await? {
        if invoice.status != InvoiceStatus::Open || invoice.session.expires_at > now {
            continue;
        }
        if store
            .update_invoice(&cancel(&invoice, now, "payment_session_expired"), invoice.version)
            .await?
        {
            canceled += 1;
        }
    }
    Ok(canceled)
}

/// The storage port of this module: Invoices of purchases and their payment sessions. Implemented by `grants_dynamo::DynamoStore` and
/// [`crate::memory::MemoryStore`]; the contract tests hold both to the same behaviour.
#[async_trait::async_trait]
pub trait PurchaseStore: Send + Sync {
    /// Writes the invoice, its payment-session lookup and its claim in one transaction,
    /// conditional on the claim being new and the entitlement being active.
    async fn insert_purchase(
        &self,
        invoice: &crate::purchases::Invoice,
        claim: &crate::model::Claim,
    ) -> Result<crate::ports::InsertOutcome, crate::ports::StoreError>;
    async fn get_invoice(
        &self,
        tenant: &crate::TenantId,
        id: &crate::InvoiceId,
    ) -> Result<Option<crate::purchases::Invoice>, crate::ports::StoreError>;
    /// The tenant and invoice of a payment session.
    async fn find_session(
        &self,
        id: &crate::SessionId,
    ) -> Result<Option<(crate::TenantId, crate::InvoiceId)>, crate::ports::StoreError>;
    /// Replaces the invoice if its stored version is still `expected_version`; false otherwise.
    async fn update_invoice(
        &self,
        invoice: &crate::purchases::Invoice,
        expected_version: u64,
    ) -> Result<bool, crate::ports::StoreError>;
    /// In one transaction: replaces the invoice (now paid) if its version is still
    /// `expected_version`, and creates its grant. False when the version moved (nothing written).
    async fn settle_invoice(
        &self,
        invoice: &crate::purchases::Invoice,
        expected_version: u64,
        grant: &crate::model::Grant,
    ) -> Result<bool, crate::ports::StoreError>;
    /// Open invoices whose session expired by `now`, oldest expiry first (an index read: may lag).
    async fn due_open_invoices(
        &self,
        now: crate::Timestamp,
        limit: usize,
    ) -> Result<Vec<crate::purchases::Invoice>, crate::ports::StoreError>;
}
