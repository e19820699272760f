//! Metronome's `listEntries`: each customer's ledger per credit type, with running balances.
use super::cursors::{cursor, read_cursor};
use super::{credit_type_json, ledger_entry_json, ok, optional_body, time};
use crate::paygentic::num;
use crate::{ApiError, ApiRequest, ApiResponse, App, Store};
use grants_domain::auth::Principal;
use grants_domain::credits::{self, CreditType, CustomerLedger, EntryFilter};
use grants_domain::ledger::Entry;
use grants_domain::Timestamp;
use rust_decimal::Decimal;
use serde_json::{json, Value};

/// Customers per `listEntries` page.
const ENTRIES_PAGE: usize = 25;

fn balance_json(at: Timestamp, excluding: Decimal, including: Decimal) -> Value {
    json!({ "effective_at": time(at), "excluding_pending": num(excluding), "including_pending": num(including) })
}

/// One customer's ledger in one credit type. Entry amounts are signed changes to the balance.
fn customer_ledger_json(l: &CustomerLedger, catalogue: &[CreditType], descending: bool) -> Value {
    let render = |entries: &[Entry]| -> Vec<Value> {
        let mut out: Vec<Value> = entries.iter().map(|e| ledger_entry_json(e, false)).collect();
        if descending {
            out.reverse();
        }
        out
    };
    json!({
        "credit_type": credit_type_json(catalogue, &l.credit_type_id),
        "starting_balance": balance_json(l.starting_at, l.starting_excluding, l.starting_including),
        "ending_balance": balance_json(l.ending_at, l.ending_excluding, l.ending_including),
        "entries": render(&l.entries),
        "pending_entries": render(&l.pending),
    })
}

pub async fn list_entries<S: Store>(app: &App<S>, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let descending = match req.query_value("sort") {
        None | Some("") | Some("asc") => false,
        Some("desc") => true,
        Some(_) => return Err(ApiError::field("sort", "invalid", "must be asc or desc")),
    };
    let after = read_cursor(app, req, "c1").await?;
    let mut body = optional_body(req)?;
    let filter = EntryFilter {
        customer_ids: body.string_list("customer_ids"),
        credit_type_ids: body.string_list("credit_type_ids"),
        starting_on: body.optional_timestamp("starting_on"),
        ending_before: body.optional_timestamp("ending_before"),
    };
    body.finish()?;
    let now = app.clock.now();
    if filter.ending_before.is_some_and(|t| t > now) {
        return Err(ApiError::field(
            "ending_before",
            "invalid_range",
            "must not be in the future",
        ));
    }
    if let (Some(s), Some(e)) = (filter.starting_on, filter.ending_before) {
        if s >= e {
            return Err(ApiError::field(
                "starting_on",
                "invalid_range",
                "must be before ending_before",
            ));
        }
    }
    let store = app.store.as_ref();
    let (page, next) = credits::list_entries(
        store,
        app.clock.as_ref(),
        &who.tenant,
        &filter,
        ENTRIES_PAGE,
        after.as_deref(),
    )
    .await?;
    let ids: Vec<&str> = page
        .iter()
        .flat_map(|(_, ledgers)| ledgers.iter().map(|l| l.credit_type_id.as_str()))
        .collect();
    let catalogue = credits::catalogue_covering(store, &app.credit_types, &who.tenant, &ids).await?;
    let data: Vec<Value> = page
        .iter()
        .map(|(customer, ledgers)| {
            json!({
                "customer_id": customer,
                "ledgers": ledgers.iter().map(|l| customer_ledger_json(l, &catalogue, descending)).collect::<Vec<_>>(),
            })
        })
        .collect();
    let next_page = match next {
        Some(c) => Some(cursor(app, "c1", &c).await?),
        None => None,
    };
    ok(&json!({ "data": data, "next_page": next_page }))
}
