//! Usage (record, commit, release) and balances at any instant.
use super::errors::entitlement_not_found;
use super::{entitlement_in_path, num, ok, opt_time, query_time, time};
use crate::body::JsonBody;
use crate::{ApiError, ApiRequest, ApiResponse, App, Store};
use grants_domain::auth::Principal;
use grants_domain::kernel::Created;
use grants_domain::ledger::Balance;
use grants_domain::model::Entitlement;
use grants_domain::usage::{self, NewUsage, Settle, UsageEventId, UsageRecord};
use http::StatusCode;
use serde_json::{json, Value};

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

pub async fn record_usage<S: Store>(app: &App<S>, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
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

async fn settle<S: Store>(
    app: &App<S>,
    who: &Principal,
    req: &ApiRequest,
    how: Settle,
) -> Result<ApiResponse, ApiError> {
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

pub async fn commit_usage<S: Store>(app: &App<S>, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    settle(app, who, req, Settle::Commit).await
}

pub async fn release_usage<S: Store>(app: &App<S>, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
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

pub async fn get_balance<S: Store>(app: &App<S>, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let id = entitlement_in_path(req)?;
    let at = query_time(req, "at")?;
    let (entitlement, balance) = usage::balance(app.store.as_ref(), app.clock.as_ref(), &who.tenant, &id, at)
        .await?
        .ok_or_else(entitlement_not_found)?;
    ok(&balance_json(&entitlement, &balance))
}
