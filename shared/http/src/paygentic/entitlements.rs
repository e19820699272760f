//! Entitlements: provision (admin), list, get (with the balance now or at an instant), cancel, and
//! the entitlement's JSON form.
use super::{entitlement_in_path, ok, query_time, EntitlementPath, List};
use crate::body::{JsonBody, QueryParams};
use crate::object_tag;
use crate::openapi::{BadRequest, Forbidden, NotFound, TooLarge, Unauthorized, Unsupported};
use crate::wire::{null, Label as LabelSchema, Number};
use crate::{ApiError, ApiRequest, ApiResponse, App, Store};
use grants_domain::auth::Principal;
use grants_domain::entitlements::{self, EntitlementView, Label, NewEntitlement};
use grants_domain::model::EntitlementStatus;
use grants_domain::Timestamp;
use http::StatusCode;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

object_tag!(EntitlementTag = "entitlement");
object_tag!(MeteredTag = "metered");

/// An entitlement's state.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Active,
    Canceled,
    Expired,
}

impl From<EntitlementStatus> for Status {
    fn from(s: EntitlementStatus) -> Self {
        match s {
            EntitlementStatus::Active => Self::Active,
            EntitlementStatus::Canceled => Self::Canceled,
            EntitlementStatus::Expired => Self::Expired,
        }
    }
}

/// What the entitlement object and its list item share. `balance` is the sum of the active
/// grants' remainders now (or at `?at=`); `usageInPeriod` and `overage` count the current period.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntitlementFields {
    pub customer_id: String,
    pub feature_id: String,
    pub feature_key: String,
    #[schema(inline)]
    pub feature_type: MeteredTag,
    pub product_id: String,
    #[schema(required)]
    pub subscription_id: Option<String>,
    #[schema(inline)]
    pub status: Status,
    #[schema(value_type = String, format = DateTime)]
    pub active_from: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime, required)]
    pub active_to: Option<Timestamp>,
    pub has_access: bool,
    pub metadata: BTreeMap<String, String>,
    /// Always null (Paygentic's document has it; nothing here configures it).
    #[schema(schema_with = null)]
    pub config: (),
    pub is_soft_limit: bool,
    #[schema(inline)]
    pub balance: Number,
    #[schema(inline)]
    pub usage_in_period: Number,
    #[schema(inline)]
    pub overage: Number,
    #[schema(required)]
    pub pricing_unit_id: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub current_period_start: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub current_period_end: Timestamp,
}

impl From<&EntitlementView> for EntitlementFields {
    fn from(view: &EntitlementView) -> Self {
        let e = &view.entitlement;
        Self {
            customer_id: e.customer_id.clone(),
            feature_id: e.feature_id.clone(),
            feature_key: e.feature_key.clone(),
            feature_type: MeteredTag,
            product_id: e.product_id.clone(),
            subscription_id: e.subscription_id.clone(),
            status: e.status.into(),
            active_from: e.active_from,
            active_to: e.active_to,
            has_access: view.has_access,
            metadata: e.metadata.clone(),
            config: (),
            is_soft_limit: e.is_soft_limit,
            balance: Number(view.balance),
            usage_in_period: Number(e.usage_in_period),
            overage: Number(e.overage),
            pricing_unit_id: e.pricing_unit_id.clone(),
            current_period_start: e.current_period_start,
            current_period_end: e.current_period_end,
        }
    }
}

/// The entitlement object (detail, create, cancel).
#[derive(Serialize, ToSchema)]
#[schema(as = Entitlement)]
pub struct EntitlementBody {
    #[schema(inline)]
    pub object: EntitlementTag,
    pub id: String,
    #[serde(flatten)]
    pub fields: EntitlementFields,
}

impl From<&EntitlementView> for EntitlementBody {
    fn from(view: &EntitlementView) -> Self {
        Self {
            object: EntitlementTag,
            id: view.entitlement.id.as_str().to_owned(),
            fields: view.into(),
        }
    }
}

