//! The Flexprice credit-grants surface (`/v1/creditgrants`): JSON in, domain call, JSON out. No
//! business rules here. Errors on these routes take Flexprice's merged shape
//! ([`crate::ApiError::into_flexprice_response`]).
//!
//! `plans.rs` holds the handlers and the plan's JSON form, `requests.rs` the create request's
//! parsing; `errors.rs` maps the plan operations' errors to HTTP.
mod errors;
mod plans;
mod requests;

pub use plans::{create, delete, get, list, plan_json, update, Credits};
pub use requests::parse_create;
