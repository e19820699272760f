//! Refunds of paid purchases: credits taken back from the purchased grant, never more than it still
//! has unspent.
//!
//! The rule (issue 18, item 3). A refund of `r` of the `p` paid (minor units, the provider's
//! running total `amount_refunded`) asks back `grant amount × r / p` credits, rounded down to
//! 6 decimal places (a full refund: exactly the grant's amount). What earlier refunds of the same
//! invoice already asked back is subtracted; what is left is taken from the grant's available
//! credits (neither consumed nor held by pending usage), and only as much as is there: credits
//! already spent are not clawed back (the merchant's refund is their decision; the ledger never goes
//! negative). The take-back is one ledger record on the entitlement (an adjustment, like a period
//! reset's rollover clamp: it draws on that one grant, is not usage, and appears in the grant's
//! entries), with the id `refund:<invoice>:<total refunded>`, written in one transaction with the
//! invoice's record of the refund (conditioned on its version) and `grant.reduced.v0`.
//!
//! Deliveries in any order and any number of times settle on the largest total: a refund whose
//! total is not above what the invoice has recorded changes nothing.
use super::fulfilment::check_matches;
use super::{FulfilError, Invoice, InvoiceStatus, PurchaseStore};
use crate::entitlement_store::EntitlementStore;
use crate::kernel::StoreError;
use crate::ledger::{Deduction, Effect};
use crate::payments::{PaymentEvent, PaymentEventKind};
use crate::usage::{changed, log_append, UsageRecord};
use crate::{Clock, EntitlementId, GrantId, InvoiceId, TenantId, Timestamp};
use rust_decimal::{Decimal, RoundingStrategy};

/// Decimal places of credits asked back for a partial refund (rounded toward zero).
const RECLAIM_SCALE: u32 = 6;
const VERSION_RETRIES: usize = 8;

/// What one refund did to the purchased grant (the body of `grant.reduced.v0`).
#[derive(Debug, Clone, PartialEq)]
pub struct GrantReduction {
    pub tenant: TenantId,
    pub grant_id: GrantId,
    pub entitlement_id: EntitlementId,
    pub customer_id: String,
    pub invoice_id: InvoiceId,
    /// Credits taken back by this refund (0 when all of it was already spent).
    pub reduced_by: Decimal,
    /// Credits the refund asked back but that were already spent or held.
    pub not_reclaimed: Decimal,
    /// The grant's remaining credits after it.
    pub remaining: Decimal,
    /// Total refunded so far, in the currency's minor unit.
    pub refunded_minor: i64,
    pub currency: String,
    pub at: Timestamp,
}

/// The ledger side of a refund: the adjustment record that takes credits back from the purchased
/// grant, that grant as it becomes (with the version read), and the entitlement's log entry.
#[derive(Debug, Clone, PartialEq)]
pub struct RefundLedger {
    pub record: UsageRecord,
    pub grants: Vec<(crate::model::Grant, u64)>,
    pub log: Option<crate::ledger::LogAppend>,
}

/// What applying a refund event did.
#[derive(Debug, Clone, PartialEq)]
pub enum Refunded {
    Applied(Box<GrantReduction>),
    /// The invoice already records a refund total at least this large (a duplicate or an older
    /// delivery): nothing written.
    AlreadyApplied,
}

