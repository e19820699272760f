//! The Metronome operations' errors as HTTP: credit grants (create, void, edit) and credit types.
use crate::ApiError;
use grants_domain::credits::{CreateCreditGrantError, CreditTypeError, EditCreditGrantError, VoidCreditGrantError};
use serde_json::json;

pub(super) fn credit_grant_not_found() -> ApiError {
    ApiError::not_found("credit_grant_not_found", "Credit grant not found")
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
