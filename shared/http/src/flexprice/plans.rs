//! Credit grant plans (`/v1/creditgrants`): create, get, update, delete, list, and the plan's JSON
//! form. Every key is always present (`null` where there is no value).
use super::requests::parse_create;
use crate::body::{JsonBody, QueryParams};
use crate::error::FieldError;
use crate::paygentic::num;
use crate::{ApiError, ApiRequest, ApiResponse, App, Store};
use grants_domain::auth::Principal;
use grants_domain::entitlements::Label;
use grants_domain::plans::{
    self, CreditPlan, Expiration, ExpirationType, PlanFilter, PlanScope, PlanStatus, PlanUpdate, Recurrence,
};
use grants_domain::Timestamp;
use http::StatusCode;
use serde_json::{json, Value};

/// `credits` as Flexprice's current API and SDK (2.x) have it: a decimal string. The list, which
/// only the 1.x SDK offers, shows it as a JSON number, as Flexprice's document and that SDK do.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Credits {
    Text,
    Number,
}

pub fn plan_json(p: &CreditPlan, credits: Credits) -> Value {
    let time = |t: Timestamp| Value::String(t.to_rfc3339());
    let (period, period_count) = match p.recurrence {
        Recurrence::Once => (Value::Null, Value::Null),
        Recurrence::Every(period, count) => (json!(period.as_str()), json!(count)),
    };
    let (expiration_type, duration, unit) = match p.expiration {
        Expiration::Never => (ExpirationType::Never, Value::Null, Value::Null),
        Expiration::BillingCycle => (ExpirationType::BillingCycle, Value::Null, Value::Null),
        Expiration::After(n, u) => (ExpirationType::Duration, json!(n), json!(u.as_str())),
    };
    let scoped = |s: PlanScope| if p.scope == s { json!(p.scope_id) } else { Value::Null };
    json!({
        "id": p.id,
        "name": p.name,
        "scope": p.scope.as_str(),
        "plan_id": scoped(PlanScope::Plan),
        "subscription_id": scoped(PlanScope::Subscription),
        "addon_id": null,
        "credits": match credits {
            Credits::Text => json!(p.credits.value().normalize().to_string()),
            Credits::Number => num(p.credits.value()),
        },
        "currency": p.currency,
        "cadence": p.cadence().as_str(),
        "period": period,
        "period_count": period_count,
        "expiration_type": expiration_type.as_str(),
        "expiration_duration": duration,
        "expiration_duration_unit": unit,
        "priority": p.priority,
        "metadata": p.metadata,
        "status": p.status.as_str(),
        "tenant_id": p.tenant.as_str(),
        "environment_id": null,
        "start_date": time(p.start_date),
        "end_date": p.end_date.map(time),
        "credit_grant_anchor": time(p.start_date),
        "conversion_rate": p.conversion_rate,
        "topup_conversion_rate": null,
        "created_at": time(p.created_at),
        "updated_at": time(p.updated_at),
        "created_by": null,
        "updated_by": null,
    })
}

pub async fn create<S: Store>(app: &App<S>, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let request = parse_create(req)?;
    let created = plans::create(app.store.as_ref(), app.clock.as_ref(), &who.tenant, request).await?;
    Ok(ApiResponse::json(
        StatusCode::CREATED,
        &plan_json(&created.into_inner(), Credits::Text),
    ))
}

fn id_in_path(req: &ApiRequest) -> &str {
    req.param("id")
}

pub async fn get<S: Store>(app: &App<S>, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let plan = plans::get(app.store.as_ref(), &who.tenant, id_in_path(req)).await?;
    Ok(ApiResponse::json(StatusCode::OK, &plan_json(&plan, Credits::Text)))
}

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
    Ok(ApiResponse::json(StatusCode::OK, &plan_json(&plan, Credits::Text)))
}

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
    Ok(ApiResponse::json(StatusCode::OK, &json!({ "message": message })))
}

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
    let items: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(limit)
        .map(|p| plan_json(p, Credits::Number))
        .collect();
    Ok(ApiResponse::json(
        StatusCode::OK,
        &json!({ "items": items, "pagination": { "limit": limit, "offset": offset, "total": total } }),
    ))
}
