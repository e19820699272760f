//! Svix's endpoint management (`/api/v1/app/{app_id}/endpoint...`), so that the official `svix`
//! SDK, given this service's base URL and an admin key, manages the endpoints of the tenant's
//! webhook application: create, list, get, patch, delete, read and rotate the signing secret.
//! JSON in, domain call ([`grants_domain::webhook_endpoints`]), JSON out; errors in Svix's shapes
//! ([`crate::ApiError::into_svix_response`]).
//!
//! Svix features this service does not have (`uid`, `metadata`, `headers`, `channels`,
//! `throttleRate`) are refused when sent with a value (422), never silently dropped; `metadata`
//! is answered as `{}`. `eventTypes` and its 1.x name `filterTypes` are both read and both
//! answered.
use crate::body::{JsonBody, QueryParams};
use crate::openapi::{SvixError, SvixInvalid};
use crate::{ApiError, ApiRequest, ApiResponse, App, Store};
use grants_domain::auth::Principal;
use grants_domain::webhook_delivery::{self, AttemptStatus, MessageAttempt, Trigger};
use grants_domain::webhook_endpoints::{
    self, EndpointError, EndpointPatch, EndpointUrl, EventTypeName, NewEndpoint, SigningSecret, WebhookEndpoint,
    MAX_GRACE_SECONDS,
};
use grants_domain::Timestamp;
use http::StatusCode;
use serde::Serialize;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use utoipa::{IntoParams, ToSchema};

/// `{code, detail}`: Svix's error body.
#[derive(Serialize, ToSchema)]
pub struct SvixErrorBody {
    pub code: String,
    pub detail: String,
}

