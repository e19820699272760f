//! Every failure a client can see: the error type and its bodies (Paygentic's, and Flexprice's
//! merged shape). Each surface maps the errors of the domain operations it calls in its own
//! `errors.rs` (`paygentic/errors.rs`, `metronome/errors.rs`, ...); `common.rs` maps the failures
//! every surface shares (storage, authentication, tenant settings, a reused idempotency key).
use crate::ApiResponse;
use http::StatusCode;
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

mod common;

pub(crate) use common::idempotency_mismatch;

/// One invalid field: its name (dotted inside objects, `grant_amount.amount`), a sentence and a
/// machine code (`required`, `invalid`, `unknown_field`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
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

    /// The error body of every surface but Flexprice's: `{message, error, code, details?, errors?}`.
    pub fn body(&self) -> ErrorBody<'_> {
        ErrorBody {
            message: &self.message,
            error: self.kind,
            code: self.code,
            details: self.details.as_deref(),
            errors: &self.fields,
        }
    }

    /// Flexprice's error shape merged with ours: `{code, message, http_status_code, success: false,
    /// error: {message, details}}` plus `errors` for invalid fields.
    pub fn into_flexprice_response(self) -> ApiResponse {
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
        let body = FlexpriceErrorBody {
            code,
            message: &self.message,
            http_status_code: self.status.as_u16(),
            success: false,
            details: self.details.as_deref(),
            error: FlexpriceErrorDetail {
                message: &self.message,
                details: &details,
            },
            errors: &self.fields,
        };
        let mut response = ApiResponse::json(self.status, &body);
        response.headers.extend(self.retry_header());
        response
    }

    /// Svix's error shapes, which its SDK parses: 422 `{detail: [{loc, msg, type}]}` for invalid
    /// fields (ours name them in `loc`: `["body", "url"]`), else `{code, detail}` with Svix's codes.
    pub fn into_svix_response(self) -> ApiResponse {
        if !self.fields.is_empty() {
            let detail: Vec<Value> = self
                .fields
                .iter()
                .map(|f| {
                    let mut loc = vec![json!("body")];
                    loc.extend(f.field.split('.').map(|p| json!(p)));
                    json!({"loc": loc, "msg": format!("{} {}", f.field, f.message), "type": f.code})
                })
                .collect();
            let mut response = ApiResponse::json(StatusCode::UNPROCESSABLE_ENTITY, &json!({ "detail": detail }));
            response.headers.extend(self.retry_header());
            return response;
        }
        let code = match self.status.as_u16() {
            401 => "authentication_failed",
            403 => "insufficient_access",
            404 => "not_found",
            409 => "conflict",
            413 => "payload_too_large",
            429 => "rate_limited",
            503 => "service_unavailable",
            400..=499 => "generic_error",
            _ => "server_error",
        };
        let mut response = ApiResponse::json(self.status, &json!({"code": code, "detail": self.message}));
        response.headers.extend(self.retry_header());
        response
    }

    pub fn into_response(self) -> ApiResponse {
        let mut response = ApiResponse::json(self.status, &self.body());
        response.headers.extend(self.retry_header());
        response
    }

    /// Retrying cannot fix a 4xx: `x-should-retry: false` tells SDKs that retry 409s (Metronome) not to.
    fn retry_header(&self) -> Option<(String, String)> {
        (self.status.is_client_error() && self.status != StatusCode::TOO_MANY_REQUESTS)
            .then(|| ("x-should-retry".to_owned(), "false".to_owned()))
    }
}

/// The error body of every surface but Flexprice's (Paygentic's shape; Metronome's SDK reads
/// `message`): `{message, error, code, details?, errors?}`.
#[derive(Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody<'a> {
    /// What went wrong, for a person.
    pub message: &'a str,
    /// The kind: `validation_error`, `unauthorized`, `forbidden`, `not_found`, `conflict`, ...
    pub error: &'a str,
    /// The exact condition, for a program (`idempotency_key_reused`, `grant_not_found`, ...).
    pub code: &'a str,
    /// What a conflict is about (`differingFields` of a reused idempotency key, an object's state).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object, nullable = false)]
    pub details: Option<&'a Value>,
    /// Each invalid field, all of them in one answer (400 only).
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    pub errors: &'a [FieldError],
}

/// Flexprice's error shape with this service's fields merged in: its own `code`
/// (`validation_error`, `not_found`, ...), `success: false`, `error.details.code` ours.
#[derive(Serialize, ToSchema)]
#[schema(as = FlexpriceError)]
pub struct FlexpriceErrorBody<'a> {
    pub code: &'a str,
    pub message: &'a str,
    pub http_status_code: u16,
    #[schema(schema_with = false_constant)]
    pub success: bool,
    /// As in [`ErrorBody`].
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object, nullable = false)]
    pub details: Option<&'a Value>,
    pub error: FlexpriceErrorDetail<'a>,
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    pub errors: &'a [FieldError],
}

/// `error` of a Flexprice error: the message again, and details with this service's `code`.
#[derive(Serialize, ToSchema)]
pub struct FlexpriceErrorDetail<'a> {
    pub message: &'a str,
    #[schema(value_type = Object)]
    pub details: &'a Value,
}

fn false_constant() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    crate::wire::constant(Value::Bool(false))
}
