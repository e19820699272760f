//! Grant purchases: an invoice with a payment session now, exactly one grant once it is paid.
//!
//! Life of an invoice: `open` -> `paid` (a grant exists; `grant_id` set) or `open` -> `canceled`
//! (the session expired: no grant, no charge). A payment that still arrives for a canceled invoice
//! is honoured: `canceled` -> `paid` with `paid_late`, because money taken is never lost.
//! Every change is a write conditioned on the invoice's `version`, so concurrent deliveries of one
//! event race on one conditional write and exactly one of them creates the grant.
//!
//! Two halves: the purchase itself ([`purchase()`]: the checks, the invoice and its session) and
//! fulfilment ([`apply_payment_event`]: payment events, the grant; [`expire_due_sessions`]).
use crate::money::Price;
use crate::payments::PaymentSession;
use crate::{CreditAmount, EntitlementId, GrantId, InvoiceId, NonNegative, TenantId, Timestamp};

mod fulfilment;
mod purchase;
mod refunds;

pub use fulfilment::{apply_payment_event, expire_due_sessions, Applied, FulfilError, Fulfilment, InvoiceEvents};
pub use purchase::{
    get_invoice, invoice_for_session, purchase, InvoiceLookupError, NewPurchase, PurchaseContext, PurchaseError,
};
pub use refunds::{apply_refund, GrantReduction, RefundLedger, Refunded};

/// Session lifetime when the request names none (Paygentic's example: one day).
const DEFAULT_PAYMENT_WINDOW_SECONDS: i64 = 24 * 3600;
/// The longest payment window accepted.
const MAX_PAYMENT_WINDOW_SECONDS: i64 = 30 * 24 * 3600;
const PURCHASE_SCOPE: &str = "purchase";

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
    /// Money given back so far, in the currency's minor unit (0: none).
    pub refunded_minor: i64,
    /// Credits taken back from the purchased grant for those refunds (never more than it had
    /// unspent when each refund arrived).
    pub credits_reclaimed: rust_decimal::Decimal,
    /// When the last refund was applied.
    pub refunded_at: Option<Timestamp>,
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
        self.provider == crate::payments::SANDBOX_PROVIDER
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
    fn as_str(&self) -> &str {
        &self.0
    }
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
        claim: &crate::kernel::Claim,
    ) -> Result<crate::kernel::InsertOutcome, crate::kernel::StoreError>;
    async fn get_invoice(
        &self,
        tenant: &crate::TenantId,
        id: &crate::InvoiceId,
    ) -> Result<Option<crate::purchases::Invoice>, crate::kernel::StoreError>;
    /// The tenant and invoice of a payment session.
    async fn find_session(
        &self,
        id: &crate::SessionId,
    ) -> Result<Option<(crate::TenantId, crate::InvoiceId)>, crate::kernel::StoreError>;
    /// Replaces the invoice if its stored version is still `expected_version`; false otherwise.
    async fn update_invoice(
        &self,
        invoice: &crate::purchases::Invoice,
        expected_version: u64,
    ) -> Result<bool, crate::kernel::StoreError>;
    /// In one transaction: replaces the invoice (now canceled) if its version is still
    /// `expected_version`, and records `purchase.canceled.v0` (the outbox). False when the version
    /// moved (nothing written).
    async fn cancel_invoice(
        &self,
        invoice: &crate::purchases::Invoice,
        expected_version: u64,
    ) -> Result<bool, crate::kernel::StoreError>;
    /// In one transaction: replaces the invoice (now paid) if its version is still
    /// `expected_version`, creates its grant, and records `invoice.paid.v0` and `grant.created.v0`
    /// (the outbox). False when the version moved (nothing written).
    async fn settle_invoice(
        &self,
        invoice: &crate::purchases::Invoice,
        expected_version: u64,
        grant: &crate::model::Grant,
    ) -> Result<bool, crate::kernel::StoreError>;
    /// In one transaction: replaces the invoice (its refund recorded) if its version is still
    /// `expected_version`, records `grant.reduced.v0` (the outbox), and, when credits are taken
    /// back, writes `ledger` as [`crate::usage::UsageStore::write_usage`] writes usage (the
    /// adjustment record if its id is new, the entitlement's log if unmoved and no lease is live,
    /// the grant at the version read). False when anything moved (nothing written).
    async fn record_refund(
        &self,
        invoice: &crate::purchases::Invoice,
        expected_version: u64,
        reduction: &crate::purchases::GrantReduction,
        ledger: Option<&crate::purchases::RefundLedger>,
    ) -> Result<bool, crate::kernel::StoreError>;
    /// Open invoices whose session expired by `now`, oldest expiry first (an index read: may lag).
    async fn due_open_invoices(
        &self,
        now: crate::Timestamp,
        limit: usize,
    ) -> Result<Vec<crate::purchases::Invoice>, crate::kernel::StoreError>;
}