/// One invalid field in Svix's shape.
#[derive(Serialize, ToSchema)]
pub struct SvixFieldError {
    /// `["body", <field>]`.
    pub loc: Vec<String>,
    pub msg: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// `{detail: [...]}`: Svix's validation error body (422).
#[derive(Serialize, ToSchema)]
pub struct SvixValidationBody {
    pub detail: Vec<SvixFieldError>,
}

/// An endpoint in Svix's shape (`EndpointOut`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = EndpointOut)]
pub struct EndpointOut {
    /// `ep_...`
    pub id: String,
    pub url: String,
    pub description: String,
    /// Always `{}` (metadata is not kept).
    pub metadata: BTreeMap<String, String>,
    pub disabled: bool,
    /// The event types it receives; null: every type.
    #[schema(required)]
    pub event_types: Option<Vec<String>>,
    /// The same as `eventTypes` (its name in Svix's 1.x API).
    #[schema(required)]
    pub filter_types: Option<Vec<String>>,
    /// Always 1.
    pub version: u32,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

impl From<&WebhookEndpoint> for EndpointOut {
    fn from(e: &WebhookEndpoint) -> Self {
        let types = e
            .event_types
            .as_ref()
            .map(|t| t.iter().map(|t| t.as_str().to_owned()).collect::<Vec<_>>());
        Self {
            id: e.id.as_str().to_owned(),
            url: e.url.as_str().to_owned(),
            description: e.description.clone(),
            metadata: BTreeMap::new(),
            disabled: e.disabled,
            filter_types: types.clone(),
            event_types: types,
            version: 1,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// A page of endpoints (`ListResponse_EndpointOut_`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointList {
    pub data: Vec<EndpointOut>,
    /// The last id of this page: pass it as `iterator` for the next one; null when empty.
    #[schema(required)]
    pub iterator: Option<String>,
    #[schema(required)]
    pub prev_iterator: Option<String>,
    /// No more endpoints after this page.
    pub done: bool,
}

/// `{key}`: an endpoint's signing secret.
#[derive(Serialize, ToSchema)]
pub struct EndpointSecretOut {
    /// `whsec_` and base64.
    pub key: String,
}

/// The body of a create (`EndpointIn`).
#[derive(ToSchema)]
#[schema(rename_all = "camelCase", as = EndpointIn)]
pub struct EndpointIn {
    /// An absolute http or https URL (deliveries to a deployed stack go to https only).
    #[schema(max_length = 2048)]
    pub url: String,
    #[schema(required = false, max_length = 1000)]
    pub description: String,
    /// At least one event type; absent or null: every type.
    #[schema(required = false, min_items = 1)]
    pub event_types: Option<Vec<String>>,
    #[schema(required = false)]
    pub filter_types: Option<Vec<String>>,
    #[schema(required = false)]
    pub disabled: bool,
    /// `whsec_` and the base64 of 24 to 64 bytes; absent: generated.
    #[schema(required = false)]
    pub secret: String,
}

/// The body of a patch (`EndpointPatch`): only the fields sent change; `eventTypes: null` clears
/// the filter.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase", as = EndpointPatch)]
pub struct EndpointPatchIn {
    #[schema(required = false, max_length = 2048)]
    pub url: String,
    #[schema(required = false, max_length = 1000)]
    pub description: String,
    #[schema(required = false, min_items = 1)]
    pub event_types: Option<Vec<String>>,
    #[schema(required = false)]
    pub filter_types: Option<Vec<String>>,
    #[schema(required = false)]
    pub disabled: bool,
}

/// The body of a rotation (`EndpointSecretRotateIn`), possibly `{}`.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase", as = EndpointSecretRotateIn)]
pub struct RotateIn {
    /// The new secret; absent: generated.
    #[schema(required = false)]
    pub key: String,
    /// How long the old secret still signs (default 86,400).
    #[schema(required = false, minimum = 0, maximum = 604800)]
    pub grace_period_seconds: u32,
}

/// `app_id` in the path: the tenant's webhook application.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AppPath {
    /// The application id (`app_...`) from `GET /v0/webhooks`.
    pub app_id: String,
}

/// `endpoint_id` in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct EndpointPath {
    /// An endpoint id (`ep_...`).
    pub endpoint_id: String,
}

impl From<EndpointError> for ApiError {
    fn from(e: EndpointError) -> Self {
        match e {
            EndpointError::ApplicationNotFound => ApiError::not_found("application_not_found", "Application not found"),
            EndpointError::EndpointNotFound => ApiError::not_found("endpoint_not_found", "Endpoint not found"),
            EndpointError::MessageNotFound => ApiError::not_found("message_not_found", "Message not found"),
            EndpointError::EndpointDisabled => ApiError::conflict(
                "endpoint_disabled",
                "The endpoint is disabled: enable it first",
                serde_json::Value::Null,
            ),
            EndpointError::Contended => ApiError::unavailable(),
            EndpointError::Store(s) => s.into(),
        }
    }
}

/// A description: at most 1,000 characters.
fn description(raw: &str) -> Result<String, &'static str> {
    if raw.chars().count() > 1000 {
        Err("must be at most 1000 characters")
    } else {
        Ok(raw.to_owned())
    }
}

/// `eventTypes` (or `filterTypes`): absent is None; null is `Some(None)` (every type); a list is
/// at least one valid name.
fn event_types(body: &mut JsonBody) -> Option<Option<BTreeSet<EventTypeName>>> {
    let name = ["eventTypes", "filterTypes"]
        .into_iter()
        .find(|n| body.has(n) || body.is_null(n))?;
    if body.is_null(name) {
        return Some(None);
    }
    let raw = body.string_list(name);
    let mut out = BTreeSet::new();
    for (i, t) in raw.iter().enumerate() {
        match EventTypeName::parse(t) {
            Ok(t) => {
                out.insert(t);
            }
            Err(e) => body.reject(&format!("{name}[{i}]"), "invalid", e),
        }
    }
    if raw.is_empty() && !body.has_errors() {
        body.reject(
            name,
            "too_small",
            "must list at least one event type (null: every type)",
        );
    }
    Some(Some(out))
}

/// Svix fields this service does not have: refused when sent with a value.
fn unsupported(body: &mut JsonBody) {
    for name in ["uid", "headers", "channels", "throttleRate", "rateLimit"] {
        if body.has(name) && !body.is_null(name) {
            body.reject(name, "unsupported", "is not supported by this service");
        }
    }
    if body.has("metadata") && !body.is_null("metadata") && !body.is_empty_object("metadata") {
        body.reject(
            "metadata",
            "unsupported",
            "is not supported by this service (send {} or nothing)",
        );
    }
}

fn endpoint_response(status: StatusCode, e: &WebhookEndpoint) -> Result<ApiResponse, ApiError> {
    Ok(ApiResponse::json(status, &EndpointOut::from(e)))
}

/// Create an endpoint.
///
/// Admin only. The application must be the tenant's (`GET /v0/webhooks`).
#[utoipa::path(post, path = "/api/v1/app/{app_id}/endpoint", operation_id = "v1.endpoint.create", tag = "svix",
    params(AppPath),
    request_body = EndpointIn,
    responses(
        (status = 201, description = "The new endpoint.", body = EndpointOut),
        (status = 400, response = SvixError), (status = 401, response = SvixError),
        (status = 403, response = SvixError), (status = 404, response = SvixError),
        (status = 413, response = SvixError), (status = 422, response = SvixInvalid),
    ))]
