//! Every failure a client can see: the error type and its bodies (Paygentic's, and Flexprice's
//! merged shape). Each surface maps the errors of the domain operations it calls in its own
//! `errors.rs` (`paygentic/errors.rs`, `metronome/errors.rs`, ...); `common.rs` maps the failures
//! every surface shares (storage, authentication, tenant settings, a reused idempotency key).
use crate::ApiResponse;
use http::StatusCode;
use serde_json::{json, Value};

mod common;

pub(crate) use common::idempotency_mismatch;

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
    pub(crate) fn new(status: StatusCode, kind: &'static str, code: &'static str, message: impl Into<String>) -> Self {
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
