//! Metronome's JSON shapes: the credit grant with its balance and deductions, ledger entries,
//! balances, credit types, and the request bodies as the handlers read them. Snake case throughout.
use super::CREATED_BY;
use crate::wire::{IdempotencyKey, Label, Number};
use grants_domain::credits::{self, CreditType, CustomerLedger, LedgerGrant, DEFAULT_CREDIT_TYPE_ID, NEVER_EXPIRES};
use grants_domain::ledger::{self, Entry, EntryKind};
use grants_domain::Timestamp;
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// A credit type: `{id, name}` (the default is USD in cents).
#[derive(Serialize, ToSchema)]
#[schema(as = CreditType)]
pub struct CreditTypeBody {
    pub id: String,
    pub name: String,
}

impl CreditTypeBody {
    /// The credit type `id` with its name from the catalogue.
    pub fn of(catalogue: &[CreditType], id: &str) -> Self {
        Self {
            id: id.to_owned(),
            name: credits::name_of(catalogue, id),
        }
    }
}

impl From<&CreditType> for CreditTypeBody {
    fn from(c: &CreditType) -> Self {
        Self {
            id: c.id.clone(),
            name: c.name.clone(),
        }
    }
}

/// A balance at an instant, with and without pending deductions.
#[derive(Serialize, ToSchema)]
#[schema(as = MetronomeBalance)]
pub struct BalanceBody {
    #[schema(value_type = String, format = DateTime)]
    pub effective_at: Timestamp,
    #[schema(inline)]
    pub excluding_pending: Number,
    #[schema(inline)]
    pub including_pending: Number,
}

impl BalanceBody {
    pub fn new(effective_at: Timestamp, excluding: Decimal, including: Decimal) -> Self {
        Self {
            effective_at,
            excluding_pending: Number(excluding),
            including_pending: Number(including),
        }
    }
}

/// A ledger entry: `amount` is the signed change to the balance in `listEntries`, and a
/// deduction's amount as a positive number in `listGrants` (as Metronome's document has it).
#[derive(Serialize, ToSchema)]
#[schema(as = MetronomeEntry)]
pub struct EntryBody {
    #[schema(inline)]
    pub amount: Number,
    /// `Credit grant`, `Usage on <yyyy-mm-dd>` (a day's usage of the grant; `Usage <event id>` for
    /// a pending deduction), `Credit grant expired`, `Credit grant voided`,
    /// `Period reset: rollover`.
    pub reason: String,
    #[schema(inline)]
    pub running_balance: Number,
    #[schema(value_type = String, format = DateTime)]
    pub effective_at: Timestamp,
    pub created_by: &'static str,
    pub credit_grant_id: String,
}

impl EntryBody {
    /// `positive`: a deduction's amount as a positive number (listGrants).
    pub fn new(e: &Entry, positive: bool) -> Self {
        Self {
            amount: Number(if positive { -e.amount } else { e.amount }),
            reason: match e.kind {
                EntryKind::Grant => "Credit grant".to_owned(),
                EntryKind::Deduction => match &e.event_id {
                    Some(id) => format!("Usage {id}"),
                    // A day's deductions from the grant, summed (listGrants and listEntries).
                    None => format!(
                        "Usage on {}",
                        e.effective_at.day_start().to_rfc3339().get(..10).unwrap_or_default()
                    ),
                },
                EntryKind::Expiration => "Credit grant expired".to_owned(),
                EntryKind::Void => "Credit grant voided".to_owned(),
                EntryKind::Rollover => "Period reset: rollover".to_owned(),
            },
            running_balance: Number(e.running_balance),
            effective_at: e.effective_at,
            created_by: CREATED_BY,
            credit_grant_id: e.grant_id.as_str().to_owned(),
        }
    }
}

/// An amount in a credit type.
#[derive(Serialize, ToSchema)]
#[schema(as = MetronomeAmountOut)]
pub struct AmountBody {
    #[schema(inline)]
    pub amount: Number,
    pub credit_type: CreditTypeBody,
}

/// A product a grant applies to (its id doubles as its name).
#[derive(Serialize, ToSchema)]
#[schema(as = MetronomeProduct)]
pub struct Product {
    pub id: String,
    pub name: String,
}

