//! The Paygentic entitlement-grants surface: JSON in, domain call, JSON out. No business rules here.
use crate::body::{JsonBody, QueryParams};
use crate::{ApiError, ApiRequest, ApiResponse, App};
use grants_domain::auth::Principal;
use grants_domain::entitlements::{self, EntitlementView, Label, NewEntitlement};
use grants_domain::grants::{self, Created, IdempotencyKey, NewGrant, Page};
use grants_domain::ledger::Balance;
use grants_domain::model::{Entitlement, Grant};
use grants_domain::purchases::{self, Invoice, InvoiceStatus, NewPurchase, PurchaseContext, RedirectUrl};
use grants_domain::usage::{self, NewUsage, Settle, UsageEventId, UsageRecord};
use grants_domain::{EntitlementId, GrantId, InvoiceId, Timestamp};
use http::StatusCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::str::FromStr;

/// A decimal as an exact JSON number (serde_json's arbitrary precision keeps every digit).
pub fn num(d: Decimal) -> Value {
    serde_json::Number::from_str(&d.normalize().to_string())
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

fn time(t: Timestamp) -> Value {
    Value::String(t.to_rfc3339())
}

fn opt_time(t: Option<Timestamp>) -> Value {
    t.map(time).unwrap_or(Value::Null)
}

pub fn grant_json(g: &Grant) -> Value {
    let mut v = json!({
        "object": "grant",
        "id": g.id.as_str(),
        "entitlementId": g.entitlement_id.as_str(),
        "amount": num(g.amount.value()),
        "effectiveAt": time(g.effective_at),
        "expiresAt": opt_time(g.expires_at),
        "voidedAt": opt_time(g.voided_at),
        "createdAt": time(g.created_at),
        "recurrencePeriod": g.recurrence_period,
        "idempotencyKey": g.idempotency_key,
    });
    // Paygentic types priority as an integer; a fractional one (from Metronome) is left out.
    if let Some(p) = g.priority.and_then(|p| p.as_integer()) {
        v["priority"] = json!(p);
    }
    if let Some(r) = g.reset_max_rollover {
        v["resetMaxRollover"] = num(r.value());
    }
    if let Some(r) = g.reset_min_rollover {
        v["resetMinRollover"] = num(r.value());
    }
    v
}

/// The entitlement object; list items carry the id as `entitlementId`, detail as `id`.
pub fn entitlement_json(view: &EntitlementView, list_item: bool) -> Value {
    let e = &view.entitlement;
    let mut v = json!({
        "customerId": e.customer_id,
        "featureId": e.feature_id,
        "featureKey": e.feature_key,
        "featureType": "metered",
        "productId": e.product_id,
        "subscriptionId": e.subscription_id,
        "status": e.status.as_str(),
        "activeFrom": time(e.active_from),
        "activeTo": opt_time(e.active_to),
        "hasAccess": view.has_access,
        "metadata": e.metadata,
        "config": Value::Null,
        "isSoftLimit": e.is_soft_limit,
        "balance": num(view.balance),
        "usageInPeriod": num(e.usage_in_period),
        "overage": num(e.overage),
        "pricingUnitId": e.pricing_unit_id,
        "currentPeriodStart": time(e.current_period_start),
        "currentPeriodEnd": time(e.current_period_end),
    });
    if list_item {
        v["entitlementId"] = json!(e.id.as_str());
    } else {
        v["object"] = json!("entitlement");
        v["id"] = json!(e.id.as_str());
    }
    v
}

fn list_json<T>(page: &Page<T>, item: impl Fn(&T) -> Value) -> Value {
    json!({
        "object": "list",
        "data": page.items.iter().map(item).collect::<Vec<_>>(),
        "pagination": { "total": page.total, "limit": page.limit, "offset": page.offset },
    })
}

fn ok(value: &Value) -> Result<ApiResponse, ApiError> {
    Ok(ApiResponse::json(StatusCode::OK, value))
}

/// An id in the path that cannot be ours is simply not found (no format is leaked).
fn entitlement_in_path(req: &ApiRequest) -> Result<EntitlementId, ApiError> {
    EntitlementId::parse(req.param("id"))
        .map_err(|_| ApiError::not_found("entitlement_not_found", "Entitlement not found"))
}

fn grant_in_path(req: &ApiRequest) -> Result<GrantId, ApiError> {
    GrantId::parse(req.param("grantId")).map_err(|_| ApiError::not_found("grant_not_found", "Grant not found"))
}

/// An optional RFC 3339 instant in the query string.
fn query_time(req: &ApiRequest, name: &str) -> Result<Option<Timestamp>, ApiError> {
    match req.query_value(name).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(raw) => Timestamp::parse(raw)
            .map(Some)
            .map_err(|e| ApiError::field(name, "invalid", e.to_string())),
    }
}

