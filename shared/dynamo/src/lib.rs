//! The DynamoDB adapter: every storage port of `grants-domain` on one table (key layout in
//! [`schema`]). The only crate that depends on `aws-sdk-dynamodb`.
pub mod round_trips;
pub mod schema;
mod store;

pub use store::DynamoStore;
