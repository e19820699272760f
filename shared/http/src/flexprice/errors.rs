//! The Flexprice operations' errors as HTTP: credit grant plans (create, get, update, delete).
//! Routes of this surface answer them in Flexprice's merged shape
//! ([`ApiError::into_flexprice_response`]).
use crate::error::idempotency_mismatch;
use crate::ApiError;
use grants_domain::plans::{CreatePlanError, DeletePlanError, PlanLookupError, UpdatePlanError};
use serde_json::json;

/// Flexprice calls a plan a "credit grant".
fn plan_not_found() -> ApiError {
    ApiError::not_found("credit_grant_not_found", "Credit grant not found")
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
            PlanLookupError::NotFound => plan_not_found(),
            PlanLookupError::Store(s) => s.into(),
        }
    }
}

impl From<UpdatePlanError> for ApiError {
    fn from(e: UpdatePlanError) -> Self {
        match e {
            UpdatePlanError::NotFound => plan_not_found(),
            UpdatePlanError::EndNotAfterStart => plan_end_not_after_start(),
            UpdatePlanError::Concurrent => plan_concurrent(&e),
            UpdatePlanError::Store(s) => s.into(),
        }
    }
}

impl From<DeletePlanError> for ApiError {
    fn from(e: DeletePlanError) -> Self {
        match e {
            DeletePlanError::NotFound => plan_not_found(),
            DeletePlanError::Concurrent => plan_concurrent(&e),
            DeletePlanError::Store(s) => s.into(),
        }
    }
}
