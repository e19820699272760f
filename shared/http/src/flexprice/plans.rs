//! Credit grant plans (`/v1/creditgrants`): create, get, update, delete, list. The plan's JSON form
//! is [`super::wire::PlanBody`].
use super::requests::parse_create;
use super::wire::{CreatePlanRequest, Credits, DeletePlanRequest, Message, PlanBody, PlanList, UpdatePlanRequest};
use crate::body::{JsonBody, QueryParams};
use crate::error::FieldError;
use crate::openapi::FlexpriceError;
use crate::wire::Pagination;
use crate::{ApiError, ApiRequest, ApiResponse, App, Store};
use grants_domain::auth::Principal;
use grants_domain::entitlements::Label;
use grants_domain::plans::{self, PlanFilter, PlanScope, PlanStatus, PlanUpdate};
use grants_domain::Timestamp;
use http::StatusCode;
use utoipa::IntoParams;

/// `id` in the path: a plan.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct PlanPath {
    /// A credit grant plan id (cgrant_...).
    pub id: String,
}

/// Flexprice: create a credit grant plan and apply what is due.
///
/// Admin only.
#[utoipa::path(post, path = "/v1/creditgrants", operation_id = "flexpriceCreateCreditGrant", tag = "flexprice",
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255)),
    request_body = CreatePlanRequest,
    responses(
        (status = 201, description = "The plan.", body = PlanBody),
        (status = 400, response = FlexpriceError), (status = 401, response = FlexpriceError),
        (status = 403, response = FlexpriceError), (status = 409, response = FlexpriceError),
        (status = 413, response = FlexpriceError), (status = 415, response = FlexpriceError),
        (status = 422, response = FlexpriceError),
    ))]
pub async fn create<S: Store>(app: &App<S>, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let request = parse_create(req)?;
    let created = plans::create(app.store.as_ref(), app.clock.as_ref(), &who.tenant, request).await?;
    Ok(ApiResponse::json(
        StatusCode::CREATED,
        &PlanBody::new(&created.into_inner(), Credits::Text),
    ))
}

fn id_in_path(req: &ApiRequest) -> &str {
    req.param("id")
}

/// Flexprice: one credit grant plan.
#[utoipa::path(get, path = "/v1/creditgrants/{id}", operation_id = "flexpriceGetCreditGrant", tag = "flexprice",
    params(PlanPath),
    responses(
        (status = 200, description = "The plan.", body = PlanBody),
        (status = 400, response = FlexpriceError), (status = 401, response = FlexpriceError),
        (status = 404, response = FlexpriceError),
    ))]
pub async fn get<S: Store>(app: &App<S>, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let plan = plans::get(app.store.as_ref(), &who.tenant, id_in_path(req)).await?;
    Ok(ApiResponse::json(StatusCode::OK, &PlanBody::new(&plan, Credits::Text)))
}

/// Flexprice: change a plan's name, metadata or end date.
///
/// Admin only.
#[utoipa::path(put, path = "/v1/creditgrants/{id}", operation_id = "flexpriceUpdateCreditGrant", tag = "flexprice",
    params(PlanPath), request_body = UpdatePlanRequest,
    responses(
        (status = 200, description = "The plan.", body = PlanBody),
        (status = 400, response = FlexpriceError), (status = 401, response = FlexpriceError),
        (status = 403, response = FlexpriceError), (status = 404, response = FlexpriceError),
        (status = 409, response = FlexpriceError), (status = 413, response = FlexpriceError),
        (status = 415, response = FlexpriceError), (status = 422, response = FlexpriceError),
    ))]
pub async fn update<S: Store>(app: &App<S>, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let mut body = JsonBody::parse(req)?;
    let name = body.parsed("name", false, Label::parse);
    let metadata = body.has("metadata").then(|| body.optional_string_map("metadata"));
    let end_date = body.optional_timestamp("end_date");
    body.finish()?;
    let change = PlanUpdate {
        name,
        metadata,
        end_date,
    };
    let plan = plans::update(
        app.store.as_ref(),
        app.clock.as_ref(),
        &who.tenant,
        id_in_path(req),
        change,
    )
    .await?;
    Ok(ApiResponse::json(StatusCode::OK, &PlanBody::new(&plan, Credits::Text)))
}

