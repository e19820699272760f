//! Grants on an entitlement: create (idempotent), list, get, void, and the grant's JSON form.
use super::errors::grant_not_found;
use super::{entitlement_in_path, ok, EntitlementPath, List};
use crate::body::{JsonBody, QueryParams};
use crate::object_tag;
use crate::openapi::{BadRequest, Conflict, Forbidden, NotFound, TooLarge, Unauthorized, Unprocessable, Unsupported};
use crate::wire::{IdempotencyKey as IdempotencyKeySchema, NonNegativeAmount, Number, PositiveAmount};
use crate::{ApiError, ApiRequest, ApiResponse, App, Store};
use grants_domain::auth::Principal;
use grants_domain::grants::{self, NewGrant};
use grants_domain::kernel::{Created, IdempotencyKey};
use grants_domain::model::Grant;
use grants_domain::GrantId;
use grants_domain::Timestamp;
use http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

object_tag!(GrantTag = "grant");

/// A grant in Paygentic's shape. `priority` is left out when the grant's priority is not an
/// integer (a Metronome grant's may be fractional); the rollover bounds when unset.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Grant)]
pub struct GrantBody {
    #[schema(inline)]
    pub object: GrantTag,
    pub id: String,
    pub entitlement_id: String,
    #[schema(inline)]
    pub amount: Number,
    #[schema(value_type = String, format = DateTime)]
    pub effective_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime, required)]
    pub expires_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime, required)]
    pub voided_at: Option<Timestamp>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(required)]
    pub recurrence_period: Option<String>,
    #[schema(required)]
    pub idempotency_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub priority: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(inline, nullable = false)]
    pub reset_max_rollover: Option<Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(inline, nullable = false)]
    pub reset_min_rollover: Option<Number>,
}

impl From<&Grant> for GrantBody {
    fn from(g: &Grant) -> Self {
        Self {
            object: GrantTag,
            id: g.id.as_str().to_owned(),
            entitlement_id: g.entitlement_id.as_str().to_owned(),
            amount: Number(g.amount.value()),
            effective_at: g.effective_at,
            expires_at: g.expires_at,
            voided_at: g.voided_at,
            created_at: g.created_at,
            recurrence_period: g.recurrence_period.clone(),
            idempotency_key: g.idempotency_key.clone(),
            priority: g.priority.and_then(|p| p.as_integer()),
            reset_max_rollover: g.reset_max_rollover.map(|r| Number(r.value())),
            reset_min_rollover: g.reset_min_rollover.map(|r| Number(r.value())),
        }
    }
}

/// The body of `POST /v1/entitlements/{id}/grants`, as [`parse_create_grant`] reads it.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct CreateGrantRequest {
    pub amount: PositiveAmount,
    pub idempotency_key: IdempotencyKeySchema,
    #[schema(format = DateTime, required = false)]
    pub effective_at: String,
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    #[schema(required = false)]
    pub priority: i64,
    #[schema(required = false)]
    pub reset_max_rollover: NonNegativeAmount,
    #[schema(required = false)]
    pub reset_min_rollover: NonNegativeAmount,
}

/// `grantId` in the path.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct GrantPath {
    /// A grant id (grt_...).
    #[param(rename = "grantId")]
    pub grant_id: String,
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

/// Create a grant, idempotently.
///
/// Admin only. An identical replay of the idempotency key is 201 with the same grant.
#[utoipa::path(post, path = "/v1/entitlements/{id}/grants", operation_id = "createGrant", tag = "paygentic",
    params(EntitlementPath), request_body = CreateGrantRequest,
    responses(
        (status = 201, description = "The grant (new, or the original on an identical replay).", body = GrantBody),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound), (status = 409, response = Conflict),
        (status = 413, response = TooLarge), (status = 415, response = Unsupported),
        (status = 422, response = Unprocessable),
    ))]
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
        &GrantBody::from(&created.into_inner()),
    ))
}

/// List an entitlement's grants.
#[utoipa::path(get, path = "/v1/entitlements/{id}/grants", operation_id = "listGrants", tag = "paygentic",
    params(EntitlementPath,
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 100),
        ("offset" = Option<usize>, Query, maximum = 1000000),
        ("includeVoided" = Option<bool>, Query)),
    responses(
        (status = 200, description = "A page of grants.", body = List<GrantBody>),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
    ))]
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
    ok(&List::<GrantBody>::new(&page))
}

/// One grant.
#[utoipa::path(get, path = "/v1/entitlements/{id}/grants/{grantId}", operation_id = "getGrant", tag = "paygentic",
    params(EntitlementPath, GrantPath),
    responses(
        (status = 200, description = "The grant.", body = GrantBody),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
    ))]
pub async fn get_grant<S: Store>(app: &App<S>, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let (entitlement_id, grant_id) = (entitlement_in_path(req)?, grant_in_path(req)?);
    let grant = grants::get_grant(app.store.as_ref(), &who.tenant, &entitlement_id, &grant_id).await?;
    ok(&GrantBody::from(&grant))
}

/// Void a grant, idempotently.
///
/// Admin only. Voiding a voided grant returns it unchanged.
#[utoipa::path(delete, path = "/v1/entitlements/{id}/grants/{grantId}", operation_id = "voidGrant", tag = "paygentic",
    params(EntitlementPath, GrantPath),
    responses(
        (status = 200, description = "The grant, voided.", body = GrantBody),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound),
        (status = 413, response = TooLarge),
    ))]
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
    ok(&GrantBody::from(&grant))
}