/// The create-grant request: path and body, every field checked (all errors at once).
pub fn parse_create_grant(req: &ApiRequest) -> Result<NewGrant, ApiError> {
    let entitlement_id = entitlement_in_path(req)?;
    let mut body = JsonBody::parse(req)?;
    let amount = body.required_amount("amount");
    let idempotency_key = body.parsed("idempotencyKey", true, IdempotencyKey::parse);
    let effective_at = body.optional_timestamp("effectiveAt");
    let expires_at = body.optional_timestamp("expiresAt");
    let priority = body.optional_integer_priority("priority");
    let reset_max_rollover = body.optional_non_negative("resetMaxRollover");
    let reset_min_rollover = body.optional_non_negative("resetMinRollover");
    body.finish()?;
    let (Some(amount), Some(idempotency_key)) = (amount, idempotency_key) else {
        return Err(ApiError::internal());
    };
    let request = NewGrant {
        entitlement_id,
        amount,
        idempotency_key,
        effective_at,
        expires_at,
        priority,
        reset_max_rollover,
        reset_min_rollover,
    };
    Ok(request)
}

pub async fn create_grant(app: &App, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let request = parse_create_grant(req)?;
    let created = grants::create_grant(
        app.store.as_ref(),
        app.clock.as_ref(),
        &app.entitlement_facts,
        &who.tenant,
        request,
    )
    .await?;
    if let Created::Replayed(g) = &created {
        tracing::info!(grant = %g.id, "idempotent replay");
    }
    // 201 for a replay too: the SDK accepts only 201 here.
    Ok(ApiResponse::json(
        StatusCode::CREATED,
        &grant_json(&created.into_inner()),
    ))
}

pub async fn list_grants(app: &App, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let entitlement_id = entitlement_in_path(req)?;
    let mut q = QueryParams::new(req);
    let limit = q.int("limit", 1, 100, 20);
    let offset = q.int("offset", 0, 1_000_000, 0);
    let include_voided = q.bool("includeVoided", false);
    q.finish()?;
    let page = grants::list_grants(
        app.store.as_ref(),
        &who.tenant,
        &entitlement_id,
        include_voided,
        limit,
        offset,
    )
    .await?;
    ok(&list_json(&page, grant_json))
}

pub async fn get_grant(app: &App, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let (entitlement_id, grant_id) = (entitlement_in_path(req)?, grant_in_path(req)?);
    let grant = grants::get_grant(app.store.as_ref(), &who.tenant, &entitlement_id, &grant_id).await?;
    ok(&grant_json(&grant))
}

pub async fn void_grant(app: &App, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let (entitlement_id, grant_id) = (entitlement_in_path(req)?, grant_in_path(req)?);
    let grant = grants::void_grant(
        app.store.as_ref(),
        app.clock.as_ref(),
        &who.tenant,
        &entitlement_id,
        &grant_id,
    )
    .await?;
    ok(&grant_json(&grant))
}

pub async fn list_entitlements(app: &App, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let mut q = QueryParams::new(req);
    let limit = q.int("limit", 1, 100, 10);
    let offset = q.int("offset", 0, 1_000_000, 0);
    let customer = q.string("customerId");
    q.finish()?;
    let page = entitlements::list_entitlements(
        app.store.as_ref(),
        app.clock.as_ref(),
        &who.tenant,
        customer,
        limit,
        offset,
    )
    .await?;
    ok(&list_json(&page, |v| entitlement_json(v, true)))
}

pub async fn get_entitlement(app: &App, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let id = entitlement_in_path(req)?;
    // `at` (the SDK sends it): the balance and access as of that instant, from the ledger.
    let view = match query_time(req, "at")? {
        Some(at) => entitlements::get_entitlement_at(app.store.as_ref(), &who.tenant, &id, at).await?,
        None => entitlements::get_entitlement(app.store.as_ref(), app.clock.as_ref(), &who.tenant, &id).await?,
    };
    ok(&entitlement_json(&view, false))
}

pub async fn cancel_entitlement(app: &App, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let id = entitlement_in_path(req)?;
    let view = entitlements::cancel_entitlement(app.store.as_ref(), app.clock.as_ref(), &who.tenant, &id).await?;
    ok(&entitlement_json(&view, false))
}

/// Reads a provisioning request (shared by the API and `grants-admin`).
pub fn parse_new_entitlement(body: &mut JsonBody) -> Option<NewEntitlement> {
    let customer_id = body.parsed("customerId", true, Label::parse);
    let feature_key = body.parsed("featureKey", true, Label::parse);
    let feature_id = body.parsed("featureId", false, Label::parse);
    let product_id = body.parsed("productId", false, Label::parse);
    let subscription_id = body.parsed("subscriptionId", false, Label::parse);
    let plan_id = body.parsed("planId", false, Label::parse);
    let current_period_start = body.optional_timestamp("currentPeriodStart");
    let current_period_end = body.optional_timestamp("currentPeriodEnd");
    let metadata = body.optional_string_map("metadata");
    let is_soft_limit = body.optional_bool("isSoftLimit").unwrap_or(false);
    let pricing_unit_id = body.parsed("pricingUnitId", false, Label::parse);
    Some(NewEntitlement {
        pricing_unit_id,
        customer_id: customer_id?,
        feature_key: feature_key?,
        feature_id,
        product_id,
        subscription_id,
        plan_id,
        current_period_start,
        current_period_end,
        metadata,
        is_soft_limit,
    })
}

