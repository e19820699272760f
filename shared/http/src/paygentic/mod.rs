//! The Paygentic entitlement-grants surface: JSON in, domain call, JSON out. No business rules here.
//!
//! `entitlements.rs` holds entitlements, `grants.rs` grants, `purchases.rs` grant purchases and
//! their invoices, `usage.rs` usage and balances; `errors.rs` maps their domain errors to HTTP.
//! This file holds what they share: numbers, instants, lists, and the entitlement in the path.
use crate::{ApiError, ApiRequest, ApiResponse};
use grants_domain::kernel::Page;
use grants_domain::{EntitlementId, Timestamp};
use http::StatusCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::str::FromStr;

mod entitlements;
mod errors;
mod grants;
mod purchases;
mod usage;

pub use entitlements::{
    cancel_entitlement, create_entitlement, entitlement_json, get_entitlement, list_entitlements, parse_new_entitlement,
};
pub use grants::{create_grant, get_grant, grant_json, list_grants, parse_create_grant, void_grant};
pub use purchases::{get_invoice, invoice_json, purchase_grant, purchase_json};
pub use usage::{balance_json, commit_usage, get_balance, record_usage, release_usage, usage_json};

/// A decimal as an exact JSON number (serde_json's arbitrary precision keeps every digit).
pub fn num(d: Decimal) -> Value {
    serde_json::Number::from_str(&d.normalize().to_string())
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

fn time(t: Timestamp) -> Value {
    Value::String(t.to_rfc3339())
}

fn opt_time(t: Option<Timestamp>) -> Value {
    t.map(time).unwrap_or(Value::Null)
}

fn list_json<T>(page: &Page<T>, item: impl Fn(&T) -> Value) -> Value {
    json!({
        "object": "list",
        "data": page.items.iter().map(item).collect::<Vec<_>>(),
        "pagination": { "total": page.total, "limit": page.limit, "offset": page.offset },
    })
}

fn ok(value: &Value) -> Result<ApiResponse, ApiError> {
    Ok(ApiResponse::json(StatusCode::OK, value))
}

/// An id in the path that cannot be ours is simply not found (no format is leaked).
fn entitlement_in_path(req: &ApiRequest) -> Result<EntitlementId, ApiError> {
    EntitlementId::parse(req.param("id")).map_err(|_| errors::entitlement_not_found())
}

/// An optional RFC 3339 instant in the query string.
fn query_time(req: &ApiRequest, name: &str) -> Result<Option<Timestamp>, ApiError> {
    match req.query_value(name).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(raw) => Timestamp::parse(raw)
            .map(Some)
            .map_err(|e| ApiError::field(name, "invalid", e.to_string())),
    }
}
