//! The DynamoDB adapter: every storage port of `grants-domain` on one table (key layout in
//! [`schema`]). The only crate that depends on `aws-sdk-dynamodb`.
mod api_keys;
mod attributes;
mod capacity;
mod client;
mod credit_types;
mod entitlements;
mod events;
mod grants;
mod group_commit;
mod ledger;
mod messages;
mod meters;
mod periods;
mod plans;
mod prelude;
mod purchases;
pub mod round_trips;
pub mod schema;
mod tenants;
mod usage;
mod webhooks;

pub use client::DynamoStore;
