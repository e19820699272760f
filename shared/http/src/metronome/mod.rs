//! The Metronome credit-grants surface (`/v1/credits/...`) and the credit-type catalogue
//! (`/v1/credit-types`): JSON in, domain call, JSON out. No business rules here.
//!
//! `grants.rs` holds the grant operations (list, create, void, edit), `entries.rs` the customers'
//! ledgers (`listEntries`), `credit_types.rs` the catalogue, `cursors.rs` the signed page cursors;
//! `errors.rs` maps their domain errors to HTTP. This file holds the JSON pieces they share.
use crate::body::JsonBody;
use crate::paygentic::num;
use crate::{ApiError, ApiRequest, ApiResponse};
use grants_domain::credits::{self, CreditType};
use grants_domain::ledger::{Entry, EntryKind};
use grants_domain::Timestamp;
use http::StatusCode;
use serde_json::{json, Value};

mod credit_types;
mod cursors;
mod entries;
mod errors;
mod grants;

pub use credit_types::{create_credit_type, list_credit_types};
pub use entries::list_entries;
pub use grants::{create_grant, edit_grant, grant_json, list_grants, parse_create_grant, void_grant};

/// Who the ledger says made an entry.
const CREATED_BY: &str = "grants-service";

fn ok(value: &Value) -> Result<ApiResponse, ApiError> {
    Ok(ApiResponse::json(StatusCode::OK, value))
}

fn time(t: Timestamp) -> Value {
    Value::String(t.to_rfc3339())
}

fn credit_type_json(catalogue: &[CreditType], id: &str) -> Value {
    json!({ "id": id, "name": credits::name_of(catalogue, id) })
}

/// The body of a POST whose body is optional (all filters): `{}` when empty.
fn optional_body(req: &ApiRequest) -> Result<JsonBody, ApiError> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        JsonBody::from_slice(b"{}")
    } else {
        JsonBody::parse(req)
    }
}

/// A ledger entry. `positive`: a deduction's amount as a positive number (listGrants, as in
/// Metronome's document); otherwise the signed change to the balance (listEntries).
fn ledger_entry_json(e: &Entry, positive: bool) -> Value {
    json!({
        "amount": num(if positive { -e.amount } else { e.amount }),
        "reason": entry_reason(e),
        "running_balance": num(e.running_balance),
        "effective_at": time(e.effective_at),
        "created_by": CREATED_BY,
        "credit_grant_id": e.grant_id.as_str(),
    })
}

fn entry_reason(e: &Entry) -> String {
    match e.kind {
        EntryKind::Grant => "Credit grant".to_owned(),
        EntryKind::Deduction => format!("Usage {}", e.event_id.as_deref().unwrap_or_default()),
        EntryKind::Expiration => "Credit grant expired".to_owned(),
        EntryKind::Void => "Credit grant voided".to_owned(),
        EntryKind::Rollover => "Period reset: rollover".to_owned(),
    }
}
