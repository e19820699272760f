//! Usage (record, commit, release) and balances at any instant.
use super::errors::entitlement_not_found;
use super::{entitlement_in_path, ok, query_time, EntitlementPath};
use crate::body::JsonBody;
use crate::object_tag;
use crate::openapi::{
    BadRequest, Busy, Conflict, Forbidden, NotFound, TooLarge, Unauthorized, Unprocessable, Unsupported,
};
use crate::wire::{Label, Number, PositiveAmount};
use crate::{ApiError, ApiRequest, ApiResponse, App, Store};
use grants_domain::auth::Principal;
use grants_domain::kernel::Created;
use grants_domain::ledger::Balance;
use grants_domain::ledger::UsageStatus;
use grants_domain::model::Entitlement;
use grants_domain::usage::{self, NewUsage, Settle, UsageEventId, UsageRecord};
use grants_domain::Timestamp;
use http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

object_tag!(UsageTag = "usage");
object_tag!(BalanceTag = "balance");

/// A usage event's state: `committed`, or `pending` until committed or `released`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Committed,
    Pending,
    Released,
}

impl From<UsageStatus> for Status {
    fn from(s: UsageStatus) -> Self {
        match s {
            UsageStatus::Committed => Self::Committed,
            UsageStatus::Pending => Self::Pending,
            UsageStatus::Released => Self::Released,
        }
    }
}

/// A usage event as recorded: what each grant gave (burn-down order) and what none could (`overage`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Usage)]
pub struct UsageBody {
    #[schema(inline)]
    pub object: UsageTag,
    pub event_id: String,
    pub entitlement_id: String,
    #[schema(inline)]
    pub amount: Number,
    #[schema(value_type = String, format = DateTime)]
    pub occurred_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub recorded_at: Timestamp,
    #[schema(inline)]
    pub status: Status,
    #[schema(inline)]
    pub deductions: Vec<DeductionBody>,
    #[schema(inline)]
    pub overage: Number,
    #[schema(value_type = Option<String>, format = DateTime, required)]
    pub settled_at: Option<Timestamp>,
}

/// What one grant gave to a usage event.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeductionBody {
    pub grant_id: String,
    #[schema(inline)]
    pub amount: Number,
}

impl From<&UsageRecord> for UsageBody {
    fn from(u: &UsageRecord) -> Self {
        Self {
            object: UsageTag,
            event_id: u.event_id.clone(),
            entitlement_id: u.entitlement_id.as_str().to_owned(),
            amount: Number(u.amount),
            occurred_at: u.occurred_at,
            recorded_at: u.recorded_at,
            status: u.status.into(),
            deductions: u
                .deductions
                .iter()
                .map(|d| DeductionBody {
                    grant_id: d.grant_id.as_str().to_owned(),
                    amount: Number(d.amount),
                })
                .collect(),
            overage: Number(u.overage),
            settled_at: u.settled_at,
        }
    }
}

/// The body of `POST /v1/entitlements/{id}/usage`.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct RecordUsageRequest {
    pub event_id: Label,
    pub amount: PositiveAmount,
    #[schema(format = DateTime, required = false)]
    pub occurred_at: String,
    /// Reserve the amount until the event is committed or released.
    #[schema(required = false)]
    pub pending: bool,
}

/// The body of `POST .../usage/commit` and `.../usage/release`.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct EventIdRequest {
    pub event_id: Label,
}

/// Record usage (or reserve it, when pending), idempotently by eventId.
///
/// Admin only. Burns grants in order; an event id is recorded once.
#[utoipa::path(post, path = "/v1/entitlements/{id}/usage", operation_id = "recordUsage", tag = "paygentic",
    params(EntitlementPath), request_body = RecordUsageRequest,
    responses(
        (status = 201, description = "The usage event as recorded (also on a replay).", body = UsageBody),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound), (status = 409, response = Conflict),
        (status = 413, response = TooLarge), (status = 415, response = Unsupported),
        (status = 422, response = Unprocessable), (status = 503, response = Busy),
    ))]
