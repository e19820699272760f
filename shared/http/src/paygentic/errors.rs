//! The Paygentic operations' errors as HTTP: entitlements, grants, purchases and invoices, usage,
//! billable metrics.
use crate::error::idempotency_mismatch;
use crate::ApiError;
use grants_domain::entitlements::{CreateEntitlementError, EntitlementLookupError};
use grants_domain::grants::{CreateGrantError, GrantLookupError, ListGrantsError, RolloverBoundsError};
use grants_domain::ingest::IngestError;
use grants_domain::meters::{CreateMetricError, ListMetricsError, MetricLookupError};
use grants_domain::payments::ProviderError;
use grants_domain::purchases::{InvoiceLookupError, PurchaseError};
use grants_domain::usage::{SettleError, UsageError};
use grants_domain::webhook_portal::PortalError;
use grants_domain::webhooks::{EnableWebhooksError, WebhooksLookupError};
use http::StatusCode;
use serde_json::json;

pub(super) fn entitlement_not_found() -> ApiError {
    ApiError::not_found("entitlement_not_found", "Entitlement not found")
}

pub(super) fn grant_not_found() -> ApiError {
    ApiError::not_found("grant_not_found", "Grant not found")
}

pub(super) fn invoice_not_found() -> ApiError {
    ApiError::not_found("invoice_not_found", "Invoice not found")
}

pub(super) fn metric_not_found() -> ApiError {
    ApiError::not_found("billable_metric_not_found", "Billable metric not found")
}

fn merchant_not_found() -> ApiError {
    ApiError::not_found(
        "merchant_not_found",
        "No such merchant (merchantId must be the key's organization)",
    )
}

fn webhooks_not_configured() -> ApiError {
    ApiError::not_found(
        "webhooks_not_enabled",
        "Webhooks have not been enabled (POST /v0/webhooks enables them)",
    )
}

impl From<EnableWebhooksError> for ApiError {
    fn from(e: EnableWebhooksError) -> Self {
        match e {
            EnableWebhooksError::MerchantNotFound => merchant_not_found(),
            // Paygentic's code for it.
            EnableWebhooksError::AlreadyConfigured => ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "DUPLICATE_RESOURCE",
                e.to_string(),
            ),
            EnableWebhooksError::Store(s) => s.into(),
        }
    }
}

impl From<WebhooksLookupError> for ApiError {
    fn from(e: WebhooksLookupError) -> Self {
        match e {
            WebhooksLookupError::MerchantNotFound => merchant_not_found(),
            WebhooksLookupError::NotConfigured => webhooks_not_configured(),
            WebhooksLookupError::Store(s) => s.into(),
        }
    }
}

impl From<PortalError> for ApiError {
    fn from(e: PortalError) -> Self {
        match e {
            PortalError::MerchantNotFound => merchant_not_found(),
            PortalError::NotConfigured | PortalError::LinkNotFound => webhooks_not_configured(),
            PortalError::Store(s) => s.into(),
        }
    }
}

impl From<CreateMetricError> for ApiError {
    fn from(e: CreateMetricError) -> Self {
        match e {
            CreateMetricError::MerchantNotFound => merchant_not_found(),
            CreateMetricError::EventTypeTaken { .. } => ApiError::conflict(
                "event_type_metered",
                format!("{e}; one billable metric per event type"),
                json!({}),
            ),
            CreateMetricError::Store(s) => s.into(),
        }
    }
}

impl From<MetricLookupError> for ApiError {
    fn from(e: MetricLookupError) -> Self {
        match e {
            MetricLookupError::NotFound => metric_not_found(),
            MetricLookupError::Store(s) => s.into(),
        }
    }
}

impl From<ListMetricsError> for ApiError {
    fn from(e: ListMetricsError) -> Self {
        match e {
            ListMetricsError::MerchantNotFound => merchant_not_found(),
            ListMetricsError::Store(s) => s.into(),
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Value { ref path, .. } => {
                let field = format!("data{}", path.trim_start_matches('$'));
                let message = e.to_string();
                let message = message.trim_start_matches(&format!("{field}: ")).to_owned();
                ApiError::field(&field, "invalid", message)
            }
            IngestError::InFuture => ApiError::field("timestamp", "invalid", "must not be in the future"),
            IngestError::IdempotencyMismatch(fields) => idempotency_mismatch(fields),
            IngestError::Apply(u) => u.into(),
            IngestError::Store(s) => s.into(),
        }
    }
}

fn rollover(e: RolloverBoundsError) -> ApiError {
    match e {
        RolloverBoundsError::Inverted => {
            ApiError::field("resetMinRollover", "invalid_range", "must not exceed resetMaxRollover")
        }
        RolloverBoundsError::AboveAmount => {
            ApiError::field("resetMinRollover", "invalid_range", "must not exceed amount")
        }
    }
}

impl From<CreateGrantError> for ApiError {
    fn from(e: CreateGrantError) -> Self {
        match e {
            CreateGrantError::EntitlementNotFound => entitlement_not_found(),
            CreateGrantError::EntitlementNotActive(status) => ApiError::unprocessable(
                "entitlement_not_active",
                format!("Entitlement is {status}; grants need an active entitlement"),
            ),
            CreateGrantError::ExpiresNotAfterEffective => {
                ApiError::field("expiresAt", "invalid_range", "must be after effectiveAt")
            }
            CreateGrantError::Rollover(r) => rollover(r),
            CreateGrantError::IdempotencyMismatch(fields) => idempotency_mismatch(fields),
            CreateGrantError::Store(s) => s.into(),
        }
    }
}

