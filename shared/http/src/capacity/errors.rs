//! The capacity-grant operations' errors as HTTP: create, delete, resell.
use crate::error::idempotency_mismatch;
use crate::ApiError;
use grants_domain::capacity::{CreateCapacityError, DeleteCapacityError, ResellCapacityError};
use serde_json::json;

pub(super) fn grant_not_found() -> ApiError {
    ApiError::not_found("grant_not_found", "Grant not found")
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
            DeleteCapacityError::NotFound => grant_not_found(),
            DeleteCapacityError::Store(s) => s.into(),
        }
    }
}

impl From<ResellCapacityError> for ApiError {
    fn from(e: ResellCapacityError) -> Self {
        let state = |code: &'static str, e: &ResellCapacityError| ApiError::conflict(code, e.to_string(), json!({}));
        match e {
            ResellCapacityError::NotFound => grant_not_found(),
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
