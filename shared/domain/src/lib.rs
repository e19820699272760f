//! The domain: model, validation and operations. No AWS or HTTP types live here.
#![warn(unreachable_pub)]
pub mod amount;
pub mod auth;
pub mod balances;
pub mod cache;
pub mod capacity;
pub mod combining;
#[cfg(any(test, feature = "contract"))]
pub mod contract;
pub mod credits;
mod entitlement_store;
pub mod entitlements;
pub mod grants;
pub mod group_commit;
mod ids;
pub mod ingest;
pub mod kernel;
pub mod ledger;
pub mod memory;
pub mod messaging;
pub mod meters;
pub mod model;
pub mod money;
pub mod payments;
pub mod periods;
pub mod plans;
pub mod ports;
pub mod purchases;
pub mod secrets;
pub mod tenants;
mod time;
pub mod usage;
pub mod webhook_delivery;
pub mod webhook_endpoints;
pub mod webhook_messages;
pub mod webhook_portal;
pub mod webhooks;

pub use amount::{CreditAmount, NonNegative, Priority};
pub use ids::{AttemptId, CapacityGrantId, EntitlementId, EventId, GrantId, IdError, InvoiceId, SessionId, TenantId};
pub use time::{Clock, SystemClock, Timestamp, TimestampError};
