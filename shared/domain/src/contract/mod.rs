//! The storage-port contract: what every [`Store`] must do, as executable checks. Each check is a
//! public async function that takes a store and a tenant prefix, and asserts one behaviour of the
//! ports (conditional writes and what they return when the condition fails, idempotency claims,
//! versions, all-or-nothing transactions, orderings, index reads). [`run_all`] runs every check.
//!
//! The same checks run against [`crate::memory::MemoryStore`] (this module's unit test) and
//! `grants_dynamo::DynamoStore` on DynamoDB Local (`tests/api/contract.rs`), so the in-memory store
//! used by the domain's unit tests behaves as the real one does.
//!
//! Every check writes only under tenants made from its prefix, so runs on a shared table do not
//! see each other; the reads of cross-tenant indexes (the reset schedule, open invoices, published
//! plans) keep to the check's own tenant, and the schedules' checks use instants no other data
//! uses (see [`schedule_base`]). Compiled for tests and with the `contract` feature only.
mod api_keys;
mod capacity;
mod credit_types;
mod entitlements;
mod grants;
mod ledger;
mod meters;
mod periods;
mod plans;
mod purchases;
mod tenants;
mod transactions;
mod usage;
mod webhooks;

pub use self::api_keys::*;
pub use self::capacity::*;
pub use self::credit_types::*;
pub use self::entitlements::*;
pub use self::grants::*;
pub use self::ledger::*;
pub use self::meters::*;
pub use self::periods::*;
pub use self::plans::*;
pub use self::purchases::*;
pub use self::tenants::*;
pub use self::transactions::*;
pub use self::usage::*;
pub use self::webhooks::*;

use crate::auth::hash_key;
use crate::capacity::{CapacityGrant, ExactPrice};
use crate::ledger::{Deduction, UsageStatus};
use crate::model::{ApiKeyRecord, Claim, Entitlement, EntitlementStatus, Grant, GrantDetails, Role};
use crate::money::{Currency, Price};
use crate::payments::PaymentSession;
use crate::plans::{CreditPlan, DurationUnit, Expiration, Period, PlanScope, PlanStatus, Recurrence};
use crate::ports::{InsertOutcome, Store, UsageWrite};
use crate::purchases::{Invoice, InvoiceStatus};
use crate::usage::{CounterDelta, UsageRecord};
use crate::{
    CapacityGrantId, Clock, CreditAmount, EntitlementId, GrantId, InvoiceId, NonNegative, SessionId, SystemClock,
    TenantId, Timestamp,
};
use futures::FutureExt;
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;

// ---- fixtures -------------------------------------------------------------------------------

/// A prefix for [`run_all`] no other run uses.
pub fn unique_prefix() -> String {
    format!("ct{}", ulid::Ulid::generate().to_string().to_ascii_lowercase())
}

fn ts(s: &str) -> Timestamp {
    Timestamp::parse(s).expect("timestamp")
}

fn after(t: Timestamp, seconds: i64) -> Timestamp {
    t.plus_seconds(seconds).expect("in range")
}

fn micros_after(t: Timestamp, micros: i64) -> Timestamp {
    Timestamp::from_datetime(t.as_datetime() + chrono::TimeDelta::microseconds(micros)).expect("in range")
}

/// A past instant for the checks of the cross-tenant schedule indexes, earlier for every later run
/// (by the real time elapsed since 2020), so that a run's items, a few microseconds apart, come
/// before any item of an earlier run on a shared table, and after none (no other data is dated
/// in the 1990s).
pub fn schedule_base() -> Timestamp {
    let now = SystemClock.now().as_datetime();
    let epoch = ts("2020-01-01T00:00:00Z").as_datetime();
    let back = now.signed_duration_since(epoch);
    Timestamp::from_datetime(ts("2000-01-01T00:00:00Z").as_datetime() - back).expect("after 1970")
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str_exact(s).expect("decimal")
}

fn credits(s: &str) -> CreditAmount {
    CreditAmount::parse(s).expect("amount")
}

fn tenant(prefix: &str, name: &str) -> TenantId {
    TenantId::parse(&format!("{prefix}-{name}")).expect("tenant id")
}

const START: &str = "2030-01-01T00:00:00Z";
const END: &str = "2030-02-01T00:00:00Z";

