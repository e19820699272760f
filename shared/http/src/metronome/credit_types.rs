//! The tenant's credit-type catalogue (`/v1/credit-types`): list, create.
use super::ok;
use crate::body::JsonBody;
use crate::{ApiError, ApiRequest, ApiResponse, App, Store};
use grants_domain::auth::Principal;
use grants_domain::credits;
use grants_domain::entitlements::Label;
use http::StatusCode;
use serde_json::json;

pub async fn list_credit_types<S: Store>(
    app: &App<S>,
    who: &Principal,
    _req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let catalogue = credits::catalogue(app.store.as_ref(), &app.credit_types, &who.tenant).await?;
    ok(&json!({
        "data": catalogue.iter().map(|c| json!({ "id": c.id, "name": c.name })).collect::<Vec<_>>(),
    }))
}

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
    Ok(ApiResponse::json(
        StatusCode::CREATED,
        &json!({ "id": ct.id, "name": ct.name }),
    ))
}