/// Flexprice: archive a plan, or end it at effective_date.
///
/// Admin only.
#[utoipa::path(delete, path = "/v1/creditgrants/{id}", operation_id = "flexpriceDeleteCreditGrant", tag = "flexprice",
    params(PlanPath), request_body = Option<DeletePlanRequest>,
    responses(
        (status = 200, description = "Deleted (or ending at effective_date).", body = Message),
        (status = 400, response = FlexpriceError), (status = 401, response = FlexpriceError),
        (status = 403, response = FlexpriceError), (status = 404, response = FlexpriceError),
        (status = 409, response = FlexpriceError), (status = 413, response = FlexpriceError),
        (status = 415, response = FlexpriceError), (status = 422, response = FlexpriceError),
    ))]
pub async fn delete<S: Store>(app: &App<S>, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    // The body is optional: `{}` or `{"effective_date": ...}`.
    let effective_date = if req.body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let mut body = JsonBody::parse(req)?;
        let e = body.optional_timestamp("effective_date");
        body.finish()?;
        e
    };
    let plan = plans::delete(
        app.store.as_ref(),
        app.clock.as_ref(),
        &who.tenant,
        id_in_path(req),
        effective_date,
    )
    .await?;
    let message = match (plan.status, plan.end_date) {
        (PlanStatus::Published, Some(end)) => format!("credit grant {} ends at {}", plan.id, end.to_rfc3339()),
        _ => format!("credit grant {} archived", plan.id),
    };
    Ok(ApiResponse::json(StatusCode::OK, &Message { message }))
}

/// Flexprice: list credit grant plans.
#[utoipa::path(get, path = "/v1/creditgrants", operation_id = "flexpriceListCreditGrants", tag = "flexprice",
    params(
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 1000),
        ("offset" = Option<usize>, Query, maximum = 10000000),
        ("sort" = Option<String>, Query, description = "created_at (default), updated_at, name, priority or start_date."),
        ("order" = Option<String>, Query, description = "desc (default) or asc."),
        ("status" = Option<String>, Query),
        ("scope" = Option<String>, Query),
        ("plan_ids" = Option<String>, Query, description = "Comma-separated."),
        ("subscription_ids" = Option<String>, Query, description = "Comma-separated."),
        ("start_time" = Option<String>, Query, format = DateTime),
        ("end_time" = Option<String>, Query, format = DateTime)),
    responses(
        (status = 200, description = "A page of plans.", body = PlanList),
        (status = 400, response = FlexpriceError), (status = 401, response = FlexpriceError),
    ))]
pub async fn list<S: Store>(app: &App<S>, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let mut q = QueryParams::new(req);
    let limit = q.int("limit", 1, 1000, 50);
    let offset = q.int("offset", 0, 10_000_000, 0);
    let mut errors = Vec::new();
    let mut pick = |name: &str, all: &[&str]| -> Option<String> {
        let v = q.string(name)?;
        if all.contains(&v) {
            Some(v.to_owned())
        } else {
            errors.push(FieldError::new(
                name,
                "invalid",
                format!("must be one of {}", all.join(", ")),
            ));
            None
        }
    };
    let sort = pick("sort", &["created_at", "updated_at", "name", "priority", "start_date"])
        .unwrap_or_else(|| "created_at".to_owned());
    let descending = pick("order", &["asc", "desc"]).is_none_or(|o| o == "desc");
    let status = pick("status", PlanStatus::ALL).and_then(|s| PlanStatus::parse(&s));
    let scope = pick("scope", PlanScope::ALL).and_then(|s| PlanScope::parse(&s));
    let mut time = |name: &str| -> Option<Timestamp> {
        let raw = q.string(name)?;
        Timestamp::parse(raw)
            .map_err(|e| errors.push(FieldError::new(name, "invalid", e.to_string())))
            .ok()
    };
    let start_time = time("start_time");
    let end_time = time("end_time");
    let filter = PlanFilter {
        status,
        scope,
        plan_ids: q.list("plan_ids"),
        subscription_ids: q.list("subscription_ids"),
        start_time,
        end_time,
    };
    q.finish()?;
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let mut all = plans::list(app.store.as_ref(), &who.tenant, &filter).await?;
    all.sort_by(|a, b| {
        let key = match sort.as_str() {
            "updated_at" => a.updated_at.cmp(&b.updated_at),
            "name" => a.name.cmp(&b.name),
            "priority" => a.priority.cmp(&b.priority),
            "start_date" => a.start_date.cmp(&b.start_date),
            _ => a.created_at.cmp(&b.created_at),
        };
        key.then_with(|| a.id.cmp(&b.id))
    });
    if descending {
        all.reverse();
    }
    let total = all.len();
    let items = all
        .iter()
        .skip(offset)
        .take(limit)
        .map(|p| PlanBody::new(p, Credits::Number))
        .collect();
    let pagination = Pagination { total, limit, offset };
    Ok(ApiResponse::json(StatusCode::OK, &PlanList { items, pagination }))
}
