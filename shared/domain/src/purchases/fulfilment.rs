//! Fulfilment: payment events applied to invoices exactly once (the paid one creates the grant and
//! publishes `invoice.paid.v0`), and the sweep that cancels invoices whose session expired.
use super::{Invoice, InvoiceStatus, PurchaseStore};
use crate::kernel::StoreError;
use crate::messaging::QueueError;
use crate::model::{Grant, GrantDetails, NewGrantFields};
use crate::payments::{PaymentEvent, PaymentEventKind};
use crate::{Clock, GrantId, InvoiceId, Timestamp};

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
    /// A refund for an invoice that is not paid yet (its paid event is still on the way): retried.
    #[error("invoice {0} is not paid yet")]
    NotPaidYet(InvoiceId),
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

/// What fulfilment needs: the invoices (and the grants their payment creates), a clock, and where
/// `invoice.paid.v0` goes.
pub struct Fulfilment<'a> {
    pub store: &'a dyn PurchaseStore,
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
                    f.store.cancel_invoice(&canceled, invoice.version).await?,
                    Applied::Canceled,
                )
            }
            (PaymentEventKind::Failed, InvoiceStatus::Open) => {
                let mut failed = invoice.next(now);
                failed.failure_reason = Some(event.failure.clone().unwrap_or_else(|| "PAYMENT_FAILED".to_owned()));
                (
                    f.store.update_invoice(&failed, invoice.version).await?,
                    Applied::FailureRecorded,
                )
            }
            (PaymentEventKind::Expired | PaymentEventKind::Failed, _) => {
                return Ok(Applied::Ignored("invoice is no longer open"));
            }
            (PaymentEventKind::Refunded, _) => {
                return Ok(Applied::Ignored("refunds are applied by purchases::apply_refund"));
            }
        };
        if outcome.0 {
            return Ok(outcome.1);
        }
    }
    Err(FulfilError::Store(StoreError::Contention))
}

pub(super) fn check_matches(invoice: &Invoice, event: &PaymentEvent) -> Result<(), FulfilError> {
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
    if matches!(event.kind, PaymentEventKind::Paid | PaymentEventKind::Refunded) {
        if event.currency != invoice.price.currency() {
            return Err(mismatch(format!(
                "currency {} is not {}",
                event.currency,
                invoice.price.currency()
            )));
        }
        if event.kind == PaymentEventKind::Refunded && event.amount_minor > invoice.session.amount_minor {
            return Err(mismatch(format!(
                "refunded {} is more than the {} paid",
                event.amount_minor, invoice.session.amount_minor
            )));
        }
        if event.kind == PaymentEventKind::Paid && event.amount_minor != invoice.session.amount_minor {
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
    Grant::new(NewGrantFields {
        tenant: invoice.tenant.clone(),
        entitlement_id: invoice.entitlement_id.clone(),
        customer_id: invoice.customer_id.clone(),
        amount: invoice.grant_amount,
        effective_at: invoice.grant_effective_at,
        created_at: now,
        credit_type_id: invoice.credit_type_id.clone(),
    })
    .with_expiry(invoice.grant_expires_at)
    .with_rollover_bounds(invoice.grant_reset_min_rollover, invoice.grant_reset_max_rollover)
    .with_idempotency_key(Some(invoice.idempotency_key.clone()))
    .with_details(GrantDetails {
        // Paid in US cents is the default credit type's unit; other currencies have no credit type.
        paid_amount: (invoice.price.currency().code().eq_ignore_ascii_case("usd"))
            .then(|| rust_decimal::Decimal::from(invoice.session.amount_minor)),
        invoice_id: Some(invoice.id.as_str().to_owned()),
        ..GrantDetails::default()
    })
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

/// How long one expiry run may start provider calls: the function's timeout (60 s) less one
/// invoice's worst case (two provider calls of at most 10 s each) and a margin.
pub(crate) const EXPIRY_RUN_BUDGET: std::time::Duration = std::time::Duration::from_secs(30);

/// Cancels open invoices whose payment session has expired (the scheduled sweep). Returns how many
/// it canceled. The provider's session is closed first (Stripe: the PaymentIntent is canceled), so
/// nobody can pay an invoice once it is canceled; one whose payment the provider says already
/// went through is left open for its paid event, and one the provider could not be asked about is
/// tried again next run; one whose tenant's provider set-up is gone (no keys, keys refused) is
/// canceled here all the same (a payment that still comes makes its grant, `paidLate`). The run
/// stops after [`EXPIRY_RUN_BUDGET`], leaving the rest for the next one. An invoice that changed
/// meanwhile (paid at the last second) is left as it is.
pub async fn expire_due_sessions(
    store: &dyn PurchaseStore,
    provider: &dyn crate::payments::PaymentProvider,
    clock: &dyn Clock,
    limit: usize,
) -> Result<usize, StoreError> {
    let now = clock.now();
    let started = std::time::Instant::now();
    let mut canceled = 0;
    for invoice in store.due_open_invoices(now, limit).await? {
        if invoice.status != InvoiceStatus::Open || invoice.session.expires_at > now {
            continue;
        }
        if started.elapsed() > EXPIRY_RUN_BUDGET {
            tracing::warn!(
                canceled,
                "expiry stopped at the run's time budget; the next run goes on"
            );
            break;
        }
        if provider.offers(&invoice.provider) {
            match provider.cancel_session(&invoice.tenant, &invoice.session).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::info!(invoice = %invoice.id, "expired session was paid at the provider; left open for its event");
                    continue;
                }
                Err(crate::payments::ProviderError::Refused(why)) => {
                    tracing::warn!(invoice = %invoice.id, reason = %why, "the provider's session cannot be closed; the invoice is canceled all the same");
                }
                Err(e) => {
                    tracing::warn!(invoice = %invoice.id, error = %e, "could not close the provider's session; next run tries again");
                    continue;
                }
            }
        }
        if store
            .cancel_invoice(&cancel(&invoice, now, "payment_session_expired"), invoice.version)
            .await?
        {
            canceled += 1;
        }
    }
    Ok(canceled)
}
