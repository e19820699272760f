//! Webhook messages (issue 17, item 4): the events the service publishes to merchants, each
//! recorded once, in the same storage transaction as the change it reports (an outbox), so that a
//! crash can never lose one nor publish one for a change that did not happen.
//!
//! | type | when | written with |
//! |---|---|---|
//! | `invoice.paid.v0` | a purchase's invoice is paid and its grant created | the invoice's settlement |
//! | `grant.created.v0` | any grant is created (every surface, schedules and purchases) | the grant |
//! | `grant.voided.v0` | a grant is voided | the void |
//! | `purchase.canceled.v0` | a purchase's invoice is canceled (its payment session expired) | the cancellation |
//! | `grant.reduced.v0` | a refund of a purchase took credits back from its grant | the invoice's refund record |
//!
//! A message's body follows Standard Webhooks' recommended shape: `{"type", "timestamp", "data"}`,
//! with `timestamp` the RFC 3339 instant of the change. `invoice.paid.v0`'s `data` carries what the
//! Paygentic document names (`invoiceId`, `grantId`) and `entitlementId`, the amounts and `paidAt`.
//! The message id (`msg_<kind>_<ULID of what changed>`, e.g. `msg_invoice_paid_01J...`) is the
//! `webhook-id` of every attempt to every endpoint.
pub use crate::ids::MessageId;
use crate::model::Grant;
use crate::purchases::Invoice;
use crate::{TenantId, Timestamp};
use serde_json::{json, Value};

pub const INVOICE_PAID: &str = "invoice.paid.v0";
pub const GRANT_CREATED: &str = "grant.created.v0";
pub const GRANT_VOIDED: &str = "grant.voided.v0";
pub const PURCHASE_CANCELED: &str = "purchase.canceled.v0";
pub const GRANT_REDUCED: &str = "grant.reduced.v0";

/// One event, as recorded in the outbox and sent, byte for byte, to every endpoint that takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookMessage {
    pub id: MessageId,
    pub tenant: TenantId,
    /// One of [`EVENT_TYPES`]' names.
    pub event_type: String,
    /// The JSON body sent (and signed), `{"type","timestamp","data"}`.
    pub payload: String,
    pub created_at: Timestamp,
}

impl WebhookMessage {
    /// `object` is the id of what changed: the message id is `msg_<kind>_<its ULID>`, one per
    /// change (a change happens once, so its message is written once; the outbox write is also
    /// conditional on the id being new).
    fn new(tenant: &TenantId, event_type: &str, object: &str, at: Timestamp, data: Value) -> Self {
        let payload = json!({ "type": event_type, "timestamp": at.to_rfc3339(), "data": data });
        let kind = event_type.trim_end_matches(".v0").replace('.', "_");
        let ulid = object.split_once('_').map_or(object, |(_, rest)| rest);
        Self {
            id: MessageId::parse(&format!("msg_{kind}_{ulid}")).unwrap_or_else(|_| MessageId::generate()),
            tenant: tenant.clone(),
            event_type: event_type.to_owned(),
            payload: payload.to_string(),
            created_at: at,
        }
    }
}

/// `invoice.paid.v0` for an invoice that is now paid.
pub fn invoice_paid(invoice: &Invoice) -> WebhookMessage {
    let at = invoice.paid_at.unwrap_or(invoice.updated_at);
    WebhookMessage::new(
        &invoice.tenant,
        INVOICE_PAID,
        invoice.id.as_str(),
        at,
        invoice_paid_data(invoice),
    )
}

/// The `data` of `invoice.paid.v0` (also the internal invoice-events queue's body's `data`).
pub fn invoice_paid_data(invoice: &Invoice) -> Value {
    json!({
        "invoiceId": invoice.id.as_str(),
        "grantId": invoice.grant_id.as_ref().map(|g| g.as_str()),
        "entitlementId": invoice.entitlement_id.as_str(),
        "customerId": invoice.customer_id,
        "amount": invoice.price.to_wire(),
        "currency": invoice.price.currency().code(),
        "grantAmount": invoice.grant_amount.value().normalize().to_string(),
        "paidAt": invoice.paid_at.map(|t| t.to_rfc3339()),
        "paidLate": invoice.paid_late,
        "sandbox": invoice.is_sandbox(),
    })
}

/// `purchase.canceled.v0` for an invoice that is now canceled.
pub fn purchase_canceled(invoice: &Invoice) -> WebhookMessage {
    let at = invoice.canceled_at.unwrap_or(invoice.updated_at);
    let data = json!({
        "invoiceId": invoice.id.as_str(),
        "entitlementId": invoice.entitlement_id.as_str(),
        "customerId": invoice.customer_id,
        "amount": invoice.price.to_wire(),
        "currency": invoice.price.currency().code(),
        "canceledAt": at.to_rfc3339(),
        "reason": invoice.cancel_reason,
    });
    WebhookMessage::new(&invoice.tenant, PURCHASE_CANCELED, invoice.id.as_str(), at, data)
}

/// `grant.created.v0` for a grant just created.
pub fn grant_created(grant: &Grant) -> WebhookMessage {
    WebhookMessage::new(
        &grant.tenant,
        GRANT_CREATED,
        grant.id.as_str(),
        grant.created_at,
        grant_data(grant),
    )
}

/// `grant.voided.v0` for a grant just voided.
pub fn grant_voided(grant: &Grant) -> WebhookMessage {
    let at = grant.voided_at.unwrap_or(grant.created_at);
    WebhookMessage::new(&grant.tenant, GRANT_VOIDED, grant.id.as_str(), at, grant_data(grant))
}