/// An entitlement in a list: the id as `entitlementId`, no `object`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntitlementListItem {
    pub entitlement_id: String,
    #[serde(flatten)]
    pub fields: EntitlementFields,
}

impl From<&EntitlementView> for EntitlementListItem {
    fn from(view: &EntitlementView) -> Self {
        Self {
            entitlement_id: view.entitlement.id.as_str().to_owned(),
            fields: view.into(),
        }
    }
}

/// The body of `POST /v1/entitlements`, as [`parse_new_entitlement`] reads it.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct NewEntitlementRequest {
    pub customer_id: LabelSchema,
    pub feature_key: LabelSchema,
    #[schema(required = false)]
    pub feature_id: LabelSchema,
    #[schema(required = false)]
    pub product_id: LabelSchema,
    #[schema(required = false)]
    pub subscription_id: LabelSchema,
    #[schema(required = false)]
    pub plan_id: LabelSchema,
    #[schema(format = DateTime, required = false)]
    pub current_period_start: String,
    #[schema(format = DateTime, required = false)]
    pub current_period_end: String,
    #[schema(required = false)]
    pub metadata: BTreeMap<String, String>,
    #[schema(required = false)]
    pub is_soft_limit: bool,
    #[schema(required = false)]
    pub pricing_unit_id: LabelSchema,
}

/// List the tenant's entitlements.
#[utoipa::path(get, path = "/v1/entitlements", operation_id = "listEntitlements", tag = "paygentic",
    params(
        ("customerId" = Option<String>, Query),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 100),
        ("offset" = Option<usize>, Query, maximum = 1000000)),
    responses(
        (status = 200, description = "A page of entitlements.", body = List<EntitlementListItem>),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
    ))]
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
    ok(&List::<EntitlementListItem>::new(&page))
}

/// One entitlement with its balance.
#[utoipa::path(get, path = "/v1/entitlements/{id}", operation_id = "getEntitlement", tag = "paygentic",
    params(EntitlementPath, ("at" = Option<String>, Query, format = DateTime,
        description = "The balance and access as of this instant (default now).")),
    responses(
        (status = 200, description = "The entitlement.", body = EntitlementBody),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
    ))]
pub async fn get_entitlement<S: Store>(
    app: &App<S>,
    who: &Principal,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let id = entitlement_in_path(req)?;
    // `at` (the SDK sends it): the balance and access as of that instant, from the ledger.
    let view = match query_time(req, "at")? {
        Some(at) => {
            entitlements::get_entitlement_at(app.store.as_ref(), app.clock.as_ref(), &who.tenant, &id, at).await?
        }
        None => entitlements::get_entitlement(app.store.as_ref(), app.clock.as_ref(), &who.tenant, &id).await?,
    };
    ok(&EntitlementBody::from(&view))
}

/// Cancel an entitlement.
///
/// Admin only. No new grants or usage afterwards; a cancelled one answers unchanged.
#[utoipa::path(post, path = "/v1/entitlements/{id}/cancel", operation_id = "cancelEntitlement", tag = "paygentic",
    params(EntitlementPath),
    responses(
        (status = 200, description = "The entitlement, cancelled.", body = EntitlementBody),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound),
        (status = 413, response = TooLarge),
    ))]
pub async fn cancel_entitlement<S: Store>(
    app: &App<S>,
    who: &Principal,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let id = entitlement_in_path(req)?;
    let view = entitlements::cancel_entitlement(app.store.as_ref(), app.clock.as_ref(), &who.tenant, &id).await?;
    ok(&EntitlementBody::from(&view))
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

/// Provision an entitlement.
///
/// Admin only (this service's own operation).
#[utoipa::path(post, path = "/v1/entitlements", operation_id = "createEntitlement", tag = "paygentic",
    request_body = NewEntitlementRequest,
    responses(
        (status = 201, description = "The entitlement.", body = EntitlementBody),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 413, response = TooLarge),
        (status = 415, response = Unsupported),
    ))]
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
    Ok(ApiResponse::json(StatusCode::CREATED, &EntitlementBody::from(&view)))
}