/// Applies a `payment.refunded` event (see the module's rule). The take-back, the invoice's record
/// of it and `grant.reduced.v0` are one transaction conditioned on the invoice's version and the
/// grant's, so concurrent or repeated deliveries of refund totals apply each credit once, in
/// whatever order they come. Errors: the event does not match the invoice (session, currency,
/// more than was paid) or names no invoice: permanent (the dead-letter queue); the invoice is not
/// paid yet: retried later (its paid event is on the way).
pub async fn apply_refund<S>(store: &S, clock: &dyn Clock, event: &PaymentEvent) -> Result<Refunded, FulfilError>
where
    S: PurchaseStore + EntitlementStore + ?Sized,
{
    debug_assert_eq!(event.kind, PaymentEventKind::Refunded);
    for _ in 0..VERSION_RETRIES {
        let invoice = store
            .get_invoice(&event.tenant, &event.invoice_id)
            .await?
            .ok_or_else(|| FulfilError::UnknownInvoice(event.invoice_id.clone()))?;
        check_matches(&invoice, event)?;
        if event.amount_minor <= invoice.refunded_minor {
            return Ok(Refunded::AlreadyApplied);
        }
        let (InvoiceStatus::Paid, Some(grant_id)) = (invoice.status, invoice.grant_id.clone()) else {
            return Err(FulfilError::NotPaidYet(invoice.id.clone()));
        };
        let now = clock.now();
        let asked = (asked_back(&invoice, event.amount_minor) - invoice.credits_reclaimed).max(Decimal::ZERO);
        let take_back = plan_take_back(store, &invoice, &grant_id, event.amount_minor, asked, now).await?;
        let (taken, remaining) = take_back
            .as_ref()
            .map_or((Decimal::ZERO, Decimal::ZERO), |(taken, remaining, _)| {
                (*taken, *remaining)
            });
        let mut refunded = invoice.clone();
        refunded.version += 1;
        refunded.updated_at = now;
        refunded.refunded_minor = event.amount_minor;
        refunded.credits_reclaimed += taken;
        refunded.refunded_at = Some(now);
        let reduction = GrantReduction {
            tenant: invoice.tenant.clone(),
            grant_id,
            entitlement_id: invoice.entitlement_id.clone(),
            customer_id: invoice.customer_id.clone(),
            invoice_id: invoice.id.clone(),
            reduced_by: taken,
            not_reclaimed: asked - taken,
            remaining,
            refunded_minor: event.amount_minor,
            currency: invoice.price.currency().code().to_owned(),
            at: now,
        };
        let ledger = take_back.as_ref().and_then(|(_, _, ledger)| ledger.as_ref());
        if store
            .record_refund(&refunded, invoice.version, &reduction, ledger)
            .await?
        {
            return Ok(Refunded::Applied(Box::new(reduction)));
        }
    }
    Err(FulfilError::Store(StoreError::Contention))
}

/// Credits a refund total asks back: the grant's amount in proportion to the money refunded.
fn asked_back(invoice: &Invoice, refunded_minor: i64) -> Decimal {
    let amount = invoice.grant_amount.value();
    let paid = invoice.session.amount_minor;
    if refunded_minor >= paid || paid <= 0 {
        return amount;
    }
    // Checked: beyond Decimal's range (never for a real price) everything is asked back, and the
    // take-back is still capped by what the grant has.
    amount
        .checked_mul(Decimal::from(refunded_minor))
        .and_then(|x| x.checked_div(Decimal::from(paid)))
        .map_or(amount, |x| {
            x.round_dp_with_strategy(RECLAIM_SCALE, RoundingStrategy::ToZero)
        })
}

/// What can be taken back now: up to `asked` of the grant's available credits (neither consumed
/// nor held, the grant neither expired nor voided, the entitlement active), as (taken, the grant's
/// remaining after, the ledger write when anything is taken). None: no such grant.
async fn plan_take_back<S>(
    store: &S,
    invoice: &Invoice,
    grant_id: &GrantId,
    refunded_minor: i64,
    asked: Decimal,
    now: Timestamp,
) -> Result<Option<(Decimal, Decimal, Option<RefundLedger>)>, StoreError>
where
    S: EntitlementStore + ?Sized,
{
    let Some((entitlement, grants)) = store.load_entitlement(&invoice.tenant, &invoice.entitlement_id).await? else {
        return Ok(None);
    };
    let Some(grant) = grants.iter().find(|g| &g.id == grant_id) else {
        return Ok(None);
    };
    let at = now.max(grant.effective_at);
    let usable = grant.expires_at.is_none_or(|e| at < e) && grant.voided_at.is_none() && entitlement.is_active();
    let available = if usable {
        (grant.remaining - grant.reserved).max(Decimal::ZERO)
    } else {
        Decimal::ZERO
    };
    let take = asked.min(available);
    if take.is_zero() {
        return Ok(Some((Decimal::ZERO, grant.remaining, None)));
    }
    let deductions = vec![Deduction {
        grant_id: grant_id.clone(),
        amount: take,
    }];
    let writes = changed(&grants, &deductions, Effect::Consume, at);
    let record = UsageRecord::adjustment(
        &invoice.tenant,
        &invoice.entitlement_id,
        format!("refund:{}:{refunded_minor}", invoice.id),
        at,
        now,
        deductions,
    );
    let log = log_append(&entitlement, &grants, &writes, &record.posting());
    Ok(Some((
        take,
        grant.remaining - take,
        Some(RefundLedger {
            record,
            grants: writes,
            log,
        }),
    )))
}