fn entitlement(tenant: &TenantId, customer: &str) -> Entitlement {
    let (start, end) = (ts(START), ts(END));
    Entitlement {
        id: EntitlementId::generate(),
        tenant: tenant.clone(),
        customer_id: customer.to_owned(),
        feature_id: "feat_api".to_owned(),
        feature_key: "api".to_owned(),
        product_id: "prod_default".to_owned(),
        subscription_id: None,
        plan_id: None,
        status: EntitlementStatus::Active,
        active_from: start,
        active_to: None,
        metadata: BTreeMap::new(),
        is_soft_limit: false,
        pricing_unit_id: None,
        current_period_start: start,
        current_period_end: end,
        period_anchor: start,
        period_months: Some(1),
        usage_in_period: Decimal::ZERO,
        overage: Decimal::ZERO,
        created_at: start,
        log: Some(crate::ledger::LogHead::default()),
        lease_until: None,
        applying: None,
    }
}

async fn stored_entitlement(store: &dyn Store, tenant: &TenantId, customer: &str) -> Entitlement {
    let e = entitlement(tenant, customer);
    store.put_entitlement(&e).await.expect("put_entitlement");
    e
}

async fn cancel(store: &dyn Store, e: &Entitlement) {
    store
        .set_entitlement_status(&e.tenant, &e.id, EntitlementStatus::Canceled, ts(START))
        .await
        .expect("set_entitlement_status")
        .expect("entitlement exists");
}

fn grant(e: &Entitlement, amount: &str) -> Grant {
    let amount = credits(amount);
    Grant {
        id: GrantId::generate(),
        tenant: e.tenant.clone(),
        entitlement_id: e.id.clone(),
        customer_id: e.customer_id.clone(),
        amount,
        remaining: amount.value(),
        effective_at: e.current_period_start,
        expires_at: None,
        voided_at: None,
        created_at: e.current_period_start,
        priority: None,
        reset_max_rollover: None,
        reset_min_rollover: None,
        recurrence_period: None,
        idempotency_key: None,
        reserved: Decimal::ZERO,
        last_used_at: None,
        version: 0,
        credit_type_id: e.pricing_unit_id.clone(),
        details: GrantDetails::default(),
    }
}

async fn stored_grant(store: &dyn Store, e: &Entitlement, amount: &str) -> Grant {
    let g = grant(e, amount);
    let outcome = store.insert_grant(&g, None, None).await.expect("insert_grant");
    assert!(matches!(outcome, InsertOutcome::Inserted), "{outcome:?}");
    g
}

fn claim(scope: &str, key: &str, object_id: &str, amount: &str) -> Claim {
    Claim {
        scope: scope.to_owned(),
        key: key.to_owned(),
        object_id: object_id.to_owned(),
        fingerprint: BTreeMap::from([("amount".to_owned(), amount.to_owned())]),
    }
}

/// `g` after a write that bumped its version.
fn bumped(g: &Grant, change: impl FnOnce(&mut Grant)) -> (Grant, u64) {
    let mut new = g.clone();
    change(&mut new);
    new.version = g.version + 1;
    (new, g.version)
}

fn usage(e: &Entitlement, event_id: &str, amount: &str, deductions: Vec<(&Grant, &str)>) -> UsageRecord {
    let at = after(e.current_period_start, 3600);
    UsageRecord {
        rollover: false,
        tenant: e.tenant.clone(),
        entitlement_id: e.id.clone(),
        event_id: event_id.to_owned(),
        amount: dec(amount),
        occurred_at: at,
        recorded_at: at,
        status: UsageStatus::Committed,
        deductions: deductions
            .into_iter()
            .map(|(g, a)| Deduction {
                grant_id: g.id.clone(),
                amount: dec(a),
            })
            .collect(),
        overage: Decimal::ZERO,
        settled_at: None,
        fingerprint: BTreeMap::from([("amount".to_owned(), amount.to_owned())]),
    }
}

fn delta(usage: &str, overage: &str) -> CounterDelta {
    CounterDelta {
        usage: dec(usage),
        overage: dec(overage),
    }
}

async fn write(store: &dyn Store, record: &UsageRecord, d: CounterDelta, grants: &[(Grant, u64)]) -> UsageWrite {
    store.write_usage(record, d, grants, None).await.expect("write_usage")
}