pub async fn create_endpoint<S: Store>(
    app: &App<S>,
    who: &Principal,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let mut body = JsonBody::parse(req)?;
    let url = body.parsed("url", true, EndpointUrl::parse);
    let description = body.parsed("description", false, description).unwrap_or_default();
    let types = event_types(&mut body).flatten();
    let disabled = body.optional_bool("disabled").unwrap_or(false);
    let secret = body.parsed("secret", false, SigningSecret::parse);
    unsupported(&mut body);
    body.finish()?;
    let Some(url) = url else {
        return Err(ApiError::internal());
    };
    let new = NewEndpoint {
        url,
        description,
        event_types: types,
        disabled,
        secret,
    };
    let e = webhook_endpoints::create_endpoint(
        app.store.as_ref(),
        app.clock.as_ref(),
        &who.tenant,
        req.param("app_id"),
        new,
    )
    .await?;
    tracing::info!(endpoint = %e.id, "webhook endpoint created");
    endpoint_response(StatusCode::CREATED, &e)
}

/// List endpoints.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/endpoint", operation_id = "v1.endpoint.list", tag = "svix",
    params(AppPath,
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 250),
        ("iterator" = Option<String>, Query, description = "The last id of the previous page."),
        ("order" = Option<String>, Query, description = "ascending, or descending (the default).")),
    responses(
        (status = 200, description = "A page of endpoints.", body = EndpointList),
        (status = 400, response = SvixError), (status = 401, response = SvixError),
        (status = 403, response = SvixError), (status = 404, response = SvixError),
        (status = 422, response = SvixInvalid),
    ))]
pub async fn list_endpoints<S: Store>(
    app: &App<S>,
    who: &Principal,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let mut q = QueryParams::new(req);
    let limit = q.int("limit", 1, 250, 50);
    let iterator = q.string("iterator").map(str::to_owned);
    let order = q.string("order");
    let ascending = match order {
        None | Some("descending") => false,
        Some("ascending") => true,
        Some(_) => {
            q.reject("order", "invalid", "must be ascending or descending");
            false
        }
    };
    q.finish()?;
    let page = webhook_endpoints::list_endpoints(
        app.store.as_ref(),
        &who.tenant,
        req.param("app_id"),
        limit,
        iterator.as_deref(),
        ascending,
    )
    .await?;
    Ok(ApiResponse::json(
        StatusCode::OK,
        &EndpointList {
            data: page.data.iter().map(EndpointOut::from).collect(),
            iterator: page.iterator,
            prev_iterator: page.prev_iterator,
            done: page.done,
        },
    ))
}

/// Get an endpoint.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}", operation_id = "v1.endpoint.get", tag = "svix",
    params(AppPath, EndpointPath),
    responses(
        (status = 200, description = "The endpoint.", body = EndpointOut),
        (status = 401, response = SvixError), (status = 403, response = SvixError),
        (status = 404, response = SvixError),
    ))]
pub async fn get_endpoint<S: Store>(app: &App<S>, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let e = webhook_endpoints::get_endpoint(
        app.store.as_ref(),
        &who.tenant,
        req.param("app_id"),
        req.param("endpoint_id"),
    )
    .await?;
    endpoint_response(StatusCode::OK, &e)
}

/// Change an endpoint: URL, description, event types, disabled.
///
/// Admin only. Only the fields sent change; `eventTypes: null` makes it receive every type.
#[utoipa::path(patch, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}", operation_id = "v1.endpoint.patch", tag = "svix",
    params(AppPath, EndpointPath),
    request_body = EndpointPatchIn,
    responses(
        (status = 200, description = "The endpoint, changed.", body = EndpointOut),
        (status = 400, response = SvixError), (status = 401, response = SvixError),
        (status = 403, response = SvixError), (status = 404, response = SvixError),
        (status = 413, response = SvixError), (status = 422, response = SvixInvalid),
    ))]
pub async fn patch_endpoint<S: Store>(
    app: &App<S>,
    who: &Principal,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let mut body = JsonBody::parse(req)?;
    let url = body.parsed("url", false, EndpointUrl::parse);
    let description = body.parsed("description", false, description);
    let types = event_types(&mut body);
    let disabled = body.optional_bool("disabled");
    unsupported(&mut body);
    body.finish()?;
    let patch = EndpointPatch {
        url,
        description,
        event_types: types,
        disabled,
    };
    let e = webhook_endpoints::patch_endpoint(
        app.store.as_ref(),
        app.clock.as_ref(),
        &who.tenant,
        req.param("app_id"),
        req.param("endpoint_id"),
        patch,
    )
    .await?;
    tracing::info!(endpoint = %e.id, "webhook endpoint changed");
    endpoint_response(StatusCode::OK, &e)
}

