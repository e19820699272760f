//! Grants on an entitlement: create (idempotent), list, get, void, and the grant's JSON form.
use super::errors::grant_not_found;
use super::{entitlement_in_path, list_json, num, ok, opt_time, time};
use crate::body::{JsonBody, QueryParams};
use crate::{ApiError, ApiRequest, ApiResponse, App, Store};
use grants_domain::auth::Principal;
use grants_domain::grants::{self, NewGrant};
use grants_domain::kernel::{Created, IdempotencyKey};
use grants_domain::model::Grant;
use grants_domain::GrantId;
use http::StatusCode;
use serde_json::{json, Value};

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

fn grant_in_path(req: &ApiRequest) -> Result<GrantId, ApiError> {
    GrantId::parse(req.param("grantId")).map_err(|_| grant_not_found())
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

pub async fn create_grant<S: Store>(app: &App<S>, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
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

pub async fn list_grants<S: Store>(app: &App<S>, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
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

pub async fn get_grant<S: Store>(app: &App<S>, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let (entitlement_id, grant_id) = (entitlement_in_path(req)?, grant_in_path(req)?);
    let grant = grants::get_grant(app.store.as_ref(), &who.tenant, &entitlement_id, &grant_id).await?;
    ok(&grant_json(&grant))
}

pub async fn void_grant<S: Store>(app: &App<S>, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
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
