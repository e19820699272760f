//! Capacity grants (`/v2/grants`): list, create, delete, resell, and the grant's JSON form.
use super::errors::grant_not_found;
use crate::body::{JsonBody, QueryParams};
use crate::object_tag;
use crate::openapi::{BadRequest, Conflict, Forbidden, NotFound, TooLarge, Unauthorized, Unprocessable, Unsupported};
use crate::wire::{decimal_input, Label as LabelSchema, ListTag};
use crate::{ApiError, ApiRequest, ApiResponse, App, Store};
use grants_domain::auth::Principal;
use grants_domain::capacity::{self, CapacityFilter, CapacityGrant, ExactPrice, NewCapacityGrant, MAX_QUANTITY};
use grants_domain::entitlements::Label;
use grants_domain::{CapacityGrantId, Timestamp};
use http::StatusCode;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

object_tag!(GrantTag = "grant");

/// A capacity grant: `quantity` units of `kind` on `cluster` from `starts_at` to `ends_at`, at
/// exact decimal-string prices. A resale replaces a grant (`resold_to`) with a new one (`resold_from`).
#[derive(Serialize, ToSchema)]
#[schema(as = CapacityGrant)]
pub struct GrantBody {
    #[schema(inline)]
    pub object: GrantTag,
    pub fid: String,
    pub kind: String,
    pub cluster: String,
    pub quantity: u64,
    #[schema(value_type = String, format = DateTime)]
    pub starts_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub ends_at: Timestamp,
    pub unit_price: String,
    pub early_termination_buyback_price: String,
    pub flexible_usage_buyback_price: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime, required)]
    pub deleted_at: Option<Timestamp>,
    #[schema(required)]
    pub resold_from: Option<String>,
    #[schema(required)]
    pub resold_to: Option<String>,
}

impl From<&CapacityGrant> for GrantBody {
    fn from(g: &CapacityGrant) -> Self {
        Self {
            object: GrantTag,
            fid: g.fid.as_str().to_owned(),
            kind: g.kind.clone(),
            cluster: g.cluster.clone(),
            quantity: g.quantity,
            starts_at: g.starts_at,
            ends_at: g.ends_at,
            unit_price: g.unit_price.as_str().to_owned(),
            early_termination_buyback_price: g.early_termination_buyback_price.as_str().to_owned(),
            flexible_usage_buyback_price: g.flexible_usage_buyback_price.as_str().to_owned(),
            created_at: g.created_at,
            deleted_at: g.deleted_at,
            resold_from: g.resold_from.as_ref().map(|f| f.as_str().to_owned()),
            resold_to: g.resold_to.as_ref().map(|f| f.as_str().to_owned()),
        }
    }
}

/// The new grant of a resale, with the one it replaced (now deleted).
#[derive(Serialize, ToSchema)]
#[schema(as = ResoldCapacityGrant)]
pub struct ResoldGrant {
    #[serde(flatten)]
    pub grant: GrantBody,
    pub replaced_grant: GrantBody,
}

/// `{object: "list", items}`.
#[derive(Serialize, ToSchema)]
#[schema(as = CapacityGrantList)]
pub struct GrantList {
    #[schema(inline)]
    pub object: ListTag,
    pub items: Vec<GrantBody>,
}

/// The body of `POST /v2/grants` (the `Idempotency-Key` header is optional).
#[derive(ToSchema)]
#[schema(as = CapacityGrantRequest)]
pub struct CreateRequest {
    pub kind: LabelSchema,
    pub cluster: LabelSchema,
    #[schema(minimum = 1, maximum = 1_000_000_000_000_u64)]
    pub quantity: u64,
    #[schema(format = DateTime, required = false)]
    pub starts_at: String,
    #[schema(format = DateTime)]
    pub ends_at: String,
    #[schema(schema_with = decimal_input, examples("2.50"))]
    pub unit_price: String,
    #[schema(schema_with = decimal_input, examples("1.25"))]
    pub early_termination_buyback_price: String,
    #[schema(schema_with = decimal_input, examples("0.75"))]
    pub flexible_usage_buyback_price: String,
}

/// The body of `POST /v2/grants/{grant_fid}/resell`.
#[derive(ToSchema)]
#[schema(as = CapacityResellRequest)]
pub struct ResellRequest {
    #[schema(minimum = 1, maximum = 1_000_000_000_000_u64)]
    pub new_quantity: u64,
}

/// `grant_fid` in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct FidPath {
    /// A capacity grant id (cap_...).
    pub grant_fid: String,
}

/// A fid that cannot be ours is simply not found.
fn fid_in_path(req: &ApiRequest) -> Result<CapacityGrantId, ApiError> {
    CapacityGrantId::parse(req.param("grant_fid")).map_err(|_| grant_not_found())
}

/// The organization's capacity grants (expired and deleted ones with show_expired=true).
#[utoipa::path(get, path = "/v2/grants", operation_id = "listCapacityGrants", tag = "capacity",
    params(("cluster" = Option<String>, Query), ("kinds" = Option<String>, Query, description = "Comma-separated."),
        ("show_expired" = Option<bool>, Query)),
    responses(
        (status = 200, description = "The organization's grants.", body = GrantList),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
    ))]
