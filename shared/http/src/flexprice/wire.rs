//! Flexprice's JSON shapes: the credit grant plan (every key always present, `null` where there is
//! no value), its list and the delete message, and the request bodies as the handlers read them.
use crate::wire::{decimal_input, nullable_decimal, one_of, Label, Number, Pagination};
use grants_domain::plans::{
    Cadence, CreditPlan, DurationUnit, Expiration, ExpirationType, Period, PlanScope, PlanStatus, Recurrence,
};
use grants_domain::Timestamp;
use serde::{Serialize, Serializer};
use std::collections::BTreeMap;
use utoipa::openapi::schema::ObjectBuilder;
use utoipa::ToSchema;

/// `credits` as Flexprice's current API and SDK (2.x) have it: a decimal string. The list, which
/// only the 1.x SDK offers, shows it as a JSON number, as Flexprice's document and that SDK do.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Credits {
    Text,
    Number,
}

/// `credits` in the form the operation answers with ([`Credits`]).
pub struct CreditsValue(rust_decimal::Decimal, Credits);

impl Serialize for CreditsValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.1 {
            Credits::Text => s.collect_str(&self.0.normalize()),
            Credits::Number => Number(self.0).serialize(s),
        }
    }
}

fn scope() -> ObjectBuilder {
    one_of(PlanScope::ALL, false)
}
fn cadence() -> ObjectBuilder {
    one_of(Cadence::ALL, false)
}
fn period() -> ObjectBuilder {
    one_of(Period::ALL, false)
}
fn nullable_period() -> ObjectBuilder {
    one_of(Period::ALL, true)
}
fn expiration_type() -> ObjectBuilder {
    one_of(ExpirationType::ALL, false)
}
fn unit() -> ObjectBuilder {
    one_of(DurationUnit::ALL, false)
}
fn nullable_unit() -> ObjectBuilder {
    one_of(DurationUnit::ALL, true)
}
fn status() -> ObjectBuilder {
    one_of(PlanStatus::ALL, false)
}

/// A credit grant plan in Flexprice's shape.
#[derive(Serialize, ToSchema)]
#[schema(as = CreditPlan)]
pub struct PlanBody {
    pub id: String,
    pub name: String,
    #[schema(schema_with = scope)]
    pub scope: &'static str,
    #[schema(required)]
    pub plan_id: Option<String>,
    #[schema(required)]
    pub subscription_id: Option<String>,
    /// Always null: add-on plans are not supported.
    #[schema(required)]
    pub addon_id: Option<String>,
    /// A decimal string; a JSON number in the list.
    #[schema(schema_with = decimal_input)]
    pub credits: CreditsValue,
    #[schema(required)]
    pub currency: Option<String>,
    #[schema(schema_with = cadence)]
    pub cadence: &'static str,
    #[schema(schema_with = nullable_period, required)]
    pub period: Option<&'static str>,
    #[schema(required)]
    pub period_count: Option<u32>,
    #[schema(schema_with = expiration_type)]
    pub expiration_type: &'static str,
    #[schema(required)]
    pub expiration_duration: Option<u32>,
    #[schema(schema_with = nullable_unit, required)]
    pub expiration_duration_unit: Option<&'static str>,
    #[schema(required)]
    pub priority: Option<i64>,
    pub metadata: BTreeMap<String, String>,
    #[schema(schema_with = status)]
    pub status: &'static str,
    pub tenant_id: String,
    /// Always null.
    #[schema(required)]
    pub environment_id: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub start_date: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime, required)]
    pub end_date: Option<Timestamp>,
    /// The start date (credits are applied from it).
    #[schema(value_type = String, format = DateTime)]
    pub credit_grant_anchor: Timestamp,
    #[schema(schema_with = nullable_decimal, required)]
    pub conversion_rate: Option<String>,
    /// Always null.
    #[schema(schema_with = nullable_decimal, required)]
    pub topup_conversion_rate: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    /// Always null.
    #[schema(required)]
    pub created_by: Option<String>,
    /// Always null.
    #[schema(required)]
    pub updated_by: Option<String>,
}