pub async fn record_usage<S: Store>(app: &App<S>, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let entitlement_id = entitlement_in_path(req)?;
    let mut body = JsonBody::parse(req)?;
    let event_id = body.parsed("eventId", true, grants_domain::usage::client_event_id);
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
    let mut response = ApiResponse::json(StatusCode::CREATED, &UsageBody::from(&created.into_inner()));
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
    ok(&UsageBody::from(&record))
}

/// Commit a pending usage event.
///
/// Admin only.
#[utoipa::path(post, path = "/v1/entitlements/{id}/usage/commit", operation_id = "commitUsage", tag = "paygentic",
    params(EntitlementPath), request_body = EventIdRequest,
    responses(
        (status = 200, description = "The usage event, committed.", body = UsageBody),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound), (status = 409, response = Conflict),
        (status = 413, response = TooLarge), (status = 415, response = Unsupported), (status = 503, response = Busy),
    ))]
pub async fn commit_usage<S: Store>(app: &App<S>, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    settle(app, who, req, Settle::Commit).await
}

/// Release a pending usage event.
///
/// Admin only.
#[utoipa::path(post, path = "/v1/entitlements/{id}/usage/release", operation_id = "releaseUsage", tag = "paygentic",
    params(EntitlementPath), request_body = EventIdRequest,
    responses(
        (status = 200, description = "The usage event, released.", body = UsageBody),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound), (status = 409, response = Conflict),
        (status = 413, response = TooLarge), (status = 415, response = Unsupported), (status = 503, response = Busy),
    ))]
pub async fn release_usage<S: Store>(app: &App<S>, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    settle(app, who, req, Settle::Release).await
}

/// An entitlement's balance at an instant, per grant, with and without pending usage. `balance`
/// is `excludingPending` again.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Balance)]
pub struct BalanceBody {
    #[schema(inline)]
    pub object: BalanceTag,
    pub entitlement_id: String,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    #[schema(inline)]
    pub balance: Number,
    #[schema(inline)]
    pub excluding_pending: Number,
    #[schema(inline)]
    pub including_pending: Number,
    #[schema(inline)]
    pub overage: Number,
    #[schema(inline)]
    pub pending_overage: Number,
    #[schema(inline)]
    pub grants: Vec<GrantBalanceBody>,
}

/// One grant's part of a balance.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrantBalanceBody {
    pub grant_id: String,
    #[schema(inline)]
    pub excluding_pending: Number,
    #[schema(inline)]
    pub including_pending: Number,
}

impl BalanceBody {
    pub fn new(e: &Entitlement, b: &Balance) -> Self {
        Self {
            object: BalanceTag,
            entitlement_id: e.id.as_str().to_owned(),
            at: b.at,
            balance: Number(b.excluding_pending),
            excluding_pending: Number(b.excluding_pending),
            including_pending: Number(b.including_pending),
            overage: Number(b.overage),
            pending_overage: Number(b.pending_overage),
            grants: b
                .grants
                .iter()
                .map(|g| GrantBalanceBody {
                    grant_id: g.grant_id.as_str().to_owned(),
                    excluding_pending: Number(g.excluding_pending),
                    including_pending: Number(g.including_pending),
                })
                .collect(),
        }
    }
}

/// An entitlement's balance at any instant, per grant, with and without pending usage.
#[utoipa::path(get, path = "/v1/entitlements/{id}/balance", operation_id = "getBalance", tag = "paygentic",
    params(EntitlementPath, ("at" = Option<String>, Query, format = DateTime, description = "Default now.")),
    responses(
        (status = 200, description = "The balance at an instant (now by default), per grant.", body = BalanceBody),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
    ))]
pub async fn get_balance<S: Store>(app: &App<S>, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let id = entitlement_in_path(req)?;
    let at = query_time(req, "at")?;
    let (entitlement, balance) =
        grants_domain::balances::balance(app.store.as_ref(), app.clock.as_ref(), &who.tenant, &id, at)
            .await?
            .ok_or_else(entitlement_not_found)?;
    ok(&BalanceBody::new(&entitlement, &balance))
}