pub async fn list<S: Store>(app: &App<S>, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let mut q = QueryParams::new(req);
    let filter = CapacityFilter {
        cluster: q.string("cluster").map(str::to_owned),
        kinds: q.list("kinds"),
        show_expired: q.bool("show_expired", false),
    };
    q.finish()?;
    let grants = capacity::list(app.store.as_ref(), app.clock.as_ref(), &who.tenant, &filter).await?;
    Ok(ApiResponse::json(
        StatusCode::OK,
        &GrantList {
            object: ListTag,
            items: grants.iter().map(GrantBody::from).collect(),
        },
    ))
}

fn price(body: &mut JsonBody, name: &str) -> Option<ExactPrice> {
    let text = body.decimal_text(name, true)?;
    match ExactPrice::parse(&text) {
        Ok(p) => Some(p),
        Err(e) => {
            body.reject(name, e.code(), format!("{e} (a decimal such as \"12.50\")"));
            None
        }
    }
}

/// The create request: body and Idempotency-Key header, every field checked (all errors at once).
pub fn parse_create(req: &ApiRequest) -> Result<NewCapacityGrant, ApiError> {
    let mut body = JsonBody::parse(req)?;
    let kind = body.parsed("kind", true, Label::parse);
    let cluster = body.parsed("cluster", true, Label::parse);
    let quantity = body.required_integer("quantity", 1, MAX_QUANTITY);
    let starts_at = body.optional_timestamp("starts_at");
    let ends_at = body.required_timestamp("ends_at");
    let unit_price = price(&mut body, "unit_price");
    let early = price(&mut body, "early_termination_buyback_price");
    let flexible = price(&mut body, "flexible_usage_buyback_price");
    body.finish()?;
    let (Some(kind), Some(cluster), Some(quantity), Some(ends_at), Some(unit_price), Some(early), Some(flexible)) =
        (kind, cluster, quantity, ends_at, unit_price, early, flexible)
    else {
        return Err(ApiError::internal());
    };
    let request = NewCapacityGrant {
        kind,
        cluster,
        quantity,
        starts_at,
        ends_at,
        unit_price,
        early_termination_buyback_price: early,
        flexible_usage_buyback_price: flexible,
        idempotency_key: crate::idempotency_header(req)?,
    };
    Ok(request)
}

/// Create a capacity grant.
///
/// Admin only.
#[utoipa::path(post, path = "/v2/grants", operation_id = "createCapacityGrant", tag = "capacity",
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255)),
    request_body = CreateRequest,
    responses(
        (status = 201, description = "The grant (new, or the original on an identical replay).", body = GrantBody),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 409, response = Conflict),
        (status = 413, response = TooLarge), (status = 415, response = Unsupported),
        (status = 422, response = Unprocessable),
    ))]
pub async fn create<S: Store>(app: &App<S>, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let request = parse_create(req)?;
    let created = capacity::create(app.store.as_ref(), app.clock.as_ref(), &who.tenant, request).await?;
    Ok(ApiResponse::json(
        StatusCode::CREATED,
        &GrantBody::from(&created.into_inner()),
    ))
}

/// Soft-delete a capacity grant, idempotently.
///
/// Admin only. Deleting a deleted grant returns it unchanged.
#[utoipa::path(delete, path = "/v2/grants/{grant_fid}", operation_id = "deleteCapacityGrant", tag = "capacity",
    params(FidPath),
    responses(
        (status = 200, description = "The grant, deleted.", body = GrantBody),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound),
        (status = 413, response = TooLarge),
    ))]
pub async fn delete<S: Store>(app: &App<S>, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let fid = fid_in_path(req)?;
    let grant = capacity::delete(app.store.as_ref(), app.clock.as_ref(), &who.tenant, &fid).await?;
    Ok(ApiResponse::json(StatusCode::OK, &GrantBody::from(&grant)))
}

/// Resell part of a capacity grant: a new smaller grant replaces it.
///
/// Admin only. A new grant for fewer units from now; the old one deleted, in one transaction.
#[utoipa::path(post, path = "/v2/grants/{grant_fid}/resell", operation_id = "resellCapacityGrant", tag = "capacity",
    params(FidPath), request_body = ResellRequest,
    responses(
        (status = 200, description = "The new grant, with the one it replaced (now deleted) in `replaced_grant`.",
            body = ResoldGrant),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound), (status = 409, response = Conflict),
        (status = 413, response = TooLarge), (status = 415, response = Unsupported),
        (status = 422, response = Unprocessable),
    ))]
pub async fn resell<S: Store>(app: &App<S>, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let fid = fid_in_path(req)?;
    let mut body = JsonBody::parse(req)?;
    let new_quantity = body.required_integer("new_quantity", 1, MAX_QUANTITY);
    body.finish()?;
    let new_quantity = new_quantity.ok_or_else(ApiError::internal)?;
    let (old, new) = capacity::resell(app.store.as_ref(), app.clock.as_ref(), &who.tenant, &fid, new_quantity).await?;
    let body = ResoldGrant {
        grant: GrantBody::from(&new),
        replaced_grant: GrantBody::from(&old),
    };
    Ok(ApiResponse::json(StatusCode::OK, &body))
}
