//! Each domain operation's error as HTTP: its status, code, message and details.
use super::ApiError;
use grants_domain::capacity::{CreateCapacityError, DeleteCapacityError, ResellCapacityError};
use grants_domain::credits::{CreateCreditGrantError, CreditTypeError, EditCreditGrantError, VoidCreditGrantError};
use grants_domain::entitlements::{CreateEntitlementError, EntitlementLookupError};
use grants_domain::grants::{CreateGrantError, GrantLookupError, ListGrantsError};
use grants_domain::plans::{CreatePlanError, DeletePlanError, PlanLookupError, UpdatePlanError};
use grants_domain::purchases::{InvoiceLookupError, PurchaseError};
use grants_domain::usage::{SettleError, UsageError};
use http::StatusCode;
use serde_json::json;

fn entitlement_not_found() -> ApiError {
    ApiError::not_found("entitlement_not_found", "Entitlement not found")
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
            GrantLookupError::NotFound => ApiError::not_found("grant_not_found", "Grant not found"),
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

fn idempotency_mismatch(fields: Vec<String>) -> ApiError {
    ApiError::conflict(
        "idempotency_key_reused",
        format!(
            "idempotencyKey was already used with different parameters: {}",
            fields.join(", ")
        ),
        json!({ "differingFields": fields }),
    )
}

fn rollover(e: grants_domain::grants::RolloverBoundsError) -> ApiError {
    use grants_domain::grants::RolloverBoundsError as R;
    match e {
        R::Inverted => ApiError::field("resetMinRollover", "invalid_range", "must not exceed resetMaxRollover"),
        R::AboveAmount => ApiError::field("resetMinRollover", "invalid_range", "must not exceed amount"),
    }
}

impl From<PurchaseError> for ApiError {
    fn from(e: PurchaseError) -> Self {
        match e {
            PurchaseError::EntitlementNotFound => entitlement_not_found(),
            PurchaseError::Rollover(r) => rollover(r),
            PurchaseError::MembersMayNotPurchase => Self::new(
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
            InvoiceLookupError::NotFound => ApiError::not_found("invoice_not_found", "Invoice not found"),
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
            UsageError::TooManyGrants(n) => ApiError::unprocessable(
                "too_many_grants",
                format!(
                    "This usage would draw on {n} grants; one event can draw on at most {}. Send it as smaller events.",
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

impl From<CreateCreditGrantError> for ApiError {
    fn from(e: CreateCreditGrantError) -> Self {
        match e {
            CreateCreditGrantError::UnknownCreditType(field) => {
                ApiError::field(field, "unknown_credit_type", "is not one of the tenant's credit types")
            }
            CreateCreditGrantError::CustomerNotFound => ApiError::not_found(
                "customer_not_found",
                "Customer not found: no active entitlement of that customer in that credit type",
            ),
            CreateCreditGrantError::ExpiresNotAfterEffective => {
                ApiError::field("expires_at", "invalid_range", "must be after effective_at")
            }
            CreateCreditGrantError::UniquenessKeyUsed => ApiError::conflict(
                "uniqueness_key_used",
                "A credit grant with this uniqueness_key already exists",
                json!({}),
            ),
            CreateCreditGrantError::Store(s) => s.into(),
        }
    }
}

fn credit_grant_not_found() -> ApiError {
    ApiError::not_found("credit_grant_not_found", "Credit grant not found")
}

impl From<VoidCreditGrantError> for ApiError {
    fn from(e: VoidCreditGrantError) -> Self {
        match e {
            VoidCreditGrantError::NotFound => credit_grant_not_found(),
            VoidCreditGrantError::Store(s) => s.into(),
        }
    }
}

impl From<EditCreditGrantError> for ApiError {
    fn from(e: EditCreditGrantError) -> Self {
        match e {
            EditCreditGrantError::NotFound => credit_grant_not_found(),
            EditCreditGrantError::ExpiresNotAfterEffective => {
                ApiError::field("expires_at", "invalid_range", "must be after effective_at")
            }
            EditCreditGrantError::ExpiresBeforeUsage(t) => ApiError::field(
                "expires_at",
                "invalid_range",
                format!("must be after {}, when usage last drew on this grant", t.to_rfc3339()),
            ),
            EditCreditGrantError::Store(s) => s.into(),
        }
    }
}

impl From<CreditTypeError> for ApiError {
    fn from(e: CreditTypeError) -> Self {
        match e {
            CreditTypeError::Exists(ct) => ApiError::conflict(
                "credit_type_exists",
                format!("A credit type named {} exists", ct.name),
                json!({ "id": ct.id, "name": ct.name }),
            ),
            CreditTypeError::Store(s) => s.into(),
        }
    }
}

impl From<CreateCapacityError> for ApiError {
    fn from(e: CreateCapacityError) -> Self {
        match e {
            CreateCapacityError::EndsNotAfterStart => {
                ApiError::field("ends_at", "invalid_range", "must be after starts_at")
            }
            CreateCapacityError::BuybackAboveUnitPrice(field) => {
                ApiError::field(field, "invalid_range", "must not exceed unit_price")
            }
            CreateCapacityError::IdempotencyMismatch(fields) => idempotency_mismatch(fields),
            CreateCapacityError::Store(s) => s.into(),
        }
    }
}

impl From<DeleteCapacityError> for ApiError {
    fn from(e: DeleteCapacityError) -> Self {
        match e {
            DeleteCapacityError::NotFound => ApiError::not_found("grant_not_found", "Grant not found"),
            DeleteCapacityError::Store(s) => s.into(),
        }
    }
}

impl From<ResellCapacityError> for ApiError {
    fn from(e: ResellCapacityError) -> Self {
        let state = |code: &'static str, e: &ResellCapacityError| ApiError::conflict(code, e.to_string(), json!({}));
        match e {
            ResellCapacityError::NotFound => ApiError::not_found("grant_not_found", "Grant not found"),
            ResellCapacityError::QuantityNotLess(q) => ApiError::field(
                "new_quantity",
                "invalid_range",
                format!("must be greater than 0 and less than the current quantity {q}"),
            ),
            ResellCapacityError::Deleted => state("grant_deleted", &e),
            ResellCapacityError::AlreadyResold => state("grant_already_resold", &e),
            ResellCapacityError::Expired => state("grant_expired", &e),
            ResellCapacityError::Concurrent => state("concurrent_update", &e),
            ResellCapacityError::Store(s) => s.into(),
        }
    }
}

fn plan_end_not_after_start() -> ApiError {
    ApiError::field("end_date", "invalid_range", "must be after start_date")
}

/// A plan write that lost the race with another (`e`'s message says so).
fn plan_concurrent(e: &impl std::fmt::Display) -> ApiError {
    ApiError::conflict("concurrent_update", e.to_string(), json!({}))
}

impl From<CreatePlanError> for ApiError {
    fn from(e: CreatePlanError) -> Self {
        match e {
            CreatePlanError::EndNotAfterStart => plan_end_not_after_start(),
            CreatePlanError::IdempotencyMismatch(fields) => idempotency_mismatch(fields),
            CreatePlanError::Store(s) => s.into(),
        }
    }
}

impl From<PlanLookupError> for ApiError {
    fn from(e: PlanLookupError) -> Self {
        match e {
            PlanLookupError::NotFound => credit_grant_not_found(),
            PlanLookupError::Store(s) => s.into(),
        }
    }
}

impl From<UpdatePlanError> for ApiError {
    fn from(e: UpdatePlanError) -> Self {
        match e {
            UpdatePlanError::NotFound => credit_grant_not_found(),
            UpdatePlanError::EndNotAfterStart => plan_end_not_after_start(),
            UpdatePlanError::Concurrent => plan_concurrent(&e),
            UpdatePlanError::Store(s) => s.into(),
        }
    }
}

impl From<DeletePlanError> for ApiError {
    fn from(e: DeletePlanError) -> Self {
        match e {
            DeletePlanError::NotFound => credit_grant_not_found(),
            DeletePlanError::Concurrent => plan_concurrent(&e),
            DeletePlanError::Store(s) => s.into(),
        }
    }
}
