//! Every failure a client can see, and the one place where domain errors become HTTP.
use crate::ApiResponse;
use grants_domain::auth::AuthError;
use grants_domain::capacity::{CapacityError, CreateCapacityError};
use grants_domain::credits::{CreateCreditGrantError, CreditGrantError, CreditTypeError};
use grants_domain::entitlements::{CreateEntitlementError, EntitlementLookupError};
use grants_domain::grants::{CreateGrantError, GrantLookupError};
use grants_domain::plans::PlanError;
use grants_domain::ports::StoreError;
use grants_domain::purchases::{InvoiceLookupError, PurchaseError};
use grants_domain::tenants::TenantError;
use grants_domain::usage::{SettleError, UsageError};
use http::StatusCode;
use serde_json::{json, Value};

/// One invalid field.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
    pub code: String,
}

impl FieldError {
    pub fn new(field: &str, code: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    /// The error kind (`validation_error`, `not_found`, ...).
    pub kind: &'static str,
    /// A machine code naming the exact condition.
    pub code: &'static str,
    pub message: String,
    pub details: Option<Box<Value>>,
    pub fields: Vec<FieldError>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            code,
            message: message.into(),
            details: None,
            fields: Vec::new(),
        }
    }

    pub fn validation(fields: Vec<FieldError>) -> Self {
        let message = match fields.as_slice() {
            [one] => format!("Invalid request: {} {}", one.field, one.message),
            many => format!(
                "Invalid request: {}",
                many.iter()
                    .map(|f| format!("{} {}", f.field, f.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        };
        Self {
            fields,
            ..Self::new(StatusCode::BAD_REQUEST, "validation_error", "validation_error", message)
        }
    }
    pub fn field(field: &str, code: &'static str, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError::new(field, code, message)])
    }
    pub fn not_found(code: &'static str, message: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", code, message)
    }
    pub fn conflict(code: &'static str, message: impl Into<String>, details: Value) -> Self {
        Self {
            details: Some(Box::new(details)),
            ..Self::new(StatusCode::CONFLICT, "conflict", code, message)
        }
    }
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "unprocessable", code, message)
    }
    pub fn unauthorized(message: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "invalid_api_key", message)
    }
    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "admin_required",
            "This operation requires an admin API key",
        )
    }
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "payload_too_large",
            format!("Request body exceeds {limit} bytes"),
        )
    }
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "storage_unavailable",
            "Temporarily unavailable; retry",
        )
    }
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "internal_error",
            "Internal error",
        )
    }

    /// The Paygentic error body: `{message, error, code, details?, errors?}`.
    pub fn to_json(&self) -> Value {
        let mut body = json!({ "message": self.message, "error": self.kind, "code": self.code });
        if let Some(d) = &self.details {
            body["details"] = (**d).clone();
        }
        if !self.fields.is_empty() {
            body["errors"] = self
                .fields
                .iter()
                .map(|f| json!({ "field": f.field, "message": f.message, "code": f.code }))
                .collect();
        }
        body
    }

    /// Flexprice's error shape merged with ours: `{code, message, http_status_code, success: false,
    /// error: {message, details}}` plus `errors` for invalid fields.
    pub fn into_flexprice_response(self) -> ApiResponse {
        let mut body = self.to_json();
        // Flexprice's own error codes; ours moves into error.details.code.
        let code = match self.status.as_u16() {
            400 | 413 | 422 => "validation_error",
            401 | 403 => "permission_denied",
            404 => "not_found",
            409 => "version_conflict",
            429 => "too_many_requests",
            503 => "service_unavailable",
            _ => "internal_error",
        };
        let mut details = self.details.as_deref().cloned().unwrap_or_else(|| json!({}));
        if let Some(d) = details.as_object_mut() {
            d.insert("code".to_owned(), json!(self.code));
        }
        body["code"] = json!(code);
        body["http_status_code"] = json!(self.status.as_u16());
        body["success"] = json!(false);
        body["error"] = json!({ "message": self.message, "details": details });
        let mut response = self.into_response();
        response.body = body.to_string();
        response
    }

    pub fn into_response(self) -> ApiResponse {
        let mut response = ApiResponse::json(self.status, &self.to_json());
        if self.status.is_client_error() && self.status != StatusCode::TOO_MANY_REQUESTS {
            // Retrying cannot fix a 4xx: tell SDKs that retry 409s (Metronome) not to.
            response.headers.push(("x-should-retry".to_owned(), "false".to_owned()));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(msg) => {
                tracing::error!(error = %msg, "storage unavailable");
                ApiError::unavailable()
            }
            StoreError::Rejected(msg) => {
                tracing::error!(error = %msg, "storage refused a request's content (a missing input check)");
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "validation_error",
                    "invalid_request",
                    "A value in the request is too long or malformed",
                )
            }
            StoreError::Contention => {
                tracing::warn!("transaction contention exhausted retries");
                ApiError::unavailable()
            }
            StoreError::Corrupt(msg) => {
                tracing::error!(error = %msg, "corrupt item");
                ApiError::internal()
            }
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Missing => ApiError::unauthorized("Missing API key (Authorization: Bearer <key> or x-api-key)"),
            AuthError::Invalid => ApiError::unauthorized("Invalid API key"),
            AuthError::Store(s) => s.into(),
        }
    }
}

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
            GrantLookupError::EntitlementNotFound => entitlement_not_found(),
            GrantLookupError::Store(s) => s.into(),
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

