//! The credit-grants domain shared by every Lambda function.
//!
//! Layers, innermost first:
//! - [`domain`]: the model (validated newtypes), the business rules and one error enum per operation.
//!   Free of AWS and HTTP types.
//! - [`store`]: the persistence trait the domain talks to, and its DynamoDB implementation.
//! - [`api`]: the HTTP surface: auth, request parsing, routes, JSON shapes, error mapping (one place).
//! - [`lambda`]: the adapter from `lambda_http` events to [`api`] and back, used by the ~10-line mains.
pub mod admin;
pub mod api;
pub mod config;
pub mod domain;
pub mod fulfilment;
pub mod http_client;
pub mod lambda;
pub mod local;
pub mod queue;
pub mod store;
pub mod telemetry;

pub use api::{App, Route};
