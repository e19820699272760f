//! The failures every surface shares: storage, authentication (before any handler runs), tenant
//! settings, and an idempotency key reused with different parameters.
use super::ApiError;
use grants_domain::auth::AuthError;
use grants_domain::ports::StoreError;
use grants_domain::tenants::TenantError;
use http::StatusCode;
use serde_json::json;

/// An idempotency key (Paygentic's `idempotencyKey`, the `Idempotency-Key` header of capacity
/// grants and Flexprice plans) reused with different parameters: 409 naming the fields.
pub(crate) fn idempotency_mismatch(fields: Vec<String>) -> ApiError {
    ApiError::conflict(
        "idempotency_key_reused",
        format!(
            "idempotencyKey was already used with different parameters: {}",
            fields.join(", ")
        ),
        json!({ "differingFields": fields }),
    )
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