impl From<TenantError> for ApiError {
    fn from(e: TenantError) -> Self {
        match e {
            TenantError::Store(s) => s.into(),
            other => {
                tracing::error!(error = %other, "tenant settings unavailable");
                ApiError::internal()
            }
        }
    }
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

impl From<CreditGrantError> for ApiError {
    fn from(e: CreditGrantError) -> Self {
        match e {
            CreditGrantError::NotFound => ApiError::not_found("credit_grant_not_found", "Credit grant not found"),
            CreditGrantError::ExpiresNotAfterEffective => {
                ApiError::field("expires_at", "invalid_range", "must be after effective_at")
            }
            CreditGrantError::ExpiresBeforeUsage(t) => ApiError::field(
                "expires_at",
                "invalid_range",
                format!("must be after {}, when usage last drew on this grant", t.to_rfc3339()),
            ),
            CreditGrantError::Store(s) => s.into(),
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

impl From<CapacityError> for ApiError {
    fn from(e: CapacityError) -> Self {
        let state = |code: &'static str, e: &CapacityError| ApiError::conflict(code, e.to_string(), json!({}));
        match e {
            CapacityError::NotFound => ApiError::not_found("grant_not_found", "Grant not found"),
            CapacityError::QuantityNotLess(q) => ApiError::field(
                "new_quantity",
                "invalid_range",
                format!("must be greater than 0 and less than the current quantity {q}"),
            ),
            CapacityError::Deleted => state("grant_deleted", &e),
            CapacityError::AlreadyResold => state("grant_already_resold", &e),
            CapacityError::Expired => state("grant_expired", &e),
            CapacityError::Concurrent => state("concurrent_update", &e),
            CapacityError::Store(s) => s.into(),
        }
    }
}

impl From<PlanError> for ApiError {
    fn from(e: PlanError) -> Self {
        match e {
            PlanError::NotFound => ApiError::not_found("credit_grant_not_found", "Credit grant not found"),
            PlanError::EndNotAfterStart => ApiError::field("end_date", "invalid_range", "must be after start_date"),
            PlanError::IdempotencyMismatch(fields) => idempotency_mismatch(fields),
            PlanError::Concurrent => ApiError::conflict("concurrent_update", e.to_string(), json!({})),
            PlanError::Store(s) => s.into(),
        }
    }
}