/// Delete an endpoint.
#[utoipa::path(delete, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}", operation_id = "v1.endpoint.delete", tag = "svix",
    params(AppPath, EndpointPath),
    responses(
        (status = 204, description = "Deleted."),
        (status = 401, response = SvixError), (status = 403, response = SvixError),
        (status = 404, response = SvixError),
    ))]
pub async fn delete_endpoint<S: Store>(
    app: &App<S>,
    who: &Principal,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    webhook_endpoints::delete_endpoint(
        app.store.as_ref(),
        &who.tenant,
        req.param("app_id"),
        req.param("endpoint_id"),
    )
    .await?;
    tracing::info!(endpoint = req.param("endpoint_id"), "webhook endpoint deleted");
    Ok(ApiResponse::no_content())
}

/// An endpoint's signing secret.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret", operation_id = "v1.endpoint.get-secret", tag = "svix",
    params(AppPath, EndpointPath),
    responses(
        (status = 200, description = "The secret.", body = EndpointSecretOut),
        (status = 401, response = SvixError), (status = 403, response = SvixError),
        (status = 404, response = SvixError),
    ))]
pub async fn get_endpoint_secret<S: Store>(
    app: &App<S>,
    who: &Principal,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let e = webhook_endpoints::get_endpoint(
        app.store.as_ref(),
        &who.tenant,
        req.param("app_id"),
        req.param("endpoint_id"),
    )
    .await?;
    Ok(ApiResponse::json(StatusCode::OK, &json!({"key": e.secret.expose()})))
}

/// Rotate an endpoint's signing secret.
///
/// Admin only. The old secret still signs for `gracePeriodSeconds` (default 24 hours): deliveries
/// carry a signature by each until then. Answers the new secret.
#[utoipa::path(post, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret/rotate", operation_id = "v1.endpoint.rotate-secret", tag = "svix",
    params(AppPath, EndpointPath),
    request_body = RotateIn,
    responses(
        (status = 200, description = "The new secret.", body = EndpointSecretOut),
        (status = 400, response = SvixError), (status = 401, response = SvixError),
        (status = 403, response = SvixError), (status = 404, response = SvixError),
        (status = 413, response = SvixError), (status = 422, response = SvixInvalid),
    ))]
pub async fn rotate_endpoint_secret<S: Store>(
    app: &App<S>,
    who: &Principal,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    // The SDK may send no body at all.
    let mut body = if req.body.iter().all(u8::is_ascii_whitespace) {
        JsonBody::from_slice(b"{}")?
    } else {
        JsonBody::parse(req)?
    };
    let key = body.parsed("key", false, SigningSecret::parse);
    let grace = body.optional_integer("gracePeriodSeconds", 0, MAX_GRACE_SECONDS.unsigned_abs());
    body.finish()?;
    let e = webhook_endpoints::rotate_secret(
        app.store.as_ref(),
        app.clock.as_ref(),
        &who.tenant,
        req.param("app_id"),
        req.param("endpoint_id"),
        key,
        grace.and_then(|g| i64::try_from(g).ok()),
    )
    .await?;
    tracing::info!(endpoint = %e.id, "webhook endpoint secret rotated");
    Ok(ApiResponse::json(StatusCode::OK, &json!({"key": e.secret.expose()})))
}

/// One delivery attempt in Svix's shape (`MessageAttemptOut`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = MessageAttemptOut)]
pub struct MessageAttemptOut {
    /// `atmpt_...`
    pub id: String,
    pub msg_id: String,
    pub endpoint_id: String,
    pub url: String,
    /// The first 1,024 bytes of the endpoint's answer, or why there was none.
    pub response: String,
    /// 0 when the endpoint did not answer.
    pub response_status_code: u16,
    pub response_duration_ms: u64,
    /// 0 success, 2 fail (Svix's `MessageStatus`).
    pub status: u8,
    /// `success` or `fail`.
    pub status_text: &'static str,
    /// 0 scheduled, 1 manual (a resend).
    pub trigger_type: u8,
    #[schema(value_type = String, format = DateTime)]
    pub timestamp: Timestamp,
}

