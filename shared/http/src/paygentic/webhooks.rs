//! Webhook configuration (`/v0/webhooks`): get, enable (admin), update (admin), disable (admin),
//! in Paygentic's shape. The rules are [`grants_domain::webhooks`]'.
use super::ok;
use crate::body::{JsonBody, QueryParams};
use crate::object_tag;
use crate::openapi::{BadRequest, Forbidden, NotFound, TooLarge, Unauthorized, Unsupported};
use crate::{ApiError, ApiRequest, ApiResponse, App, Store};
use grants_domain::auth::Principal;
use grants_domain::webhook_portal;
use grants_domain::webhooks::{self, WebhookConfig};
use grants_domain::Timestamp;
use http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

object_tag!(WebhooksTag = "webhooks");
object_tag!(WebhookPortalTag = "webhookPortal");

/// A tenant's webhook configuration in Paygentic's shape.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Webhooks)]
pub struct WebhooksBody {
    #[schema(inline)]
    pub object: WebhooksTag,
    /// The tenant's webhook application (`app_...`): what its endpoints belong to.
    pub application_id: String,
    /// When webhooks were first enabled.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Delivery is on (false: paused).
    pub enabled: bool,
    pub merchant_id: String,
    /// When the configuration last changed.
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

impl From<&WebhookConfig> for WebhooksBody {
    fn from(c: &WebhookConfig) -> Self {
        Self {
            object: WebhooksTag,
            application_id: c.application_id.as_str().to_owned(),
            created_at: c.created_at,
            enabled: c.enabled,
            merchant_id: c.tenant.as_str().to_owned(),
            updated_at: c.updated_at,
        }
    }
}

/// The body of `PATCH /v0/webhooks`.
#[derive(ToSchema)]
#[schema(as = UpdateWebhooks)]
pub struct UpdateWebhooksRequest {
    /// false pauses delivery, true resumes it; endpoints and subscriptions are kept.
    pub enabled: bool,
}

/// `merchantId` in the query string: optional (the key's tenant); another organization's is 404.
fn merchant(req: &ApiRequest) -> Result<Option<String>, ApiError> {
    let q = QueryParams::new(req);
    let merchant = q.string("merchantId").map(str::to_owned);
    q.finish()?;
    Ok(merchant)
}

/// The tenant's webhook configuration.
///
/// 404 if webhooks were never enabled.
#[utoipa::path(get, path = "/v0/webhooks", operation_id = "getWebhooks", tag = "paygentic",
    params(("merchantId" = Option<String>, Query, description = "The key's tenant (another organization's: 404).")),
    responses(
        (status = 200, description = "The configuration.", body = WebhooksBody),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
    ))]
pub async fn get_webhooks<S: Store>(app: &App<S>, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let merchant = merchant(req)?;
    let config = webhooks::get_webhooks(app.store.as_ref(), &who.tenant, merchant.as_deref()).await?;
    ok(&WebhooksBody::from(&config))
}

/// Enable webhooks.
///
/// Admin only; no body. Creates the tenant's configuration (delivery on) once: when one exists,
/// enabled or paused, the answer is 400 `DUPLICATE_RESOURCE` (use update to turn delivery on or
/// off).
#[utoipa::path(post, path = "/v0/webhooks", operation_id = "createWebhooks", tag = "paygentic",
    params(("merchantId" = Option<String>, Query, description = "The key's tenant (another organization's: 404).")),
    responses(
        (status = 201, description = "The new configuration.", body = WebhooksBody),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound),
        (status = 413, response = TooLarge),
    ))]
pub async fn enable_webhooks<S: Store>(
    app: &App<S>,
    who: &Principal,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let merchant = merchant(req)?;
    let config =
        webhooks::enable_webhooks(app.store.as_ref(), app.clock.as_ref(), &who.tenant, merchant.as_deref()).await?;
    tracing::info!(application = %config.application_id, "webhooks enabled");
    Ok(ApiResponse::json(StatusCode::CREATED, &WebhooksBody::from(&config)))
}

