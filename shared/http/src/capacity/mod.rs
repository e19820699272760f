//! The capacity-grants surface (`/v2/grants`): JSON in, domain call, JSON out. No business rules
//! here.
//!
//! `grants.rs` holds the handlers and the grant's JSON form; `errors.rs` maps the capacity
//! operations' errors to HTTP.
mod errors;
pub mod grants;

pub use grants::{create, delete, list, parse_create, resell, GrantBody};
