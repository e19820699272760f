//! The Metronome credit-grants surface (`/v1/credits/...`) and the credit-type catalogue
//! (`/v1/credit-types`): JSON in, domain call, JSON out. No business rules here.
//!
//! `grants.rs` holds the grant operations (list, create, void, edit), `entries.rs` the customers'
//! ledgers (`listEntries`), `credit_types.rs` the catalogue, `cursors.rs` the signed page cursors;
//! `errors.rs` maps their domain errors to HTTP; `wire.rs` holds the JSON shapes.
use crate::body::JsonBody;
use crate::{ApiError, ApiRequest, ApiResponse};
use http::StatusCode;
use serde::Serialize;

pub mod credit_types;
mod cursors;
pub mod entries;
mod errors;
pub mod grants;
pub mod wire;

pub use credit_types::{create_credit_type, list_credit_types};
pub use entries::list_entries;
pub use grants::{create_grant, edit_grant, list_grants, parse_create_grant, void_grant};

/// Who the ledger says made an entry.
const CREATED_BY: &str = "grants-service";

fn ok<T: Serialize>(value: &T) -> Result<ApiResponse, ApiError> {
    Ok(ApiResponse::json(StatusCode::OK, value))
}

/// The body of a POST whose body is optional (all filters): `{}` when empty.
fn optional_body(req: &ApiRequest) -> Result<JsonBody, ApiError> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        JsonBody::from_slice(b"{}")
    } else {
        JsonBody::parse(req)
    }
}