impl From<GrantLookupError> for ApiError {
    fn from(e: GrantLookupError) -> Self {
        match e {
            GrantLookupError::NotFound => grant_not_found(),
            GrantLookupError::Store(s) => s.into(),
        }
    }
}

impl From<ListGrantsError> for ApiError {
    fn from(e: ListGrantsError) -> Self {
        match e {
            ListGrantsError::EntitlementNotFound => entitlement_not_found(),
            ListGrantsError::Store(s) => s.into(),
        }
    }
}

impl From<EntitlementLookupError> for ApiError {
    fn from(e: EntitlementLookupError) -> Self {
        match e {
            EntitlementLookupError::NotFound => entitlement_not_found(),
            EntitlementLookupError::Store(s) => s.into(),
        }
    }
}

impl From<CreateEntitlementError> for ApiError {
    fn from(e: CreateEntitlementError) -> Self {
        match e {
            CreateEntitlementError::UnknownPricingUnit => ApiError::field(
                "pricingUnitId",
                "unknown_credit_type",
                "is not one of the tenant's credit types",
            ),
            CreateEntitlementError::PeriodInverted => {
                ApiError::field("currentPeriodEnd", "invalid_range", "must be after currentPeriodStart")
            }
            CreateEntitlementError::PeriodTooShort => ApiError::field(
                "currentPeriodEnd",
                "period_too_short",
                "must be at least one hour (3600 seconds) after currentPeriodStart",
            ),
            CreateEntitlementError::Store(s) => s.into(),
        }
    }
}

impl From<PurchaseError> for ApiError {
    fn from(e: PurchaseError) -> Self {
        match e {
            PurchaseError::EntitlementNotFound => entitlement_not_found(),
            PurchaseError::Rollover(r) => rollover(r),
            PurchaseError::MembersMayNotPurchase => ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "admin_required",
                "Purchases need an admin API key unless the tenant allows members to purchase",
            ),
            PurchaseError::PriceBelowMinimum { minimum } => ApiError::field(
                "price",
                "below_minimum",
                format!("must be at least {minimum} for this amount (the tenant's minimum price per credit)"),
            ),
            PurchaseError::RedirectNotAllowed { field, allowed } => ApiError::field(
                field,
                "origin_not_allowed",
                if allowed.is_empty() {
                    "must be an https URL (and needs the tenant's allowed redirect origins outside the sandbox)"
                        .to_owned()
                } else {
                    format!("must be on one of the tenant's allowed origins: {}", allowed.join(", "))
                },
            ),
            PurchaseError::EntitlementNotActive(status) => ApiError::unprocessable(
                "entitlement_not_active",
                format!("Entitlement is {status}; purchases need an active entitlement"),
            ),
            PurchaseError::InvalidPrice(p) => ApiError::field("price", p.code(), p.to_string()),
            PurchaseError::ExpiresNotAfterEffective => {
                ApiError::field("expiresAt", "invalid_range", "must be after effectiveAt")
            }
            PurchaseError::PaymentWindow => ApiError::field(
                "paymentExpiresAt",
                "invalid_range",
                "must be in the future and at most 30 days away",
            ),
            PurchaseError::IdempotencyMismatch(fields) => idempotency_mismatch(fields),
            PurchaseError::Provider(ProviderError::Refused(why)) => {
                tracing::warn!(reason = %why, "payment provider refused the purchase");
                ApiError::unprocessable("payment_provider_refused", why)
            }
            PurchaseError::Provider(p) => {
                tracing::error!(error = %p, "payment provider unavailable");
                ApiError::unavailable()
            }
            PurchaseError::Tenant(t) => t.into(),
            PurchaseError::Store(s) => s.into(),
        }
    }
}

impl From<InvoiceLookupError> for ApiError {
    fn from(e: InvoiceLookupError) -> Self {
        match e {
            InvoiceLookupError::NotFound => invoice_not_found(),
            InvoiceLookupError::Store(s) => s.into(),
        }
    }
}

impl From<UsageError> for ApiError {
    fn from(e: UsageError) -> Self {
        match e {
            UsageError::EntitlementNotFound => entitlement_not_found(),
            UsageError::EntitlementNotActive(status) => ApiError::unprocessable(
                "entitlement_not_active",
                format!("Entitlement is {status}; usage needs an active entitlement"),
            ),
            UsageError::OccurredInFuture => ApiError::field("occurredAt", "invalid_range", "must not be in the future"),
            UsageError::TooManyGrantsToHold(n) => ApiError::unprocessable(
                "too_many_grants",
                format!(
                    "This pending usage would hold {n} grants; one pending event can hold at most {}. Send it as smaller events, or as committed usage (any number of grants).",
                    grants_domain::usage::MAX_GRANTS_PER_EVENT
                ),
            ),
            UsageError::IdempotencyMismatch(fields) => ApiError::conflict(
                "event_id_reused",
                format!(
                    "eventId was already recorded with different parameters: {}",
                    fields.join(", ")
                ),
                json!({ "differingFields": fields }),
            ),
            UsageError::Store(s) => s.into(),
        }
    }
}

impl From<SettleError> for ApiError {
    fn from(e: SettleError) -> Self {
        match e {
            SettleError::EntitlementNotFound => entitlement_not_found(),
            SettleError::UsageNotFound => ApiError::not_found("usage_not_found", "Usage event not found"),
            SettleError::WrongState(status) => ApiError::conflict(
                "usage_not_pending",
                format!("Usage event is {status}, not pending"),
                json!({ "status": status }),
            ),
            SettleError::Store(s) => s.into(),
        }
    }
}
