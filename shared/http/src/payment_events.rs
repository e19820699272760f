//! The wire form of payment events (see [`grants_domain::payments`] for the schema): the webhook
//! body and the payment-events queue's message body.
use grants_domain::money::Currency;
use grants_domain::payments::{EventError, PaymentEvent, PaymentEventKind};
use grants_domain::{InvoiceId, SessionId, TenantId, Timestamp};
use serde::{Deserialize, Serialize};

/// The wire form of [`PaymentEvent`]: every field required, no others (the webhook's request
/// body in openapi.yaml is this type's schema).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = PaymentEvent)]
pub(crate) struct WireEvent {
    id: String,
    #[serde(rename = "type")]
    #[schema(schema_with = event_type)]
    kind: String,
    account: String,
    invoice_id: String,
    session_id: String,
    amount: i64,
    currency: String,
    occurred_at: String,
    /// Why the payment failed (`payment.failed` only; optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failure: Option<String>,
}

fn event_type() -> utoipa::openapi::schema::ObjectBuilder {
    crate::wire::one_of(
        &["payment.paid", "payment.expired", "payment.failed", "payment.refunded"],
        false,
    )
}

/// The event as JSON (the webhook body and the SQS message body).
pub fn encode(event: &PaymentEvent) -> String {
    let wire = WireEvent {
        id: event.id.clone(),
        kind: event.kind.as_str().to_owned(),
        account: event.tenant.as_str().to_owned(),
        invoice_id: event.invoice_id.as_str().to_owned(),
        session_id: event.session_id.as_str().to_owned(),
        amount: event.amount_minor,
        currency: event.currency.code().to_owned(),
        occurred_at: event.occurred_at.to_rfc3339(),
        failure: event.failure.clone(),
    };
    serde_json::to_string(&wire).unwrap_or_default()
}

/// Parses and validates an event; the error names the offending field.
pub fn decode(bytes: &[u8]) -> Result<PaymentEvent, EventError> {
    let wire: WireEvent = serde_json::from_slice(bytes)
        .map_err(|e| EventError::new("body", format!("is not a valid payment event ({e})")))?;
    if wire.id.is_empty() || wire.id.len() > 255 {
        return Err(EventError::new("id", "must be 1 to 255 characters"));
    }
    if wire.failure.as_ref().is_some_and(|f| f.is_empty() || f.len() > 64) {
        return Err(EventError::new("failure", "must be 1 to 64 characters"));
    }
    if wire.amount <= 0 {
        return Err(EventError::new("amount", "must be a positive integer in minor units"));
    }
    Ok(PaymentEvent {
        kind: PaymentEventKind::parse(&wire.kind).ok_or_else(|| {
            EventError::new(
                "type",
                "must be payment.paid, payment.expired, payment.failed or payment.refunded",
            )
        })?,
        tenant: TenantId::parse(&wire.account).map_err(|e| EventError::new("account", e.to_string()))?,
        invoice_id: InvoiceId::parse(&wire.invoice_id).map_err(|e| EventError::new("invoiceId", e.to_string()))?,
        session_id: SessionId::parse(&wire.session_id).map_err(|e| EventError::new("sessionId", e.to_string()))?,
        amount_minor: wire.amount,
        currency: Currency::parse(&wire.currency).map_err(|e| EventError::new("currency", e.to_string()))?,
        occurred_at: Timestamp::parse(&wire.occurred_at).map_err(|e| EventError::new("occurredAt", e.to_string()))?,
        failure: wire.failure,
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

#[cfg(test)]
mod tests {
    use super::*;
    use grants_domain::payments::{sign, verify, SignatureError};

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
            failure: None,
        }
    }

    #[test]
    fn events_round_trip_and_signatures_verify() {
        let e = event();
        let body = encode(&e);
        assert_eq!(decode(body.as_bytes()).unwrap(), e);
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

    #[test]
    fn bad_events_name_the_field() {
        let body = encode(&event()).replace("payment.paid", "payment.reversed");
        assert_eq!(decode(body.as_bytes()).unwrap_err().field, "type");
        let body = encode(&event()).replace("\"amount\":500", "\"amount\":-1");
        assert_eq!(decode(body.as_bytes()).unwrap_err().field, "amount");
        assert_eq!(decode(b"{").unwrap_err().field, "body");
    }
}