impl From<&MessageAttempt> for MessageAttemptOut {
    fn from(a: &MessageAttempt) -> Self {
        let (status, status_text) = match a.status {
            AttemptStatus::Success => (0, "success"),
            AttemptStatus::Fail => (2, "fail"),
        };
        Self {
            id: a.id.as_str().to_owned(),
            msg_id: a.message_id.as_str().to_owned(),
            endpoint_id: a.endpoint_id.as_str().to_owned(),
            url: a.url.clone(),
            response: a.response.clone(),
            response_status_code: a.response_status_code,
            response_duration_ms: a.response_duration_ms,
            status,
            status_text,
            trigger_type: match a.trigger {
                Trigger::Scheduled => 0,
                Trigger::Manual => 1,
            },
            timestamp: a.timestamp,
        }
    }
}

/// A page of attempts (`ListResponse_MessageAttemptOut_`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageAttemptList {
    pub data: Vec<MessageAttemptOut>,
    /// The last id of this page: pass it as `iterator` for the next (older) one.
    #[schema(required)]
    pub iterator: Option<String>,
    /// Always null: pages go from newest to oldest only.
    #[schema(required)]
    pub prev_iterator: Option<String>,
    pub done: bool,
}

/// `msg_id` in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MessagePath {
    /// A message id (`msg_...`): the `webhook-id` of its deliveries.
    pub msg_id: String,
}

/// The attempts to an endpoint, newest first.
///
/// Admin only. Svix's filters (`status`, `status_code_class`, `channel`, `tag`, `before`, `after`,
/// `event_types`) are refused (422) rather than ignored; `with_content`, `with_msg` and
/// `expanded_statuses` are accepted and change nothing (message payloads are never included).
#[utoipa::path(get, path = "/api/v1/app/{app_id}/attempt/endpoint/{endpoint_id}", operation_id = "v1.message-attempt.list-by-endpoint", tag = "svix",
    params(AppPath, EndpointPath,
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 250),
        ("iterator" = Option<String>, Query, description = "The last id of the previous page.")),
    responses(
        (status = 200, description = "A page of attempts, newest first.", body = MessageAttemptList),
        (status = 400, response = SvixError), (status = 401, response = SvixError),
        (status = 403, response = SvixError), (status = 404, response = SvixError),
        (status = 422, response = SvixInvalid),
    ))]
pub async fn list_attempts_by_endpoint<S: Store>(
    app: &App<S>,
    who: &Principal,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let mut q = QueryParams::new(req);
    let limit = q.int("limit", 1, 250, 50);
    let iterator = q.string("iterator").map(str::to_owned);
    for unsupported in [
        "status",
        "status_code_class",
        "channel",
        "tag",
        "before",
        "after",
        "event_types",
    ] {
        if q.string(unsupported).is_some() {
            q.reject(unsupported, "unsupported", "this filter is not supported");
        }
    }
    for accepted in ["with_content", "with_msg", "expanded_statuses"] {
        q.bool(accepted, false);
    }
    q.finish()?;
    let page = webhook_delivery::list_attempts(
        app.store.as_ref(),
        &who.tenant,
        req.param("app_id"),
        req.param("endpoint_id"),
        iterator.as_deref(),
        limit,
    )
    .await?;
    Ok(ApiResponse::json(
        StatusCode::OK,
        &MessageAttemptList {
            data: page.data.iter().map(MessageAttemptOut::from).collect(),
            iterator: page.iterator,
            prev_iterator: None,
            done: page.done,
        },
    ))
}

/// Resend a message to an endpoint.
///
/// Admin only. Queues one attempt now (a manual one: it is not retried); answers 202 `{}`. A
/// disabled endpoint is refused (409): enable it first.
#[utoipa::path(post, path = "/api/v1/app/{app_id}/msg/{msg_id}/endpoint/{endpoint_id}/resend", operation_id = "v1.message-attempt.resend", tag = "svix",
    params(AppPath, MessagePath, EndpointPath),
    responses(
        (status = 202, description = "Queued.", body = Object),
        (status = 401, response = SvixError), (status = 403, response = SvixError),
        (status = 404, response = SvixError), (status = 409, response = SvixError),
    ))]
pub async fn resend_message<S: Store>(
    app: &App<S>,
    who: &Principal,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    webhook_delivery::resend(
        app.store.as_ref(),
        app.webhook_deliveries.as_ref(),
        &who.tenant,
        req.param("app_id"),
        req.param("msg_id"),
        req.param("endpoint_id"),
    )
    .await?;
    tracing::info!(
        message = req.param("msg_id"),
        endpoint = req.param("endpoint_id"),
        "webhook message resend queued"
    );
    Ok(ApiResponse::json(StatusCode::ACCEPTED, &json!({})))
}