pub async fn create_entitlement(app: &App, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let mut body = JsonBody::parse(req)?;
    let parsed = parse_new_entitlement(&mut body);
    body.finish()?;
    let request = parsed.ok_or_else(ApiError::internal)?;
    let e = entitlements::create_entitlement(app.store.as_ref(), app.clock.as_ref(), &who.tenant, request).await?;
    let view = EntitlementView::new(e, &[], app.clock.now());
    Ok(ApiResponse::json(StatusCode::CREATED, &entitlement_json(&view, false)))
}

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

pub async fn purchase_grant(app: &App, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
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
    let ctx = PurchaseContext {
        store: app.store.as_ref(),
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

pub async fn get_invoice(app: &App, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let id = InvoiceId::parse(req.param("invoiceId"))
        .map_err(|_| ApiError::not_found("invoice_not_found", "Invoice not found"))?;
    let invoice = purchases::get_invoice(app.store.as_ref(), &who.tenant, &id).await?;
    ok(&invoice_json(&invoice, app.clock.now()))
}

/// A usage event as recorded.
pub fn usage_json(u: &UsageRecord) -> Value {
    json!({
        "object": "usage",
        "eventId": u.event_id,
        "entitlementId": u.entitlement_id.as_str(),
        "amount": num(u.amount),
        "occurredAt": time(u.occurred_at),
        "recordedAt": time(u.recorded_at),
        "status": u.status.as_str(),
        "deductions": u.deductions.iter().map(|d| json!({ "grantId": d.grant_id.as_str(), "amount": num(d.amount) })).collect::<Vec<_>>(),
        "overage": num(u.overage),
        "settledAt": opt_time(u.settled_at),
    })
}

pub async fn record_usage(app: &App, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let entitlement_id = entitlement_in_path(req)?;
    let mut body = JsonBody::parse(req)?;
    let event_id = body.parsed("eventId", true, UsageEventId::parse);
    let amount = body.required_amount("amount");
    let occurred_at = body.optional_timestamp("occurredAt");
    let pending = body.optional_bool("pending").unwrap_or(false);
    body.finish()?;
    let (Some(event_id), Some(amount)) = (event_id, amount) else {
        return Err(ApiError::internal());
    };
    let request = NewUsage {
        entitlement_id,
        event_id,
        amount,
        occurred_at,
        pending,
    };
    let created = usage::record_usage(app.store.as_ref(), app.clock.as_ref(), &who.tenant, request).await?;
    let replayed = matches!(created, Created::Replayed(_));
    let mut response = ApiResponse::json(StatusCode::CREATED, &usage_json(&created.into_inner()));
    if replayed {
        response
            .headers
            .push(("idempotent-replayed".to_owned(), "true".to_owned()));
    }
    Ok(response)
}

async fn settle(app: &App, who: &Principal, req: &ApiRequest, how: Settle) -> Result<ApiResponse, ApiError> {
    let entitlement_id = entitlement_in_path(req)?;
    let mut body = JsonBody::parse(req)?;
    let event_id = body.parsed("eventId", true, UsageEventId::parse);
    body.finish()?;
    let event_id = event_id.ok_or_else(ApiError::internal)?;
    let record = usage::settle_usage(
        app.store.as_ref(),
        app.clock.as_ref(),
        &who.tenant,
        &entitlement_id,
        &event_id,
        how,
    )
    .await?;
    ok(&usage_json(&record))
}

pub async fn commit_usage(app: &App, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    settle(app, who, req, Settle::Commit).await
}

pub async fn release_usage(app: &App, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    settle(app, who, req, Settle::Release).await
}

/// The balance object of `GET /v1/entitlements/{id}/balance?at=`.
pub fn balance_json(e: &Entitlement, b: &Balance) -> Value {
    json!({
        "object": "balance",
        "entitlementId": e.id.as_str(),
        "at": time(b.at),
        "balance": num(b.excluding_pending),
        "excludingPending": num(b.excluding_pending),
        "includingPending": num(b.including_pending),
        "overage": num(b.overage),
        "pendingOverage": num(b.pending_overage),
        "grants": b.grants.iter().map(|g| json!({
            "grantId": g.grant_id.as_str(),
            "excludingPending": num(g.excluding_pending),
            "includingPending": num(g.including_pending),
        })).collect::<Vec<_>>(),
    })
}

pub async fn get_balance(app: &App, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let id = entitlement_in_path(req)?;
    let at = query_time(req, "at")?;
    let (entitlement, balance) = usage::balance(app.store.as_ref(), app.clock.as_ref(), &who.tenant, &id, at)
        .await?
        .ok_or_else(|| ApiError::not_found("entitlement_not_found", "Entitlement not found"))?;
    ok(&balance_json(&entitlement, &balance))
}
