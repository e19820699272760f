//! The fulfilment function's work: a batch of payment-event messages in, the ids of the ones that
//! failed out (SQS `ReportBatchItemFailures`). A failed message returns to the queue after its
//! visibility timeout and reaches the dead-letter queue after `maxReceiveCount` receives: that is
//! where events that can never apply (unknown invoice, amount or currency mismatch, malformed
//! body) end up for a person to look at. Nothing is deleted that did not apply.
use crate::{App, Store};
use grants_domain::messaging::{MessageQueue, QueueError};
use grants_domain::payments::PaymentEventKind;
use grants_domain::purchases::{self, Applied, Fulfilment, Invoice, InvoiceEvents};
use grants_domain::{EventId, GrantId};
use serde_json::json;

/// One queue message: its id and body.
#[derive(Debug, Clone)]
pub struct Message {
    pub id: String,
    pub body: String,
}

/// Applies every message of a batch (concurrently); returns the ids of those that failed.
pub async fn process_batch<S: Store>(app: &App<S>, messages: Vec<Message>) -> Vec<String> {
    let results = futures::future::join_all(messages.iter().map(|m| process(app, m))).await;
    messages
        .into_iter()
        .zip(results)
        .filter(|(_, ok)| !ok)
        .map(|(m, _)| m.id)
        .collect()
}

async fn process<S: Store>(app: &App<S>, message: &Message) -> bool {
    let event = match crate::payment_events::decode(message.body.as_bytes()) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(message_id = %message.id, error = %e, "poison message: not a payment event");
            return false;
        }
    };
    if event.kind == PaymentEventKind::Refunded {
        return match purchases::apply_refund(app.store.as_ref(), app.clock.as_ref(), &event).await {
            Ok(outcome) => {
                tracing::info!(event = %event.id, invoice = %event.invoice_id, outcome = ?outcome, "refund applied");
                true
            }
            Err(e) => {
                let permanent = e.is_permanent();
                tracing::warn!(message_id = %message.id, event = %event.id, error = %e, permanent, "refund not applied");
                false
            }
        };
    }
    let f = Fulfilment {
        store: app.store.as_ref(),
        clock: app.clock.as_ref(),
        invoice_events: &InvoicePaidQueue(app.invoice_events.as_ref()),
    };
    match purchases::apply_payment_event(&f, &event).await {
        Ok(applied) => {
            match &applied {
                Applied::Fulfilled { grant_id, late } => {
                    tracing::info!(event = %event.id, invoice = %event.invoice_id, grant = %grant_id, late, "invoice paid, grant created");
                }
                other => {
                    tracing::info!(event = %event.id, invoice = %event.invoice_id, outcome = ?other, "payment event applied")
                }
            }
            true
        }
        Err(e) if e.is_permanent() => {
            tracing::error!(message_id = %message.id, event = %event.id, error = %e, "payment event cannot apply; it will be dead-lettered");
            false
        }
        Err(e) => {
            tracing::warn!(message_id = %message.id, event = %event.id, error = %e, "payment event failed; SQS will retry");
            false
        }
    }
}

/// The `invoice.paid.v0` event body.
pub fn invoice_paid_event(invoice: &Invoice) -> serde_json::Value {
    json!({
        "id": format!("{}_{}", EventId::PREFIX.trim_end_matches('_'), invoice.id),
        "type": "invoice.paid.v0",
        "account": invoice.tenant.as_str(),
        "createdAt": invoice.paid_at.map(|t| t.to_rfc3339()),
        "data": {
            "invoiceId": invoice.id.as_str(),
            "grantId": invoice.grant_id.as_ref().map(GrantId::as_str),
            "entitlementId": invoice.entitlement_id.as_str(),
            "amount": invoice.price.to_wire(),
            "currency": invoice.price.currency().code(),
            "grantAmount": invoice.grant_amount.value().normalize().to_string(),
            "paidAt": invoice.paid_at.map(|t| t.to_rfc3339()),
            "paidLate": invoice.paid_late,
            "sandbox": invoice.is_sandbox(),
        },
    })
}

/// `invoice.paid.v0` as JSON on a queue.
struct InvoicePaidQueue<'a>(&'a dyn MessageQueue);

#[async_trait::async_trait]
impl InvoiceEvents for InvoicePaidQueue<'_> {
    async fn invoice_paid(&self, invoice: &Invoice) -> Result<(), QueueError> {
        self.0.send(invoice_paid_event(invoice).to_string()).await
    }
}
