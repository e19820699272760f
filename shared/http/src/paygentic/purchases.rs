//! Grant purchases (`POST .../grants/purchase`) and their invoices (`GET /v2/invoices/{id}`).
use super::errors::invoice_not_found;
use super::{entitlement_in_path, num, ok, opt_time, time};
use crate::body::JsonBody;
use crate::{ApiError, ApiRequest, ApiResponse, App, Store};
use grants_domain::auth::Principal;
use grants_domain::kernel::{Created, IdempotencyKey};
use grants_domain::purchases::{self, Invoice, InvoiceStatus, NewPurchase, PurchaseContext, RedirectUrl};
use grants_domain::{GrantId, InvoiceId, Timestamp};
use http::StatusCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};

/// The GrantPurchase object (a replay answers with the same invoice and session).
pub fn purchase_json(i: &Invoice) -> Value {
    json!({
        "object": "grant_purchase",
        "invoiceId": i.id.as_str(),
        "entitlementId": i.entitlement_id.as_str(),
        "grantAmount": num(i.grant_amount.value()),
        "price": i.price.to_wire(),
        "currency": i.price.currency().code(),
        "paymentSessions": [{
            "url": i.session.url,
            "expiresAt": time(i.session.expires_at),
            "amount": i.session.amount_minor,
        }],
    })
}

/// The Paygentic Invoice object for a purchase invoice: one line, no tax, no billing period of
/// its own (the period fields are the purchase time). Status ISSUED, PAID or CANCELLED.
pub fn invoice_json(i: &Invoice, now: Timestamp) -> Value {
    let status = i.status_at(now);
    let price = i.price.to_wire();
    let zero = grants_domain::money::Price::new(Decimal::ZERO, i.price.currency())
        .map(|p| p.to_wire())
        .unwrap_or_default();
    let paid = status == InvoiceStatus::Paid;
    let cancel_reason = match (status, &i.cancel_reason) {
        (InvoiceStatus::Canceled, Some(r)) => Some(r.clone()),
        (InvoiceStatus::Canceled, None) => Some("payment_session_expired".to_owned()),
        _ => None,
    };
    json!({
        "id": i.id.as_str(),
        "object": "invoice",
        "autoApprove": true,
        "billingAnchor": time(i.created_at),
        "billingCadence": "P0D",
        "createdAt": time(i.created_at),
        "currency": i.price.currency().code().to_uppercase(),
        "gracePeriodEnd": time(i.created_at),
        "grandTotal": price,
        "itemCount": 1,
        "merchantId": i.tenant.as_str(),
        "paidAmount": if paid { &price } else { &zero },
        "periodEnd": time(i.created_at),
        "periodStart": time(i.created_at),
        "sequenceNumber": 1,
        "status": match status {
            InvoiceStatus::Open => "ISSUED",
            InvoiceStatus::Paid => "PAID",
            InvoiceStatus::Canceled => "CANCELLED",
        },
        "subscriptionId": i.subscription_id.clone().unwrap_or_default(),
        "customerId": i.customer_id,
        "subtotal": price,
        "totalTax": zero,
        "unpaidAmount": if status == InvoiceStatus::Open { &price } else { &zero },
        "updatedAt": time(i.updated_at),
        "paidAt": opt_time(i.paid_at),
        "issuedAt": time(i.created_at),
        "dueAt": time(i.session.expires_at),
        "paymentUrl": if status == InvoiceStatus::Open { Value::String(i.session.url.clone()) } else { Value::Null },
        "failureReason": i.failure_reason,
        "entitlementId": i.entitlement_id.as_str(),
        "grantId": i.grant_id.as_ref().map(GrantId::as_str),
        "metadata": {
            "type": "grant_purchase",
            "entitlementId": i.entitlement_id.as_str(),
            "grantId": i.grant_id.as_ref().map(GrantId::as_str),
            "grantAmount": num(i.grant_amount.value()),
            "paidLate": i.paid_late,
            "cancelReason": cancel_reason,
        },
        // Paid (or to be paid) through the sandbox provider: no money moved.
        "sandbox": i.is_sandbox(),
    })
}

pub async fn purchase_grant<S: Store>(
    app: &App<S>,
    who: &Principal,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let entitlement_id = entitlement_in_path(req)?;
    let mut body = JsonBody::parse(req)?;
    let amount = body.required_amount("amount");
    let price = body.required_string("price");
    let idempotency_key = body.parsed("idempotencyKey", true, IdempotencyKey::parse);
    let effective_at = body.optional_timestamp("effectiveAt");
    let expires_at = body.optional_timestamp("expiresAt");
    let success_url = body.parsed("successUrl", false, RedirectUrl::parse);
    let cancel_url = body.parsed("cancelUrl", false, RedirectUrl::parse);
    let payment_expires_at = body.optional_timestamp("paymentExpiresAt");
    let reset_max_rollover = body.optional_non_negative("resetMaxRollover");
    let reset_min_rollover = body.optional_non_negative("resetMinRollover");
    body.finish()?;
    let (Some(amount), Some(price), Some(idempotency_key)) = (amount, price, idempotency_key) else {
        return Err(ApiError::internal());
    };
    let request = NewPurchase {
        entitlement_id,
        amount,
        price,
        idempotency_key,
        effective_at,
        expires_at,
        success_url,
        cancel_url,
        payment_expires_at,
        reset_max_rollover,
        reset_min_rollover,
    };
    let base_url = app.base_url(req);
    let store = app.store.as_ref();
    let ctx = PurchaseContext {
        tenant_store: store,
        entitlement_store: store,
        purchase_store: store,
        clock: app.clock.as_ref(),
        provider: app.payments.as_ref(),
        tenants: &app.tenants,
        base_url: base_url.as_deref(),
    };
    let created = purchases::purchase(&ctx, who, request).await?;
    if let Created::Replayed(i) = &created {
        tracing::info!(invoice = %i.id, "idempotent replay");
    }
    Ok(ApiResponse::json(
        StatusCode::CREATED,
        &purchase_json(&created.into_inner()),
    ))
}

pub async fn get_invoice<S: Store>(app: &App<S>, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let id = InvoiceId::parse(req.param("invoiceId")).map_err(|_| invoice_not_found())?;
    let invoice = purchases::get_invoice(app.store.as_ref(), &who.tenant, &id).await?;
    ok(&invoice_json(&invoice, app.clock.now()))
}
