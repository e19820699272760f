//! The Flexprice credit-grants surface (`/v1/creditgrants`): JSON in, domain call, JSON out. No
//! business rules here. Errors on these routes take Flexprice's merged shape
//! ([`crate::ApiError::into_flexprice_response`]).
//!
//! `plans.rs` holds the handlers, `wire.rs` the JSON shapes, `requests.rs` the create request's
//! parsing; `errors.rs` maps the plan operations' errors to HTTP.
mod errors;
pub mod plans;
mod requests;
pub mod wire;

pub use plans::{create, delete, get, list, update};
pub use requests::parse_create;
pub use wire::{Credits, PlanBody};
