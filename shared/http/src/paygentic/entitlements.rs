//! Entitlements: provision (admin), list, get (with the balance now or at an instant), cancel, and
//! the entitlement's JSON form.
use super::{entitlement_in_path, list_json, num, ok, opt_time, query_time, time};
use crate::body::{JsonBody, QueryParams};
use crate::{ApiError, ApiRequest, ApiResponse, App, Store};
use grants_domain::auth::Principal;
use grants_domain::entitlements::{self, EntitlementView, Label, NewEntitlement};
use http::StatusCode;
use serde_json::{json, Value};

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

pub async fn list_entitlements<S: Store>(
    app: &App<S>,
    who: &Principal,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
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

pub async fn get_entitlement<S: Store>(
    app: &App<S>,
    who: &Principal,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let id = entitlement_in_path(req)?;
    // `at` (the SDK sends it): the balance and access as of that instant, from the ledger.
    let view = match query_time(req, "at")? {
        Some(at) => entitlements::get_entitlement_at(app.store.as_ref(), &who.tenant, &id, at).await?,
        None => entitlements::get_entitlement(app.store.as_ref(), app.clock.as_ref(), &who.tenant, &id).await?,
    };
    ok(&entitlement_json(&view, false))
}

pub async fn cancel_entitlement<S: Store>(
    app: &App<S>,
    who: &Principal,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
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

pub async fn create_entitlement<S: Store>(
    app: &App<S>,
    who: &Principal,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let mut body = JsonBody::parse(req)?;
    let parsed = parse_new_entitlement(&mut body);
    body.finish()?;
    let request = parsed.ok_or_else(ApiError::internal)?;
    let e = entitlements::create_entitlement(app.store.as_ref(), app.clock.as_ref(), &who.tenant, request).await?;
    let view = EntitlementView::new(e, &[], app.clock.now());
    Ok(ApiResponse::json(StatusCode::CREATED, &entitlement_json(&view, false)))
}
