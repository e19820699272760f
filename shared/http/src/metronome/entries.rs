//! Metronome's `listEntries`: each customer's ledger per credit type, with running balances.
use super::cursors::{cursor, read_cursor};
use super::ok;
use super::optional_body;
use super::wire::{CustomerLedgers, LedgerBody, ListEntriesRequest, Page};
use crate::openapi::{BadRequest, TooLarge, Unauthorized, Unsupported};
use crate::{ApiError, ApiRequest, ApiResponse, App, Store};
use grants_domain::auth::Principal;
use grants_domain::credits::{self, EntryFilter};
use serde::Serialize;
use utoipa::ToSchema;

/// The order of each ledger's entries.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    Asc,
    Desc,
}

/// Customers per `listEntries` page.
const ENTRIES_PAGE: usize = 25;

/// Metronome: customers' credit ledgers with running balances.
#[utoipa::path(post, path = "/v1/credits/listEntries", operation_id = "metronomeListEntries", tag = "metronome",
    params(("next_page" = Option<String>, Query), ("sort" = Option<SortOrder>, Query)),
    request_body = Option<ListEntriesRequest>,
    responses(
        (status = 200, description = "Per customer and credit type, the ledger between two balances.",
            body = Page<CustomerLedgers>),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 413, response = TooLarge), (status = 415, response = Unsupported),
    ))]
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
    let data = page
        .iter()
        .map(|(customer, ledgers)| CustomerLedgers {
            customer_id: customer.clone(),
            ledgers: ledgers
                .iter()
                .map(|l| LedgerBody::new(l, &catalogue, descending))
                .collect(),
        })
        .collect();
    let next_page = match next {
        Some(c) => Some(cursor(app, "c1", &c).await?),
        None => None,
    };
    ok(&Page { data, next_page })
}