/// A credit grant in Metronome's shape, with its balance now and its deductions.
#[derive(Serialize, ToSchema)]
#[schema(as = MetronomeGrant)]
pub struct GrantBody {
    pub id: String,
    pub name: String,
    pub customer_id: String,
    #[schema(value_type = String, format = DateTime)]
    pub effective_at: Timestamp,
    /// `9999-12-31T00:00:00Z` for a grant that never expires.
    #[schema(format = DateTime)]
    pub expires_at: String,
    #[schema(inline)]
    pub priority: Number,
    pub grant_amount: AmountBody,
    pub paid_amount: AmountBody,
    pub balance: BalanceBody,
    pub deductions: Vec<EntryBody>,
    pub pending_deductions: Vec<EntryBody>,
    pub custom_fields: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub uniqueness_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub credit_grant_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub invoice_id: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(inline)]
    pub products: Vec<Product>,
}

impl GrantBody {
    /// The grant as of `now` (its balance at the later of now and its start).
    pub fn new(lg: &LedgerGrant, catalogue: &[CreditType], now: Timestamp) -> Self {
        let g = &lg.grant;
        let d = &g.details;
        let at = now.max(g.effective_at);
        let (excluding, including) = ledger::grant_balance_now(g, &lg.holds, at)
            .map(|b| (b.excluding_pending, b.including_pending))
            .unwrap_or((Decimal::ZERO, Decimal::ZERO));
        let deductions = ledger::day_entries(g, &lg.days)
            .iter()
            .filter(|e| e.kind == EntryKind::Deduction)
            .map(|e| EntryBody::new(e, true))
            .collect();
        let pending_deductions = ledger::pending_entries(g, &lg.holds)
            .iter()
            .map(|e| EntryBody::new(e, true))
            .collect();
        let grant_type = credits::type_id(g.credit_type_id.as_deref());
        let paid_type = d.paid_credit_type_id.as_deref().unwrap_or(DEFAULT_CREDIT_TYPE_ID);
        Self {
            id: g.id.as_str().to_owned(),
            name: d.name.clone().unwrap_or_else(|| "Credit grant".to_owned()),
            customer_id: g.customer_id.clone(),
            effective_at: g.effective_at,
            expires_at: g
                .expires_at
                .map(|t| t.to_rfc3339())
                .unwrap_or_else(|| NEVER_EXPIRES.to_owned()),
            priority: Number(g.priority.map(|p| p.value()).unwrap_or_default()),
            grant_amount: AmountBody {
                amount: Number(g.amount.value()),
                credit_type: CreditTypeBody::of(catalogue, grant_type),
            },
            paid_amount: AmountBody {
                amount: Number(d.paid_amount.unwrap_or_default()),
                credit_type: CreditTypeBody::of(catalogue, paid_type),
            },
            balance: BalanceBody::new(at, excluding, including),
            deductions,
            pending_deductions,
            custom_fields: d.custom_fields.clone(),
            reason: d.reason.clone(),
            uniqueness_key: d.uniqueness_key.clone(),
            credit_grant_type: d.credit_grant_type.clone(),
            invoice_id: d.invoice_id.clone(),
            products: d
                .product_ids
                .iter()
                .map(|p| Product {
                    id: p.clone(),
                    name: p.clone(),
                })
                .collect(),
        }
    }
}

/// A page of `listGrants`, or of `listEntries`: `next_page` is the cursor of the next, if any.
#[derive(Serialize, ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    #[schema(required)]
    pub next_page: Option<String>,
}

/// One customer's ledgers, one per credit type (`listEntries`).
#[derive(Serialize, ToSchema)]
#[schema(as = MetronomeCustomerLedgers)]
pub struct CustomerLedgers {
    pub customer_id: String,
    pub ledgers: Vec<LedgerBody>,
}

/// One customer's ledger in one credit type: the balance at each end, the entries between.
#[derive(Serialize, ToSchema)]
#[schema(as = MetronomeLedger)]
pub struct LedgerBody {
    pub credit_type: CreditTypeBody,
    pub starting_balance: BalanceBody,
    pub ending_balance: BalanceBody,
    pub entries: Vec<EntryBody>,
    pub pending_entries: Vec<EntryBody>,
}

impl LedgerBody {
    /// Entry amounts are signed changes to the balance; `descending` puts the newest first.
    pub fn new(l: &CustomerLedger, catalogue: &[CreditType], descending: bool) -> Self {
        let render = |entries: &[Entry]| -> Vec<EntryBody> {
            let mut out: Vec<EntryBody> = entries.iter().map(|e| EntryBody::new(e, false)).collect();
            if descending {
                out.reverse();
            }
            out
        };
        Self {
            credit_type: CreditTypeBody::of(catalogue, &l.credit_type_id),
            starting_balance: BalanceBody::new(l.starting_at, l.starting_excluding, l.starting_including),
            ending_balance: BalanceBody::new(l.ending_at, l.ending_excluding, l.ending_including),
            entries: render(&l.entries),
            pending_entries: render(&l.pending),
        }
    }
}