/// Pause or resume webhook delivery.
///
/// Admin only. 404 if webhooks were never enabled.
#[utoipa::path(patch, path = "/v0/webhooks", operation_id = "updateWebhooks", tag = "paygentic",
    params(("merchantId" = Option<String>, Query, description = "The key's tenant (another organization's: 404).")),
    request_body = UpdateWebhooksRequest,
    responses(
        (status = 200, description = "The configuration, changed.", body = WebhooksBody),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound),
        (status = 413, response = TooLarge), (status = 415, response = Unsupported),
    ))]
pub async fn update_webhooks<S: Store>(
    app: &App<S>,
    who: &Principal,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let merchant = merchant(req);
    let mut body = JsonBody::parse(req)?;
    let enabled = body.optional_bool("enabled");
    if enabled.is_none() && !body.has("enabled") {
        body.reject("enabled", "required", "is required");
    }
    body.finish()?;
    let (merchant, Some(enabled)) = (merchant?, enabled) else {
        return Err(ApiError::internal());
    };
    let config = webhooks::set_webhooks_enabled(
        app.store.as_ref(),
        app.clock.as_ref(),
        &who.tenant,
        merchant.as_deref(),
        enabled,
    )
    .await?;
    tracing::info!(enabled, "webhook delivery set");
    ok(&WebhooksBody::from(&config))
}

/// Pause webhook delivery.
///
/// Admin only. The same as update with `enabled: false`: the configuration, the endpoints and
/// their subscriptions are kept. 404 if webhooks were never enabled.
#[utoipa::path(delete, path = "/v0/webhooks", operation_id = "deleteWebhooks", tag = "paygentic",
    params(("merchantId" = Option<String>, Query, description = "The key's tenant (another organization's: 404).")),
    responses(
        (status = 204, description = "Delivery paused."),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound),
        (status = 413, response = TooLarge),
    ))]
pub async fn disable_webhooks<S: Store>(
    app: &App<S>,
    who: &Principal,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let merchant = merchant(req)?;
    webhooks::set_webhooks_enabled(
        app.store.as_ref(),
        app.clock.as_ref(),
        &who.tenant,
        merchant.as_deref(),
        false,
    )
    .await?;
    tracing::info!("webhook delivery paused");
    Ok(ApiResponse::no_content())
}

/// A magic link to the webhook portal (Paygentic's `WebhookPortal`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = WebhookPortal)]
pub struct WebhookPortalBody {
    #[schema(inline)]
    pub object: WebhookPortalTag,
    /// The page where a person manages the tenant's endpoints, without an API key, until
    /// `expiresAt`.
    pub url: String,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
}

/// A link to the webhook portal.
///
/// Admin only (the page manages endpoints and shows their secrets). The link works for one hour;
/// each call makes a new one. 404 if webhooks were never enabled.
#[utoipa::path(get, path = "/v0/webhooks/portal", operation_id = "getWebhookPortal", tag = "paygentic",
    params(("merchantId" = Option<String>, Query, description = "The key's tenant (another organization's: 404).")),
    responses(
        (status = 200, description = "The portal link.", body = WebhookPortalBody),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound),
    ))]
pub async fn get_webhook_portal<S: Store>(
    app: &App<S>,
    who: &Principal,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let merchant = merchant(req)?;
    let (token, expires_at) =
        webhook_portal::open_portal(app.store.as_ref(), app.clock.as_ref(), &who.tenant, merchant.as_deref()).await?;
    let base = app.base_url(req).unwrap_or_default();
    tracing::info!(expires_at = %expires_at.to_rfc3339(), "webhook portal link made");
    ok(&WebhookPortalBody {
        object: WebhookPortalTag,
        url: format!("{base}{}", crate::portal::page_path(&token)),
        expires_at,
    })
}
