//! The Paygentic entitlement-grants surface: JSON in, domain call, JSON out. No business rules here.
//!
//! This file holds entitlements and grants; `purchases.rs` grant purchases and their invoices,
//! `usage.rs` usage and balances.
use crate::body::{JsonBody, QueryParams};
use crate::{ApiError, ApiRequest, ApiResponse, App};
use grants_domain::auth::Principal;
use grants_domain::entitlements::{self, EntitlementView, Label, NewEntitlement};
use grants_domain::grants::{self, NewGrant};
use grants_domain::kernel::{Created, IdempotencyKey, Page};
use grants_domain::model::Grant;
use grants_domain::{EntitlementId, GrantId, Timestamp};
use http::StatusCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::str::FromStr;

mod purchases;
mod usage;

pub use purchases::{get_invoice, invoice_json, purchase_grant, purchase_json};
pub use usage::{balance_json, commit_usage, get_balance, record_usage, release_usage, usage_json};

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
