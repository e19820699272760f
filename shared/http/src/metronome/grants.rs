//! Metronome's grant operations: `listGrants` (with balances and deductions), `createGrant`,
//! `voidGrant` and `editGrant`.
use super::cursors::{cursor, read_cursor};
use super::errors::credit_grant_not_found;
use super::wire::{CreateGrantRequest, EditGrantRequest, GrantBody, IdBody, ListGrantsRequest, Page, VoidGrantRequest};
use super::{ok, optional_body};
use crate::body::{JsonBody, QueryParams};
use crate::openapi::{BadRequest, Conflict, Forbidden, NotFound, TooLarge, Unauthorized, Unprocessable, Unsupported};
use crate::{ApiError, ApiRequest, ApiResponse, App, Store};
use grants_domain::auth::Principal;
use grants_domain::credits::{self, GrantFilter, NewCreditGrant, DEFAULT_CREDIT_TYPE_ID};
use grants_domain::entitlements::Label;
use grants_domain::kernel::IdempotencyKey;
use grants_domain::GrantId;

/// `listGrants`' page size when the request names none.
const DEFAULT_LIMIT: usize = 25;

/// Metronome: list credit grants with balances and deductions.
#[utoipa::path(post, path = "/v1/credits/listGrants", operation_id = "metronomeListGrants", tag = "metronome",
    params(("limit" = Option<usize>, Query, minimum = 1, maximum = 100), ("next_page" = Option<String>, Query)),
    request_body = Option<ListGrantsRequest>,
    responses(
        (status = 200, description = "A page of grants.", body = Page<GrantBody>),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 413, response = TooLarge), (status = 415, response = Unsupported),
    ))]
pub async fn list_grants<S: Store>(app: &App<S>, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let mut q = QueryParams::new(req);
    let limit = q.int("limit", 1, 100, DEFAULT_LIMIT);
    q.finish()?;
    let after = read_cursor(app, req, "g1").await?;
    let mut body = optional_body(req)?;
    let filter = GrantFilter {
        grant_ids: body.string_list("credit_grant_ids"),
        customer_ids: body.string_list("customer_ids"),
        credit_type_ids: body.string_list("credit_type_ids"),
        effective_before: body.optional_timestamp("effective_before"),
        not_expiring_before: body.optional_timestamp("not_expiring_before"),
    };
    body.finish()?;
    let other_ids = !filter.customer_ids.is_empty() || !filter.credit_type_ids.is_empty();
    if !filter.grant_ids.is_empty() && other_ids {
        return Err(ApiError::field(
            "credit_grant_ids",
            "exclusive",
            "must not be combined with customer_ids or credit_type_ids",
        ));
    }
    let store = app.store.as_ref();
    let (page, next) = credits::list_credit_grants(store, &who.tenant, &filter, limit, after.as_deref()).await?;
    let ids: Vec<&str> = page
        .iter()
        .flat_map(|g| {
            let d = &g.grant.details;
            [
                credits::type_id(g.grant.credit_type_id.as_deref()),
                d.paid_credit_type_id.as_deref().unwrap_or(DEFAULT_CREDIT_TYPE_ID),
            ]
        })
        .collect();
    let catalogue = credits::catalogue_covering(store, &app.credit_types, &who.tenant, &ids).await?;
    let now = app.clock.now();
    let next_page = match next {
        Some(id) => Some(cursor(app, "g1", &id).await?),
        None => None,
    };
    ok(&Page {
        data: page.iter().map(|g| GrantBody::new(g, &catalogue, now)).collect(),
        next_page,
    })
}

/// Reads `{amount, credit_type_id}` under `name`.
fn amount_with_type<T>(
    body: &mut JsonBody,
    name: &str,
    read: impl FnOnce(&mut JsonBody) -> Option<T>,
) -> (Option<T>, Option<String>) {
    let Some(mut inner) = body.object(name, true) else {
        return (None, None);
    };
    let amount = read(&mut inner);
    let credit_type = inner.required_string("credit_type_id");
    body.absorb(name, inner);
    (amount, credit_type)
}

