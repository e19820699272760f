//! The Flexprice credit-grants surface (`/v1/creditgrants`): JSON in, domain call, JSON out.
//! Every key is always present (`null` where there is no value); errors use the merged shape.
use crate::body::{JsonBody, QueryParams};
use crate::error::FieldError;
use crate::{ApiError, ApiRequest, ApiResponse, App};
use grants_domain::auth::Principal;
use grants_domain::entitlements::Label;
use grants_domain::plans::{
    self, Cadence, CreditPlan, DurationUnit, Expiration, ExpirationType, NewCreditPlan, Period, PlanFilter, PlanScope,
    PlanStatus, PlanUpdate, Recurrence,
};
use grants_domain::{CreditAmount, Timestamp};
use http::StatusCode;
use serde_json::{json, Value};

use crate::paygentic::num;

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

/// Reads an enum field, naming the allowed values when it is not one of them.
fn enum_field<T>(
    body: &mut JsonBody,
    name: &str,
    required: bool,
    all: &[&str],
    parse: fn(&str) -> Option<T>,
) -> Option<T> {
    body.parsed(name, required, |s| {
        parse(s).ok_or_else(|| format!("must be one of {}", all.join(", ")))
    })
}

fn small_int(body: &mut JsonBody, name: &str, max: u64) -> Option<u32> {
    body.optional_integer(name, 1, max).and_then(|v| u32::try_from(v).ok())
}

/// The create request: body and Idempotency-Key header, every field checked (all errors at once).
pub fn parse_create(req: &ApiRequest) -> Result<NewCreditPlan, ApiError> {
    let mut body = JsonBody::parse(req)?;
    let name = body.parsed("name", true, Label::parse);
    let scope_text = body.required_string("scope");
    let credits = body.decimal_text("credits", true);
    let credits = credits.and_then(|c| {
        CreditAmount::parse(&c)
            .map_err(|e| body.reject("credits", e.code(), e.to_string()))
            .ok()
    });
    let cadence = enum_field(&mut body, "cadence", true, Cadence::ALL, Cadence::parse);
    let period = enum_field(&mut body, "period", false, Period::ALL, Period::parse);
    let period_count = small_int(&mut body, "period_count", 1000);
    let expiration_type = enum_field(
        &mut body,
        "expiration_type",
        false,
        ExpirationType::ALL,
        ExpirationType::parse,
    );
    let duration = small_int(&mut body, "expiration_duration", 100_000);
    let unit = enum_field(
        &mut body,
        "expiration_duration_unit",
        false,
        DurationUnit::ALL,
        DurationUnit::parse,
    );
    let priority = body.optional_integer("priority", 0, 1_000_000);
    let metadata = body.optional_string_map("metadata");
    let start_date = body.optional_timestamp("start_date");
    let end_date = body.optional_timestamp("end_date");
    let currency = body.parsed("currency", false, Label::parse).map(Label::into_string);
    let conversion_rate = body.decimal_text("conversion_rate", false);
    let plan_id = body.parsed("plan_id", false, Label::parse);
    let subscription_id = body.parsed("subscription_id", false, Label::parse);
    let scope = plan_scope(&mut body, scope_text.as_deref());
    let scope_id = scope_id(&mut body, scope, plan_id, subscription_id);
    let recurrence = recurrence(&mut body, cadence, period, period_count);
    let expiration = expiration(&mut body, expiration_type, duration, unit);
    body.finish()?;
    let (Some(name), Some(scope), Some(scope_id), Some(credits), Some(recurrence), Some(expiration)) =
        (name, scope, scope_id, credits, recurrence, expiration)
    else {
        return Err(ApiError::internal());
    };
    let request = NewCreditPlan {
        name,
        scope,
        scope_id,
        credits,
        currency,
        recurrence,
        expiration,
        priority: priority.and_then(|p| i64::try_from(p).ok()),
        metadata,
        start_date,
        end_date,
        conversion_rate,
        idempotency_key: crate::idempotency_header(req)?,
    };
    Ok(request)
}

/// `scope`: PLAN or SUBSCRIPTION (ADDON credit grants are refused: not supported here).
fn plan_scope(body: &mut JsonBody, scope_text: Option<&str>) -> Option<PlanScope> {
    match scope_text {
        None => None,
        Some("ADDON") => {
            body.reject(
                "scope",
                "unsupported",
                "ADDON credit grants are not supported here; use PLAN or SUBSCRIPTION",
            );
            None
        }
        Some(s) => PlanScope::parse(s).or_else(|| {
            body.reject("scope", "invalid", "must be one of PLAN, SUBSCRIPTION");
            None
        }),
    }
}

/// The id the scope refers to: `plan_id` or `subscription_id`, whichever the scope needs.
fn scope_id(
    body: &mut JsonBody,
    scope: Option<PlanScope>,
    plan_id: Option<Label>,
    subscription_id: Option<Label>,
) -> Option<Label> {
    match scope {
        Some(PlanScope::Plan) => plan_id.or_else(|| {
            body.reject("plan_id", "required", "is required when scope is PLAN");
            None
        }),
        Some(PlanScope::Subscription) => subscription_id.or_else(|| {
            body.reject("subscription_id", "required", "is required when scope is SUBSCRIPTION");
            None
        }),
        None => None,
    }
}

/// `cadence` with its `period` and `period_count`.
fn recurrence(
    body: &mut JsonBody,
    cadence: Option<Cadence>,
    period: Option<Period>,
    period_count: Option<u32>,
) -> Option<Recurrence> {
    match (cadence, period) {
        (Some(Cadence::Onetime), _) => Some(Recurrence::Once),
        (Some(Cadence::Recurring), Some(p)) => Some(Recurrence::Every(p, period_count.unwrap_or(1))),
        (Some(Cadence::Recurring), None) => {
            body.reject("period", "required", "is required when cadence is RECURRING");
            None
        }
        (None, _) => None,
    }
}

/// `expiration_type` (default NEVER) with its duration and unit.
fn expiration(
    body: &mut JsonBody,
    expiration_type: Option<ExpirationType>,
    duration: Option<u32>,
    unit: Option<DurationUnit>,
) -> Option<Expiration> {
    match expiration_type.unwrap_or(ExpirationType::Never) {
        ExpirationType::Never => Some(Expiration::Never),
        ExpirationType::BillingCycle => Some(Expiration::BillingCycle),
        ExpirationType::Duration => match (duration, unit) {
            (Some(d), Some(u)) => Some(Expiration::After(d, u)),
            (None, _) => {
                body.reject(
                    "expiration_duration",
                    "required",
                    "is required when expiration_type is DURATION",
                );
                None
            }
            (_, None) => {
                body.reject(
                    "expiration_duration_unit",
                    "required",
                    "is required when expiration_type is DURATION",
                );
                None
            }
        },
    }
}

pub async fn create(app: &App, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
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

pub async fn get(app: &App, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let plan = plans::get(app.store.as_ref(), &who.tenant, id_in_path(req)).await?;
    Ok(ApiResponse::json(StatusCode::OK, &plan_json(&plan, Credits::Text)))
}

pub async fn update(app: &App, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
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

pub async fn delete(app: &App, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
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

pub async fn list(app: &App, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
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