fn api_key(tenant: &TenantId, role: Role, created_at: Timestamp) -> ApiKeyRecord {
    let key = format!("gk_{}", ulid::Ulid::generate());
    ApiKeyRecord {
        key_hash: hash_key(&key),
        tenant: tenant.clone(),
        role,
        created_at,
        display_prefix: key.chars().take(7).collect(),
        expires_at: None,
        last_used_at: None,
    }
}

fn invoice(e: &Entitlement, session_expires_at: Timestamp) -> Invoice {
    let id = InvoiceId::generate();
    let price = Price::new(dec("5.00"), Currency::USD).expect("price");
    Invoice {
        tenant: e.tenant.clone(),
        entitlement_id: e.id.clone(),
        customer_id: e.customer_id.clone(),
        subscription_id: e.subscription_id.clone(),
        credit_type_id: e.pricing_unit_id.clone(),
        grant_amount: credits("100"),
        price,
        grant_effective_at: e.current_period_start,
        grant_expires_at: Some(e.current_period_end),
        grant_reset_max_rollover: Some(NonNegative::new(dec("50")).expect("bound")),
        grant_reset_min_rollover: None,
        success_url: Some("https://shop.example.com/ok".to_owned()),
        cancel_url: None,
        session: PaymentSession {
            id: SessionId::generate(),
            url: format!("https://pay.example.com/{id}"),
            expires_at: session_expires_at,
            amount_minor: price.minor_units(),
            checkout: None,
        },
        provider: "sandbox".to_owned(),
        idempotency_key: format!("buy-{id}"),
        status: InvoiceStatus::Open,
        created_at: ts(START),
        updated_at: ts(START),
        paid_at: None,
        grant_id: None,
        paid_late: false,
        canceled_at: None,
        cancel_reason: None,
        failure_reason: None,
        notified_at: None,
        refunded_minor: 0,
        credits_reclaimed: rust_decimal::Decimal::ZERO,
        refunded_at: None,
        version: 1,
        id,
    }
}

/// The invoice after a write that bumped its version.
fn next_invoice(i: &Invoice, change: impl FnOnce(&mut Invoice)) -> Invoice {
    let mut new = i.clone();
    change(&mut new);
    new.version = i.version + 1;
    new
}

async fn stored_invoice(store: &dyn Store, e: &Entitlement, session_expires_at: Timestamp) -> Invoice {
    let i = invoice(e, session_expires_at);
    let c = claim("purchase", &i.idempotency_key, i.id.as_str(), "100");
    let outcome = store.insert_purchase(&i, &c).await.expect("insert_purchase");
    assert!(matches!(outcome, InsertOutcome::Inserted), "{outcome:?}");
    i
}

fn capacity(tenant: &TenantId, quantity: u64) -> CapacityGrant {
    let price = |s: &str| ExactPrice::parse(s).expect("price");
    CapacityGrant {
        fid: CapacityGrantId::generate(),
        tenant: tenant.clone(),
        kind: "gpu".to_owned(),
        cluster: "eu-1".to_owned(),
        quantity,
        starts_at: ts(START),
        ends_at: ts(END),
        unit_price: price("1.50"),
        early_termination_buyback_price: price("0.750"),
        flexible_usage_buyback_price: price("0"),
        created_at: ts(START),
        deleted_at: None,
        resold_from: None,
        resold_to: None,
        version: 0,
    }
}

fn plan(tenant: &TenantId, scope: PlanScope, scope_id: &str, status: PlanStatus) -> CreditPlan {
    CreditPlan {
        id: format!("cgrant_{}", ulid::Ulid::generate()),
        tenant: tenant.clone(),
        name: "Included".to_owned(),
        scope,
        scope_id: scope_id.to_owned(),
        credits: credits("100"),
        currency: Some("usd".to_owned()),
        recurrence: Recurrence::Every(Period::Monthly, 1),
        expiration: Expiration::After(1, DurationUnit::Month),
        priority: Some(2),
        metadata: BTreeMap::from([("team".to_owned(), "a".to_owned())]),
        status,
        start_date: ts(START),
        end_date: Some(ts("2031-01-01T00:00:00Z")),
        conversion_rate: Some("1".to_owned()),
        created_at: ts(START),
        updated_at: ts(START),
        version: 0,
    }
}