/// `{data: {id}}`: what createGrant, voidGrant and editGrant answer.
#[derive(Serialize, ToSchema)]
#[schema(as = MetronomeId)]
pub struct IdBody {
    #[schema(inline)]
    pub data: Id,
}

/// The grant's id.
#[derive(Serialize, ToSchema)]
pub struct Id {
    pub id: String,
}

impl IdBody {
    pub fn new(id: &str) -> Self {
        Self {
            data: Id { id: id.to_owned() },
        }
    }
}

/// `{data: [credit type]}`.
#[derive(Serialize, ToSchema)]
#[schema(as = CreditTypeList)]
pub struct CreditTypes {
    pub data: Vec<CreditTypeBody>,
}

/// The granted amount with its credit type, on input: above zero.
#[derive(ToSchema)]
#[schema(as = MetronomeGrantAmountIn)]
pub struct GrantAmountRequest {
    #[schema(value_type = f64, exclusive_minimum = 0)]
    pub amount: (),
    pub credit_type_id: String,
}

/// The paid amount with its credit type, on input: zero or more.
#[derive(ToSchema)]
#[schema(as = MetronomePaidAmountIn)]
pub struct PaidAmountRequest {
    #[schema(value_type = f64, minimum = 0)]
    pub amount: (),
    pub credit_type_id: String,
}

/// The body of `createGrant`.
#[derive(ToSchema)]
#[schema(as = MetronomeCreateGrantRequest)]
pub struct CreateGrantRequest {
    pub customer_id: Label,
    #[schema(format = DateTime)]
    pub expires_at: String,
    #[schema(format = DateTime, required = false)]
    pub effective_at: String,
    pub grant_amount: GrantAmountRequest,
    pub paid_amount: PaidAmountRequest,
    pub name: Label,
    #[schema(value_type = f64)]
    pub priority: (),
    #[schema(required = false)]
    pub reason: Label,
    #[schema(required = false)]
    pub uniqueness_key: IdempotencyKey,
    #[schema(required = false)]
    pub custom_fields: BTreeMap<String, String>,
    #[schema(required = false)]
    pub credit_grant_type: Label,
    #[schema(required = false)]
    pub product_ids: Vec<String>,
    /// Accepted and not used (no invoicing here).
    #[schema(format = DateTime, required = false)]
    pub invoice_date: String,
    /// Accepted and not used (see the README).
    #[schema(required = false)]
    pub rollover_settings: BTreeMap<String, serde_json::Value>,
}

/// The body of `voidGrant`.
#[derive(ToSchema)]
#[schema(as = MetronomeVoidGrantRequest)]
pub struct VoidGrantRequest {
    pub id: String,
    #[schema(required = false)]
    pub release_uniqueness_key: bool,
    /// Accepted and not used.
    #[schema(required = false)]
    pub void_credit_purchase_invoice: bool,
}

/// The body of `editGrant`.
#[derive(ToSchema)]
#[schema(as = MetronomeEditGrantRequest)]
pub struct EditGrantRequest {
    pub id: String,
    #[schema(required = false)]
    pub name: Label,
    #[schema(format = DateTime, required = false)]
    pub expires_at: String,
    #[schema(required = false)]
    pub credit_grant_type: Label,
}

/// The body of `listGrants` (every filter optional; the body may be empty).
#[derive(ToSchema)]
#[schema(as = MetronomeListGrantsRequest)]
pub struct ListGrantsRequest {
    #[schema(required = false)]
    pub credit_grant_ids: Vec<String>,
    #[schema(required = false)]
    pub customer_ids: Vec<String>,
    #[schema(required = false)]
    pub credit_type_ids: Vec<String>,
    #[schema(format = DateTime, required = false)]
    pub effective_before: String,
    #[schema(format = DateTime, required = false)]
    pub not_expiring_before: String,
}

/// The body of `listEntries` (every filter optional; the body may be empty).
#[derive(ToSchema)]
#[schema(as = MetronomeListEntriesRequest)]
pub struct ListEntriesRequest {
    #[schema(required = false)]
    pub customer_ids: Vec<String>,
    #[schema(required = false)]
    pub credit_type_ids: Vec<String>,
    #[schema(format = DateTime, required = false)]
    pub starting_on: String,
    #[schema(format = DateTime, required = false)]
    pub ending_before: String,
}

/// The body of `POST /v1/credit-types`.
#[derive(ToSchema)]
pub struct NewCreditTypeRequest {
    pub name: Label,
}