impl PlanBody {
    pub fn new(p: &CreditPlan, credits: Credits) -> Self {
        let (period, period_count) = match p.recurrence {
            Recurrence::Once => (None, None),
            Recurrence::Every(period, count) => (Some(period.as_str()), Some(count)),
        };
        let (expiration_type, duration, unit) = match p.expiration {
            Expiration::Never => (ExpirationType::Never, None, None),
            Expiration::BillingCycle => (ExpirationType::BillingCycle, None, None),
            Expiration::After(n, u) => (ExpirationType::Duration, Some(n), Some(u.as_str())),
        };
        let scoped = |s: PlanScope| (p.scope == s).then(|| p.scope_id.clone());
        Self {
            id: p.id.clone(),
            name: p.name.clone(),
            scope: p.scope.as_str(),
            plan_id: scoped(PlanScope::Plan),
            subscription_id: scoped(PlanScope::Subscription),
            addon_id: None,
            credits: CreditsValue(p.credits.value(), credits),
            currency: p.currency.clone(),
            cadence: p.cadence().as_str(),
            period,
            period_count,
            expiration_type: expiration_type.as_str(),
            expiration_duration: duration,
            expiration_duration_unit: unit,
            priority: p.priority,
            metadata: p.metadata.clone(),
            status: p.status.as_str(),
            tenant_id: p.tenant.as_str().to_owned(),
            environment_id: None,
            start_date: p.start_date,
            end_date: p.end_date,
            credit_grant_anchor: p.start_date,
            conversion_rate: p.conversion_rate.clone(),
            topup_conversion_rate: None,
            created_at: p.created_at,
            updated_at: p.updated_at,
            created_by: None,
            updated_by: None,
        }
    }
}

/// A page of plans: `{items, pagination}`.
#[derive(Serialize, ToSchema)]
#[schema(as = CreditPlanList)]
pub struct PlanList {
    pub items: Vec<PlanBody>,
    pub pagination: Pagination,
}

/// What a delete answers: `credit grant <id> archived`, or `... ends at <instant>`.
#[derive(Serialize, ToSchema)]
#[schema(as = CreditPlanDeleted)]
pub struct Message {
    pub message: String,
}

/// The body of `POST /v1/creditgrants` (the `Idempotency-Key` header is optional).
#[derive(ToSchema)]
#[schema(as = CreditPlanRequest)]
pub struct CreatePlanRequest {
    pub name: Label,
    #[schema(schema_with = scope)]
    pub scope: String,
    /// With scope PLAN.
    #[schema(required = false)]
    pub plan_id: Label,
    /// With scope SUBSCRIPTION.
    #[schema(required = false)]
    pub subscription_id: Label,
    #[schema(schema_with = decimal_input)]
    pub credits: String,
    #[schema(required = false)]
    pub currency: Label,
    #[schema(schema_with = cadence)]
    pub cadence: String,
    /// With cadence RECURRING.
    #[schema(schema_with = period, required = false)]
    pub period: String,
    #[schema(required = false, minimum = 1, maximum = 1000)]
    pub period_count: u32,
    #[schema(schema_with = expiration_type, required = false)]
    pub expiration_type: String,
    /// With expiration type DURATION.
    #[schema(required = false, minimum = 1, maximum = 100000)]
    pub expiration_duration: u32,
    #[schema(schema_with = unit, required = false)]
    pub expiration_duration_unit: String,
    #[schema(required = false, minimum = 0, maximum = 1000000)]
    pub priority: u32,
    #[schema(required = false)]
    pub metadata: BTreeMap<String, String>,
    #[schema(format = DateTime, required = false)]
    pub start_date: String,
    #[schema(format = DateTime, required = false)]
    pub end_date: String,
    #[schema(schema_with = decimal_input, required = false)]
    pub conversion_rate: String,
}

/// The body of `PUT /v1/creditgrants/{id}`: what may change.
#[derive(ToSchema)]
#[schema(as = CreditPlanUpdate)]
pub struct UpdatePlanRequest {
    #[schema(required = false)]
    pub name: Label,
    #[schema(required = false)]
    pub metadata: BTreeMap<String, String>,
    #[schema(format = DateTime, required = false)]
    pub end_date: String,
}

/// The body of `DELETE /v1/creditgrants/{id}` (optional): end the plan at this instant rather
/// than archive it now.
#[derive(ToSchema)]
#[schema(as = CreditPlanDeleteRequest)]
pub struct DeletePlanRequest {
    #[schema(format = DateTime, required = false)]
    pub effective_date: String,
}
