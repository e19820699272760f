//! Capacity grants (`/v2/grants`): list, create, delete, resell, and the grant's JSON form.
use super::errors::grant_not_found;
use crate::body::{JsonBody, QueryParams};
use crate::{ApiError, ApiRequest, ApiResponse, App, Store};
use grants_domain::auth::Principal;
use grants_domain::capacity::{self, CapacityFilter, CapacityGrant, ExactPrice, NewCapacityGrant, MAX_QUANTITY};
use grants_domain::entitlements::Label;
use grants_domain::{CapacityGrantId, Timestamp};
use http::StatusCode;
use serde_json::{json, Value};

pub fn grant_json(g: &CapacityGrant) -> Value {
    let time = |t: Timestamp| Value::String(t.to_rfc3339());
    json!({
        "object": "grant",
        "fid": g.fid.as_str(),
        "kind": g.kind,
        "cluster": g.cluster,
        "quantity": g.quantity,
        "starts_at": time(g.starts_at),
        "ends_at": time(g.ends_at),
        "unit_price": g.unit_price.as_str(),
        "early_termination_buyback_price": g.early_termination_buyback_price.as_str(),
        "flexible_usage_buyback_price": g.flexible_usage_buyback_price.as_str(),
        "created_at": time(g.created_at),
        "deleted_at": g.deleted_at.map(time),
        "resold_from": g.resold_from.as_ref().map(CapacityGrantId::as_str),
        "resold_to": g.resold_to.as_ref().map(CapacityGrantId::as_str),
    })
}

/// A fid that cannot be ours is simply not found.
fn fid_in_path(req: &ApiRequest) -> Result<CapacityGrantId, ApiError> {
    CapacityGrantId::parse(req.param("grant_fid")).map_err(|_| grant_not_found())
}

pub async fn list<S: Store>(app: &App<S>, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let mut q = QueryParams::new(req);
    let filter = CapacityFilter {
        cluster: q.string("cluster").map(str::to_owned),
        kinds: q.list("kinds"),
        show_expired: q.bool("show_expired", false),
    };
    q.finish()?;
    let grants = capacity::list(app.store.as_ref(), app.clock.as_ref(), &who.tenant, &filter).await?;
    Ok(ApiResponse::json(
        StatusCode::OK,
        &json!({ "object": "list", "items": grants.iter().map(grant_json).collect::<Vec<_>>() }),
    ))
}

fn price(body: &mut JsonBody, name: &str) -> Option<ExactPrice> {
    let text = body.decimal_text(name, true)?;
    match ExactPrice::parse(&text) {
        Ok(p) => Some(p),
        Err(e) => {
            body.reject(name, e.code(), format!("{e} (a decimal such as \"12.50\")"));
            None
        }
    }
}

/// The create request: body and Idempotency-Key header, every field checked (all errors at once).
pub fn parse_create(req: &ApiRequest) -> Result<NewCapacityGrant, ApiError> {
    let mut body = JsonBody::parse(req)?;
    let kind = body.parsed("kind", true, Label::parse);
    let cluster = body.parsed("cluster", true, Label::parse);
    let quantity = body.required_integer("quantity", 1, MAX_QUANTITY);
    let starts_at = body.optional_timestamp("starts_at");
    let ends_at = body.required_timestamp("ends_at");
    let unit_price = price(&mut body, "unit_price");
    let early = price(&mut body, "early_termination_buyback_price");
    let flexible = price(&mut body, "flexible_usage_buyback_price");
    body.finish()?;
    let (Some(kind), Some(cluster), Some(quantity), Some(ends_at), Some(unit_price), Some(early), Some(flexible)) =
        (kind, cluster, quantity, ends_at, unit_price, early, flexible)
    else {
        return Err(ApiError::internal());
    };
    let request = NewCapacityGrant {
        kind,
        cluster,
        quantity,
        starts_at,
        ends_at,
        unit_price,
        early_termination_buyback_price: early,
        flexible_usage_buyback_price: flexible,
        idempotency_key: crate::idempotency_header(req)?,
    };
    Ok(request)
}

pub async fn create<S: Store>(app: &App<S>, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let request = parse_create(req)?;
    let created = capacity::create(app.store.as_ref(), app.clock.as_ref(), &who.tenant, request).await?;
    Ok(ApiResponse::json(
        StatusCode::CREATED,
        &grant_json(&created.into_inner()),
    ))
}

pub async fn delete<S: Store>(app: &App<S>, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let fid = fid_in_path(req)?;
    let grant = capacity::delete(app.store.as_ref(), app.clock.as_ref(), &who.tenant, &fid).await?;
    Ok(ApiResponse::json(StatusCode::OK, &grant_json(&grant)))
}

pub async fn resell<S: Store>(app: &App<S>, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let fid = fid_in_path(req)?;
    let mut body = JsonBody::parse(req)?;
    let new_quantity = body.required_integer("new_quantity", 1, MAX_QUANTITY);
    body.finish()?;
    let new_quantity = new_quantity.ok_or_else(ApiError::internal)?;
    let (old, new) = capacity::resell(app.store.as_ref(), app.clock.as_ref(), &who.tenant, &fid, new_quantity).await?;
    let mut v = grant_json(&new);
    v["replaced_grant"] = grant_json(&old);
    Ok(ApiResponse::json(StatusCode::OK, &v))
}
