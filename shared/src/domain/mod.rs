//! The domain: model, validation and operations. No AWS or HTTP types live here.
pub mod amount;
pub mod auth;
pub mod entitlements;
pub mod grants;
pub mod ids;
pub mod model;
pub mod time;

pub use amount::{CreditAmount, NonNegative, Priority};
pub use ids::{EntitlementId, GrantId, TenantId};
pub use time::{Clock, SystemClock, Timestamp};