fn ids<T, I: Ord + Clone>(items: &[T], id: impl Fn(&T) -> &I) -> Vec<I> {
    items.iter().map(|x| id(x).clone()).collect()
}

fn sorted<I: Ord + Clone>(mut v: Vec<I>) -> Vec<I> {
    v.sort();
    v
}

// ---- all of them ----------------------------------------------------------------------------

macro_rules! checks {
    ($($check:ident),* $(,)?) => {
        /// The names of every check, in the order [`run_all`] starts them.
        pub const CHECKS: &[&str] = &[$(stringify!($check)),*];

        /// Runs every check (concurrently; each on its own tenants, `<prefix>-<n>-...`), and fails
        /// naming the checks that failed.
        pub async fn run_all(store: &dyn Store, prefix: &str) {
            let mut runs = Vec::new();
            let mut n = 0usize;
            $(
                n += 1;
                let own = format!("{prefix}-{n}");
                runs.push(async move {
                    let outcome = AssertUnwindSafe($check(store, &own)).catch_unwind().await;
                    (stringify!($check), outcome.is_ok())
                }.boxed_local());
            )*
            let failed: Vec<&str> = futures::future::join_all(runs)
                .await
                .into_iter()
                .filter(|(_, ok)| !ok)
                .map(|(name, _)| name)
                .collect();
            assert!(failed.is_empty(), "{} of {n} contract checks failed: {failed:?}", failed.len());
        }
    };
}

checks!(
    api_keys_are_found_by_hash_and_listed_per_tenant,
    api_key_expiry_only_moves_earlier,
    api_key_touch_writes_at_most_once_per_interval,
    tenant_settings_put_if_absent_then_replace,
    credit_type_names_are_unique_per_tenant,
    billable_metrics_hold_event_types_unique,
    webhook_configs_are_one_per_tenant,
    webhook_endpoints_round_trip_and_change_by_version,
    ingested_events_are_deduplicated_by_key,
    entitlements_round_trip_and_are_written_once,
    entitlements_list_in_id_order,
    entitlement_status_changes,
    grants_round_trip_in_id_order,
    insert_grant_with_an_existing_claim_returns_it,
    insert_grant_needs_an_active_entitlement,
    insert_grant_claim_decides_before_the_entitlement,
    insert_grant_checks_the_period_start,
    find_grant_by_id_within_the_tenant,
    grants_after_pages_in_id_order,
    edit_grant_checks_the_last_use,
    release_claim_frees_the_key,
    void_grant_is_idempotent,
    write_usage_writes_record_counters_and_grants,
    write_usage_returns_an_existing_event,
    write_usage_with_a_stale_grant_writes_nothing,
    write_usage_needs_an_active_entitlement,
    settle_usage_replaces_a_pending_record,
    usage_records_read_back_in_event_hash_order,
    log_reads_equal_every_record,
    entitlements_without_a_log_are_read_from_every_record,
    multi_step_application_resumes_after_a_crash,
    due_for_reset_by_period_end,
    reset_period_is_conditional_and_all_or_nothing,
    capacity_grants_claims_and_listing,
    capacity_delete_is_idempotent,
    capacity_resell_checks_version_and_deletion,
    credit_plans_claims_listing_and_versions,
    active_credit_plans_are_the_published_ones,
    entitlements_in_scope_by_subscription_or_plan,
    apply_plan_period_advances_progress_once,
    insert_purchase_claims_and_sessions,
    update_invoice_checks_the_version,
    settle_invoice_creates_the_grant_once,
    record_refund_is_versioned_and_records_its_message,
    due_open_invoices_by_session_expiry,
    oversized_transactions_are_refused,
    grant_changes_record_their_webhook_messages,
    attempts_page_newest_first_and_subscribers_follow_the_switch,
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStore;

    #[tokio::test]
    async fn the_memory_store_keeps_the_contract() {
        run_all(&MemoryStore::new(), &unique_prefix()).await;
    }

    /// A second run on the same store passes too: no check needs an empty store (as on a shared
    /// table).
    #[tokio::test]
    async fn checks_pass_on_a_store_holding_other_runs() {
        let store = MemoryStore::new();
        run_all(&store, &unique_prefix()).await;
        run_all(&store, &unique_prefix()).await;
        assert_eq!(CHECKS.len(), 48);
    }
}
