//! The create request of a credit grant plan: body and `Idempotency-Key` header, every field
//! checked (all errors at once), with the rules that tie fields together (scope and its id,
//! cadence and its period, expiration type and its duration).
use crate::body::JsonBody;
use crate::{ApiError, ApiRequest};
use grants_domain::entitlements::Label;
use grants_domain::plans::{
    Cadence, DurationUnit, Expiration, ExpirationType, NewCreditPlan, Period, PlanScope, Recurrence,
};
use grants_domain::CreditAmount;

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