/// `grant.reduced.v0` for a refund applied to a purchased grant (one message per refund total).
pub fn grant_reduced(r: &crate::purchases::GrantReduction) -> WebhookMessage {
    let object = format!("{}-r{}", r.invoice_id, r.refunded_minor);
    let data = json!({
        "grantId": r.grant_id.as_str(),
        "entitlementId": r.entitlement_id.as_str(),
        "customerId": r.customer_id,
        "invoiceId": r.invoice_id.as_str(),
        "reason": "refund",
        "reducedBy": r.reduced_by.normalize().to_string(),
        "notReclaimed": r.not_reclaimed.normalize().to_string(),
        "remaining": r.remaining.normalize().to_string(),
        "refundedAmount": r.refunded_minor.to_string(),
        "currency": r.currency,
        "reducedAt": r.at.to_rfc3339(),
    });
    WebhookMessage::new(&r.tenant, GRANT_REDUCED, &object, r.at, data)
}

fn grant_data(grant: &Grant) -> Value {
    json!({
        "grantId": grant.id.as_str(),
        "entitlementId": grant.entitlement_id.as_str(),
        "customerId": grant.customer_id,
        "amount": grant.amount.value().normalize().to_string(),
        "remaining": grant.remaining.normalize().to_string(),
        "creditTypeId": grant.credit_type_id,
        "effectiveAt": grant.effective_at.to_rfc3339(),
        "expiresAt": grant.expires_at.map(|t| t.to_rfc3339()),
        "voidedAt": grant.voided_at.map(|t| t.to_rfc3339()),
        "invoiceId": grant.details.invoice_id,
        "createdAt": grant.created_at.to_rfc3339(),
    })
}

/// A published event type: its name, what it reports, and the JSON Schema of its message body.
#[derive(Debug, Clone)]
pub struct EventType {
    pub name: &'static str,
    pub description: &'static str,
    pub schema: Value,
}

/// Every event type the service publishes, with the JSON Schema of its body (published in
/// `openapi.yaml` under `webhooks` and by the portal page).
pub fn event_types() -> Vec<EventType> {
    let string = json!({"type": "string"});
    let nullable = json!({"type": ["string", "null"]});
    let instant = json!({"type": "string", "format": "date-time"});
    let nullable_instant = json!({"type": ["string", "null"], "format": "date-time"});
    let decimal = json!({"type": "string", "description": "a decimal number, as a string"});
    let body = |name: &str, data: Value, required: &[&str]| {
        json!({
            "type": "object",
            "required": ["type", "timestamp", "data"],
            "properties": {
                "type": {"type": "string", "enum": [name]},
                "timestamp": {"type": "string", "format": "date-time"},
                "data": {"type": "object", "required": required, "properties": data},
            },
        })
    };
    let grant = json!({
        "grantId": string, "entitlementId": string, "customerId": string, "amount": decimal,
        "remaining": decimal, "creditTypeId": nullable, "effectiveAt": instant,
        "expiresAt": nullable_instant, "voidedAt": nullable_instant, "invoiceId": nullable,
        "createdAt": instant,
    });
    let grant_required = [
        "grantId",
        "entitlementId",
        "customerId",
        "amount",
        "remaining",
        "creditTypeId",
        "effectiveAt",
        "expiresAt",
        "voidedAt",
        "invoiceId",
        "createdAt",
    ];
    vec![
        EventType {
            name: INVOICE_PAID,
            description: "A purchase's invoice was paid and its grant created.",
            schema: body(
                INVOICE_PAID,
                json!({
                    "invoiceId": string, "grantId": string, "entitlementId": string,
                    "customerId": string, "amount": decimal, "currency": string,
                    "grantAmount": decimal, "paidAt": instant, "paidLate": {"type": "boolean"},
                    "sandbox": {"type": "boolean"},
                }),
                &[
                    "invoiceId",
                    "grantId",
                    "entitlementId",
                    "customerId",
                    "amount",
                    "currency",
                    "grantAmount",
                    "paidAt",
                    "paidLate",
                    "sandbox",
                ],
            ),
        },
        EventType {
            name: GRANT_CREATED,
            description: "A grant was created (through any API, a recurring schedule or a purchase).",
            schema: body(GRANT_CREATED, grant.clone(), &grant_required),
        },
        EventType {
            name: GRANT_VOIDED,
            description: "A grant was voided; what remained of it can no longer be used.",
            schema: body(GRANT_VOIDED, grant, &grant_required),
        },
        EventType {
            name: GRANT_REDUCED,
            description: "A refund of a purchase took back credits from its grant (only what was still unspent).",
            schema: body(
                GRANT_REDUCED,
                json!({
                    "grantId": string, "entitlementId": string, "customerId": string,
                    "invoiceId": string, "reason": {"type": "string", "enum": ["refund"]},
                    "reducedBy": decimal, "notReclaimed": decimal, "remaining": decimal,
                    "refundedAmount": {"type": "string", "description": "total refunded so far, in the currency's minor unit"},
                    "currency": string, "reducedAt": instant,
                }),
                &[
                    "grantId",
                    "entitlementId",
                    "customerId",
                    "invoiceId",
                    "reason",
                    "reducedBy",
                    "notReclaimed",
                    "remaining",
                    "refundedAmount",
                    "currency",
                    "reducedAt",
                ],
            ),
        },
        EventType {
            name: PURCHASE_CANCELED,
            description: "A purchase's invoice was canceled unpaid (its payment session expired).",
            schema: body(
                PURCHASE_CANCELED,
                json!({
                    "invoiceId": string, "entitlementId": string, "customerId": string,
                    "amount": decimal, "currency": string, "canceledAt": instant, "reason": nullable,
                }),
                &[
                    "invoiceId",
                    "entitlementId",
                    "customerId",
                    "amount",
                    "currency",
                    "canceledAt",
                    "reason",
                ],
            ),
        },
    ]
}
