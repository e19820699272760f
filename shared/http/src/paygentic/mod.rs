//! The Paygentic entitlement-grants surface: JSON in, domain call, JSON out. No business rules here.
//!
//! `entitlements.rs` holds entitlements, `grants.rs` grants, `purchases.rs` grant purchases and
//! their invoices, `usage.rs` usage and balances; `errors.rs` maps their domain errors to HTTP.
//! This file holds what they share: numbers, instants, lists, and the entitlement in the path.
use crate::wire::{ListTag, Pagination};
use crate::{ApiError, ApiRequest, ApiResponse};
use grants_domain::kernel::Page;
use grants_domain::{EntitlementId, Timestamp};
use http::StatusCode;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

pub mod entitlements;
mod errors;
pub mod events;
pub mod grants;
pub mod meters;
pub mod purchases;
pub mod usage;
pub mod webhooks;

pub use entitlements::{
    cancel_entitlement, create_entitlement, get_entitlement, list_entitlements, parse_new_entitlement, EntitlementBody,
    EntitlementListItem,
};
pub use events::{ingest_event, EventBody};
pub use grants::{create_grant, get_grant, list_grants, parse_create_grant, void_grant, GrantBody};
pub use meters::{create_billable_metric, get_billable_metric, list_billable_metrics, MetricBody};
pub use purchases::{get_invoice, purchase_grant, InvoiceBody, PurchaseBody};
pub use usage::{commit_usage, get_balance, record_usage, release_usage, BalanceBody, UsageBody};
pub use webhooks::{
    disable_webhooks, enable_webhooks, get_webhook_portal, get_webhooks, update_webhooks, WebhookPortalBody,
    WebhooksBody,
};

/// A page in Paygentic's shape: `{object: "list", data, pagination}`.
#[derive(Serialize, ToSchema)]
pub struct List<T> {
    #[schema(inline)]
    pub object: ListTag,
    pub data: Vec<T>,
    pub pagination: Pagination,
}

impl<T> List<T> {
    pub fn new<U>(page: &Page<U>) -> Self
    where
        T: for<'u> From<&'u U>,
    {
        Self {
            object: ListTag,
            data: page.items.iter().map(T::from).collect(),
            pagination: Pagination {
                total: page.total,
                limit: page.limit,
                offset: page.offset,
            },
        }
    }
}

/// `id` in the path: an entitlement.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct EntitlementPath {
    /// An entitlement id (ent_...).
    pub id: String,
}

fn ok<T: Serialize>(value: &T) -> Result<ApiResponse, ApiError> {
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