/// createGrant's body, every field checked (all errors at once).
pub fn parse_create_grant(req: &ApiRequest) -> Result<NewCreditGrant, ApiError> {
    let mut body = JsonBody::parse(req)?;
    let customer_id = body.parsed("customer_id", true, Label::parse);
    let expires_at = body.required_timestamp("expires_at");
    let (amount, credit_type_id) = amount_with_type(&mut body, "grant_amount", |b| b.required_amount("amount"));
    let (paid, paid_type) = amount_with_type(&mut body, "paid_amount", |b| b.required_non_negative("amount"));
    let name = body.parsed("name", true, Label::parse);
    let priority = body.required_priority("priority");
    let effective_at = body.optional_timestamp("effective_at");
    let reason = body.parsed("reason", false, Label::parse).map(Label::into_string);
    let uniqueness_key = body.parsed("uniqueness_key", false, IdempotencyKey::parse);
    let custom_fields = body.optional_string_map("custom_fields");
    let credit_grant_type = body
        .parsed("credit_grant_type", false, Label::parse)
        .map(Label::into_string);
    let product_ids = body.string_list("product_ids");
    // Accepted and not used: invoice_date (no invoicing here), rollover_settings (see README).
    let _ = body.optional_timestamp("invoice_date");
    let _ = body.object("rollover_settings", false);
    body.finish()?;
    let (
        Some(customer_id),
        Some(expires_at),
        Some(amount),
        Some(credit_type_id),
        Some(paid_amount),
        Some(paid_type),
        Some(name),
        Some(priority),
    ) = (
        customer_id,
        expires_at,
        amount,
        credit_type_id,
        paid,
        paid_type,
        name,
        priority,
    )
    else {
        return Err(ApiError::internal());
    };
    let request = NewCreditGrant {
        customer_id,
        amount,
        credit_type_id,
        paid_amount,
        paid_credit_type_id: paid_type,
        name,
        priority,
        expires_at,
        effective_at,
        reason,
        uniqueness_key,
        custom_fields,
        credit_grant_type,
        product_ids,
    };
    Ok(request)
}

/// Metronome: create a credit grant.
///
/// Admin only.
#[utoipa::path(post, path = "/v1/credits/createGrant", operation_id = "metronomeCreateGrant", tag = "metronome",
    request_body = CreateGrantRequest,
    responses(
        (status = 200, description = "The grant's id.", body = IdBody),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound), (status = 409, response = Conflict),
        (status = 413, response = TooLarge), (status = 415, response = Unsupported),
        (status = 422, response = Unprocessable),
    ))]
pub async fn create_grant<S: Store>(app: &App<S>, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let request = parse_create_grant(req)?;
    let store = app.store.as_ref();
    let ids = [request.credit_type_id.as_str(), request.paid_credit_type_id.as_str()];
    let catalogue = credits::catalogue_covering(store, &app.credit_types, &who.tenant, &ids).await?;
    let grant = credits::create_credit_grant(store, app.clock.as_ref(), &catalogue, &who.tenant, request).await?;
    ok(&IdBody::new(grant.id.as_str()))
}

/// An id that cannot be ours is simply not found (no format is leaked).
fn grant_id(raw: Option<String>) -> Result<GrantId, ApiError> {
    raw.and_then(|id| GrantId::parse(&id).ok())
        .ok_or_else(credit_grant_not_found)
}

/// Metronome: void a credit grant.
///
/// Admin only.
#[utoipa::path(post, path = "/v1/credits/voidGrant", operation_id = "metronomeVoidGrant", tag = "metronome",
    request_body = VoidGrantRequest,
    responses(
        (status = 200, description = "The grant's id.", body = IdBody),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound),
        (status = 413, response = TooLarge), (status = 415, response = Unsupported),
    ))]
pub async fn void_grant<S: Store>(app: &App<S>, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let mut body = JsonBody::parse(req)?;
    let id = body.required_string("id");
    let release = body.optional_bool("release_uniqueness_key").unwrap_or(false);
    let _ = body.optional_bool("void_credit_purchase_invoice");
    body.finish()?;
    let id = grant_id(id)?;
    let grant = credits::void_credit_grant(app.store.as_ref(), app.clock.as_ref(), &who.tenant, &id, release).await?;
    ok(&IdBody::new(grant.id.as_str()))
}

/// Metronome: edit a credit grant's name, expiry or type.
///
/// Admin only.
#[utoipa::path(post, path = "/v1/credits/editGrant", operation_id = "metronomeEditGrant", tag = "metronome",
    request_body = EditGrantRequest,
    responses(
        (status = 200, description = "The grant's id.", body = IdBody),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound), (status = 409, response = Conflict),
        (status = 413, response = TooLarge), (status = 415, response = Unsupported),
        (status = 422, response = Unprocessable),
    ))]
pub async fn edit_grant<S: Store>(app: &App<S>, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let mut body = JsonBody::parse(req)?;
    let id = body.required_string("id");
    let name = body.parsed("name", false, Label::parse);
    let expires_at = body.optional_timestamp("expires_at");
    let credit_grant_type = body
        .parsed("credit_grant_type", false, Label::parse)
        .map(Label::into_string);
    body.finish()?;
    let id = grant_id(id)?;
    let grant = credits::edit_credit_grant(
        app.store.as_ref(),
        &who.tenant,
        &id,
        name,
        expires_at,
        credit_grant_type,
    )
    .await?;
    ok(&IdBody::new(grant.id.as_str()))
}
