//! The tenant's credit-type catalogue (`/v1/credit-types`): list, create.
use super::ok;
use super::wire::{CreditTypeBody, CreditTypes, NewCreditTypeRequest};
use crate::body::JsonBody;
use crate::openapi::{BadRequest, Conflict, Forbidden, TooLarge, Unauthorized, Unsupported};
use crate::{ApiError, ApiRequest, ApiResponse, App, Store};
use grants_domain::auth::Principal;
use grants_domain::credits;
use grants_domain::entitlements::Label;
use http::StatusCode;

/// The tenant's credit types, the default USD (cents) first.
#[utoipa::path(get, path = "/v1/credit-types", operation_id = "listCreditTypes", tag = "metronome",
    responses(
        (status = 200, description = "The tenant's credit types.", body = CreditTypes),
        (status = 401, response = Unauthorized),
    ))]
pub async fn list_credit_types<S: Store>(
    app: &App<S>,
    who: &Principal,
    _req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let catalogue = credits::catalogue(app.store.as_ref(), &app.credit_types, &who.tenant).await?;
    ok(&CreditTypes {
        data: catalogue.iter().map(CreditTypeBody::from).collect(),
    })
}

/// Add a credit type to the tenant's catalogue.
///
/// Admin only.
#[utoipa::path(post, path = "/v1/credit-types", operation_id = "createCreditType", tag = "metronome",
    request_body = NewCreditTypeRequest,
    responses(
        (status = 201, description = "The credit type.", body = CreditTypeBody),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 409, response = Conflict),
        (status = 413, response = TooLarge), (status = 415, response = Unsupported),
    ))]
pub async fn create_credit_type<S: Store>(
    app: &App<S>,
    who: &Principal,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let mut body = JsonBody::parse(req)?;
    let name = body.parsed("name", true, Label::parse);
    body.finish()?;
    let name = name.ok_or_else(ApiError::internal)?;
    let ct = credits::create_credit_type(app.store.as_ref(), &app.credit_types, &who.tenant, name).await?;
    Ok(ApiResponse::json(StatusCode::CREATED, &CreditTypeBody::from(&ct)))
}
