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
use crate::auth::hash_key;
use crate::capacity::{CapacityGrant, ExactPrice};
use crate::credits::{CreditType, GrantEdit};
use crate::ledger::{Deduction, UsageStatus};
use crate::model::{ApiKeyRecord, Claim, Entitlement, EntitlementStatus, Grant, GrantDetails, Role};
use crate::money::{Currency, Price};
use crate::payments::PaymentSession;
use crate::periods::Reset;
use crate::plans::{CreditPlan, DurationUnit, Expiration, Period, PlanScope, PlanStatus, Recurrence};
use crate::ports::{EditOutcome, InsertOutcome, PlanApply, Store, StoreError, UsageWrite};
use crate::purchases::{Invoice, InvoiceStatus};
use crate::tenants::TenantSettings;
use crate::usage::{CounterDelta, UsageRecord};
use crate::{
    CapacityGrantId, Clock, CreditAmount, EntitlementId, GrantId, InvoiceId, NonNegative, Priority, SessionId,
    SystemClock, TenantId, Timestamp,
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
    store.write_usage(record, d, grants).await.expect("write_usage")
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

// ---- API keys -------------------------------------------------------------------------------

/// Keys are found by hash, written once (a second put of a hash fails), and listed per tenant in
/// key-id order.
pub async fn api_keys_are_found_by_hash_and_listed_per_tenant(store: &dyn Store, prefix: &str) {
    let (t, other) = (tenant(prefix, "a"), tenant(prefix, "b"));
    let mut k1 = api_key(&t, Role::Admin, ts(START));
    k1.expires_at = Some(ts(END));
    let k2 = api_key(&t, Role::Member, after(ts(START), 60));
    let k3 = api_key(&other, Role::Admin, ts(START));
    for k in [&k1, &k2, &k3] {
        store.put_api_key(k).await.expect("put_api_key");
    }
    assert_eq!(store.find_api_key(&k1.key_hash).await.expect("find"), Some(k1.clone()));
    assert_eq!(store.find_api_key(&k2.key_hash).await.expect("find"), Some(k2.clone()));
    assert_eq!(store.find_api_key(&hash_key("gk_unknown")).await.expect("find"), None);

    let again = ApiKeyRecord {
        role: Role::Member,
        ..k1.clone()
    };
    assert!(store.put_api_key(&again).await.is_err(), "a key hash is written once");
    assert_eq!(store.find_api_key(&k1.key_hash).await.expect("find"), Some(k1.clone()));
    // A put does not write `last_used_at`: only touch_api_key does.
    let used = ApiKeyRecord {
        last_used_at: Some(ts(END)),
        ..api_key(&other, Role::Member, ts(START))
    };
    store.put_api_key(&used).await.expect("put_api_key");
    let read = store.find_api_key(&used.key_hash).await.expect("find").expect("stored");
    assert_eq!(read.last_used_at, None);

    let mut mine = vec![k1.clone(), k2.clone()];
    mine.sort_by_key(ApiKeyRecord::key_id);
    assert_eq!(store.list_api_keys(&t).await.expect("list"), mine);
    let others = store.list_api_keys(&other).await.expect("list");
    assert!(others.len() == 2 && others.contains(&k3));
    assert!(store
        .list_api_keys(&tenant(prefix, "none"))
        .await
        .expect("list")
        .is_empty());
}

async fn key_of(store: &dyn Store, hash: &str) -> ApiKeyRecord {
    store.find_api_key(hash).await.expect("find").expect("key")
}

/// `expire_api_key` moves the expiry earlier, never later; true for the tenant's own keys only.
pub async fn api_key_expiry_only_moves_earlier(store: &dyn Store, prefix: &str) {
    let (t, other) = (tenant(prefix, "a"), tenant(prefix, "b"));
    let k = api_key(&t, Role::Admin, ts(START));
    store.put_api_key(&k).await.expect("put");
    let (t1, t2, t3) = (after(ts(START), 10), after(ts(START), 20), after(ts(START), 30));
    assert!(store.expire_api_key(&t, &k.key_hash, t2).await.expect("expire"));
    assert_eq!(key_of(store, &k.key_hash).await.expires_at, Some(t2));
    assert!(
        store.expire_api_key(&t, &k.key_hash, t3).await.expect("expire"),
        "already earlier: still true"
    );
    assert_eq!(
        key_of(store, &k.key_hash).await.expires_at,
        Some(t2),
        "never moved later"
    );
    assert!(store.expire_api_key(&t, &k.key_hash, t1).await.expect("expire"));
    assert_eq!(key_of(store, &k.key_hash).await.expires_at, Some(t1));
    assert!(
        !store
            .expire_api_key(&other, &k.key_hash, ts(START))
            .await
            .expect("expire"),
        "another tenant's key"
    );
    assert_eq!(key_of(store, &k.key_hash).await.expires_at, Some(t1));
    assert!(!store
        .expire_api_key(&t, &hash_key("gk_unknown"), t1)
        .await
        .expect("expire"));
    assert_eq!(store.find_api_key(&hash_key("gk_unknown")).await.expect("find"), None);
}

/// `touch_api_key` records a use unless one at or after `since` is recorded; unknown keys are not
/// created.
pub async fn api_key_touch_writes_at_most_once_per_interval(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let k = api_key(&t, Role::Member, ts(START));
    store.put_api_key(&k).await.expect("put");
    let n1 = after(ts(START), 7200);
    store
        .touch_api_key(&k.key_hash, n1, after(n1, -3600))
        .await
        .expect("touch");
    assert_eq!(key_of(store, &k.key_hash).await.last_used_at, Some(n1));
    let n2 = after(n1, 60);
    store
        .touch_api_key(&k.key_hash, n2, after(n2, -3600))
        .await
        .expect("touch");
    assert_eq!(
        key_of(store, &k.key_hash).await.last_used_at,
        Some(n1),
        "used within the interval: not written"
    );
    store.touch_api_key(&k.key_hash, n2, n1).await.expect("touch");
    assert_eq!(
        key_of(store, &k.key_hash).await.last_used_at,
        Some(n1),
        "a use at `since` counts"
    );
    let n3 = after(n1, 3601);
    store
        .touch_api_key(&k.key_hash, n3, after(n3, -3600))
        .await
        .expect("touch");
    assert_eq!(key_of(store, &k.key_hash).await.last_used_at, Some(n3));
    let unknown = hash_key("gk_never_stored");
    store
        .touch_api_key(&unknown, n3, n1)
        .await
        .expect("touch of an unknown key");
    assert_eq!(store.find_api_key(&unknown).await.expect("find"), None);
}

// ---- tenants --------------------------------------------------------------------------------

/// `put_tenant_if_absent` writes once; `put_tenant` replaces. Numbers read back normalised.
pub async fn tenant_settings_put_if_absent_then_replace(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    assert_eq!(store.get_tenant(&t).await.expect("get"), None);
    let first = TenantSettings {
        tenant: t.clone(),
        currency: Currency::USD,
        members_may_purchase: true,
        min_price_per_credit: Some(dec("0.010")),
        allowed_redirect_origins: vec!["https://shop.example.com".to_owned(), "https://b.example".to_owned()],
        created_at: ts(START),
    };
    assert!(store.put_tenant_if_absent(&first).await.expect("put_if_absent"));
    let read = store.get_tenant(&t).await.expect("get").expect("settings");
    assert_eq!(read, first);
    assert_eq!(
        read.min_price_per_credit.map(|d| d.to_string()),
        Some("0.01".to_owned()),
        "numbers read back without trailing zeros"
    );
    let second = TenantSettings {
        currency: Currency::parse("eur").expect("eur"),
        members_may_purchase: false,
        min_price_per_credit: None,
        allowed_redirect_origins: Vec::new(),
        ..first.clone()
    };
    assert!(!store.put_tenant_if_absent(&second).await.expect("put_if_absent"));
    assert_eq!(store.get_tenant(&t).await.expect("get"), Some(first));
    store.put_tenant(&second).await.expect("put_tenant");
    assert_eq!(store.get_tenant(&t).await.expect("get"), Some(second));
}

// ---- credit types ---------------------------------------------------------------------------

/// Credit type names are unique per tenant, case-insensitively: a duplicate returns the existing
/// type and writes nothing. Types list in id order.
pub async fn credit_type_names_are_unique_per_tenant(store: &dyn Store, prefix: &str) {
    let (t, other) = (tenant(prefix, "a"), tenant(prefix, "b"));
    assert!(store.list_credit_types(&t).await.expect("list").is_empty());
    let ct = |name: &str| CreditType {
        id: format!("ct_{}", ulid::Ulid::generate()),
        name: name.to_owned(),
    };
    let (tokens, seats) = (ct("Tokens"), ct("Seats"));
    assert_eq!(store.insert_credit_type(&t, &seats).await.expect("insert"), None);
    assert_eq!(store.insert_credit_type(&t, &tokens).await.expect("insert"), None);
    let dup = ct("TOKENS");
    assert_eq!(
        store.insert_credit_type(&t, &dup).await.expect("insert"),
        Some(tokens.clone())
    );
    let mut both = vec![tokens.clone(), seats.clone()];
    both.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(store.list_credit_types(&t).await.expect("list"), both);
    assert_eq!(
        store.insert_credit_type(&other, &ct("tokens")).await.expect("insert"),
        None
    );
    assert_eq!(store.list_credit_types(&other).await.expect("list").len(), 1);
}

// ---- entitlements ---------------------------------------------------------------------------

/// An entitlement reads back exactly as written, is written once, and is its tenant's only.
pub async fn entitlements_round_trip_and_are_written_once(store: &dyn Store, prefix: &str) {
    let (t, other) = (tenant(prefix, "a"), tenant(prefix, "b"));
    let mut e = entitlement(&t, "cus 1/é");
    e.subscription_id = Some("sub_1".to_owned());
    e.plan_id = Some("pro".to_owned());
    e.metadata = BTreeMap::from([
        ("tier".to_owned(), "gold".to_owned()),
        ("empty".to_owned(), String::new()),
    ]);
    e.is_soft_limit = true;
    e.pricing_unit_id = Some("ct_tokens".to_owned());
    e.period_months = None;
    e.period_anchor = ts("2029-12-01T00:00:00Z");
    e.active_from = ts("2029-12-15T10:30:00.123456Z");
    e.usage_in_period = dec("12.50");
    e.overage = dec("0.25");
    store.put_entitlement(&e).await.expect("put");
    let read = store.get_entitlement(&t, &e.id).await.expect("get").expect("stored");
    assert_eq!(read, e);
    assert_eq!(read.usage_in_period.to_string(), "12.5", "numbers read back normalised");
    assert_eq!(
        store.load_entitlement(&t, &e.id).await.expect("load"),
        Some((e.clone(), Vec::new()))
    );
    let again = Entitlement {
        customer_id: "someone else".to_owned(),
        ..e.clone()
    };
    assert!(
        store.put_entitlement(&again).await.is_err(),
        "an entitlement is written once"
    );
    assert_eq!(store.get_entitlement(&t, &e.id).await.expect("get"), Some(e.clone()));
    assert_eq!(store.get_entitlement(&other, &e.id).await.expect("get"), None);
    assert_eq!(store.load_entitlement(&other, &e.id).await.expect("load"), None);
    let unknown = EntitlementId::generate();
    assert_eq!(store.get_entitlement(&t, &unknown).await.expect("get"), None);
}

/// The tenant's entitlements list in id order, optionally of one customer.
pub async fn entitlements_list_in_id_order(store: &dyn Store, prefix: &str) {
    let (t, other) = (tenant(prefix, "a"), tenant(prefix, "b"));
    let made = [
        entitlement(&t, "c1"),
        entitlement(&t, "c2"),
        entitlement(&t, "c1"),
        entitlement(&other, "c1"),
    ];
    for e in made.iter().rev() {
        store.put_entitlement(e).await.expect("put");
    }
    let all = store.list_entitlements(&t, None).await.expect("list");
    assert_eq!(
        ids(&all, |e| &e.id),
        sorted(vec![made[0].id.clone(), made[1].id.clone(), made[2].id.clone()])
    );
    let c1 = store.list_entitlements(&t, Some("c1")).await.expect("list");
    assert_eq!(
        ids(&c1, |e| &e.id),
        sorted(vec![made[0].id.clone(), made[2].id.clone()])
    );
    assert_eq!(c1.iter().find(|e| e.id == made[0].id), Some(&made[0]));
    assert!(store
        .list_entitlements(&t, Some("nobody"))
        .await
        .expect("list")
        .is_empty());
    assert_eq!(store.list_entitlements(&other, None).await.expect("list").len(), 1);
}

/// `set_entitlement_status` sets `active_to` once when the status leaves active, clears it when it
/// returns to active, and returns the entitlement as it now is.
pub async fn entitlement_status_changes(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let e = stored_entitlement(store, &t, "c").await;
    let (t1, t2, t3) = (after(ts(START), 10), after(ts(START), 20), after(ts(START), 30));
    let canceled = store
        .set_entitlement_status(&t, &e.id, EntitlementStatus::Canceled, t1)
        .await
        .expect("set")
        .expect("exists");
    assert_eq!(
        (canceled.status, canceled.active_to),
        (EntitlementStatus::Canceled, Some(t1))
    );
    assert_eq!(store.get_entitlement(&t, &e.id).await.expect("get"), Some(canceled));
    let expired = store
        .set_entitlement_status(&t, &e.id, EntitlementStatus::Expired, t2)
        .await
        .expect("set")
        .expect("exists");
    assert_eq!(
        (expired.status, expired.active_to),
        (EntitlementStatus::Expired, Some(t1))
    );
    let active = store
        .set_entitlement_status(&t, &e.id, EntitlementStatus::Active, t3)
        .await
        .expect("set")
        .expect("exists");
    assert_eq!(active, e, "active again, with no active_to");
    let unknown = EntitlementId::generate();
    assert!(store
        .set_entitlement_status(&t, &unknown, EntitlementStatus::Canceled, t1)
        .await
        .expect("set")
        .is_none());
    assert_eq!(store.get_entitlement(&t, &unknown).await.expect("get"), None);
}

// ---- grants ---------------------------------------------------------------------------------

/// Grants read back exactly, with the entitlement and in id order; each is in its own entitlement's
/// partition.
pub async fn grants_round_trip_in_id_order(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let (e1, e2) = (
        stored_entitlement(store, &t, "c").await,
        stored_entitlement(store, &t, "c").await,
    );
    let mut full = grant(&e1, "100.5");
    full.remaining = dec("7.50");
    full.reserved = dec("2.50");
    full.expires_at = Some(ts("2030-06-01T00:00:00Z"));
    full.priority = Some(Priority::new(dec("0.5")).expect("priority"));
    full.reset_max_rollover = Some(NonNegative::new(dec("50")).expect("bound"));
    full.reset_min_rollover = Some(NonNegative::new(dec("0")).expect("bound"));
    full.recurrence_period = Some("P1M".to_owned());
    full.idempotency_key = Some("key 1".to_owned());
    full.last_used_at = Some(ts("2030-01-02T03:04:05.678901Z"));
    full.version = 3;
    full.credit_type_id = Some("ct_x".to_owned());
    full.details = GrantDetails {
        name: Some("Welcome".to_owned()),
        reason: Some("promo".to_owned()),
        credit_grant_type: Some("PAID".to_owned()),
        custom_fields: BTreeMap::from([("a".to_owned(), "1".to_owned())]),
        paid_amount: Some(dec("10.00")),
        paid_credit_type_id: Some("ct_usd".to_owned()),
        product_ids: vec!["p1".to_owned(), "p2".to_owned()],
        uniqueness_key: Some("u1".to_owned()),
        invoice_id: Some("inv_1".to_owned()),
    };
    let made = [full.clone(), grant(&e1, "1"), grant(&e1, "2")];
    for g in made.iter().rev() {
        assert!(matches!(
            store.insert_grant(g, None, None).await.expect("insert"),
            InsertOutcome::Inserted
        ));
    }
    let elsewhere = stored_grant(store, &e2, "3").await;
    let read = store
        .get_grant(&t, &e1.id, &full.id)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(read, full);
    assert_eq!(
        (
            read.remaining.to_string(),
            read.details.paid_amount.map(|d| d.to_string())
        ),
        ("7.5".to_owned(), Some("10".to_owned())),
        "numbers read back normalised"
    );
    let expected = sorted(ids(&made, |g| &g.id));
    let (_, loaded) = store.load_entitlement(&t, &e1.id).await.expect("load").expect("stored");
    assert_eq!(ids(&loaded, |g| &g.id), expected);
    let listed = store.list_grants(&t, &e1.id).await.expect("list");
    assert_eq!(listed, loaded);
    assert_eq!(store.get_grant(&t, &e1.id, &elsewhere.id).await.expect("get"), None);
    assert_eq!(
        store.get_grant(&t, &e2.id, &elsewhere.id).await.expect("get"),
        Some(elsewhere)
    );
    assert!(store
        .list_grants(&t, &EntitlementId::generate())
        .await
        .expect("list")
        .is_empty());
}

/// A second insert with a claim that exists writes nothing and returns the stored claim. Claims are
/// per entitlement and scope.
pub async fn insert_grant_with_an_existing_claim_returns_it(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let (e, e2) = (
        stored_entitlement(store, &t, "c").await,
        stored_entitlement(store, &t, "c").await,
    );
    let g1 = grant(&e, "10");
    let c1 = claim("grant", "k", g1.id.as_str(), "10");
    assert!(matches!(
        store.insert_grant(&g1, Some(&c1), None).await.expect("insert"),
        InsertOutcome::Inserted
    ));
    let g2 = grant(&e, "20");
    let c2 = claim("grant", "k", g2.id.as_str(), "20");
    match store.insert_grant(&g2, Some(&c2), None).await.expect("insert") {
        InsertOutcome::ClaimExists(stored) => assert_eq!(stored, c1),
        other => panic!("expected the first claim, got {other:?}"),
    }
    assert_eq!(store.get_grant(&t, &e.id, &g2.id).await.expect("get"), None);
    assert_eq!(
        ids(&store.list_grants(&t, &e.id).await.expect("list"), |g| &g.id),
        vec![g1.id.clone()]
    );
    // A grant id that exists (with a new claim) is an error, and writes nothing.
    let collision = claim("grant", "other key", g1.id.as_str(), "10");
    assert!(store.insert_grant(&g1, Some(&collision), None).await.is_err());
    let after_collision = grant(&e, "1");
    assert!(
        matches!(
            store
                .insert_grant(&after_collision, Some(&collision), None)
                .await
                .expect("insert"),
            InsertOutcome::Inserted
        ),
        "the colliding insert's claim was not written"
    );
    // Another scope, or another entitlement: another claim.
    let g3 = grant(&e, "30");
    assert!(matches!(
        store
            .insert_grant(&g3, Some(&claim("metronome", "k", g3.id.as_str(), "30")), None)
            .await
            .expect("insert"),
        InsertOutcome::Inserted
    ));
    let g4 = grant(&e2, "40");
    assert!(matches!(
        store
            .insert_grant(&g4, Some(&claim("grant", "k", g4.id.as_str(), "40")), None)
            .await
            .expect("insert"),
        InsertOutcome::Inserted
    ));
}

/// A grant needs its entitlement to exist and be active; refused, nothing is written (not the claim
/// either).
pub async fn insert_grant_needs_an_active_entitlement(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let e = stored_entitlement(store, &t, "c").await;
    cancel(store, &e).await;
    let g = grant(&e, "10");
    let c = claim("grant", "k", g.id.as_str(), "10");
    assert!(matches!(
        store.insert_grant(&g, Some(&c), None).await.expect("insert"),
        InsertOutcome::ParentUnavailable
    ));
    assert_eq!(store.get_grant(&t, &e.id, &g.id).await.expect("get"), None);
    let mut orphan = grant(&e, "10");
    orphan.entitlement_id = EntitlementId::generate();
    assert!(matches!(
        store.insert_grant(&orphan, None, None).await.expect("insert"),
        InsertOutcome::ParentUnavailable
    ));
    assert_eq!(store.find_grant(&t, &orphan.id).await.expect("find"), None);
    // The refused claim was not written: once active again, the same claim is new.
    store
        .set_entitlement_status(&t, &e.id, EntitlementStatus::Active, ts(START))
        .await
        .expect("set")
        .expect("exists");
    assert!(matches!(
        store.insert_grant(&g, Some(&c), None).await.expect("insert"),
        InsertOutcome::Inserted
    ));
}

/// The claim decides before the entitlement's status: a replay is answered after a cancellation.
pub async fn insert_grant_claim_decides_before_the_entitlement(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let e = stored_entitlement(store, &t, "c").await;
    let g1 = grant(&e, "10");
    let c1 = claim("grant", "k", g1.id.as_str(), "10");
    assert!(matches!(
        store.insert_grant(&g1, Some(&c1), None).await.expect("insert"),
        InsertOutcome::Inserted
    ));
    cancel(store, &e).await;
    let g2 = grant(&e, "10");
    match store
        .insert_grant(&g2, Some(&claim("grant", "k", g2.id.as_str(), "10")), None)
        .await
        .expect("insert")
    {
        InsertOutcome::ClaimExists(stored) => assert_eq!(stored, c1),
        other => panic!("expected the first claim, got {other:?}"),
    }
}

/// With `period_start`, the insert is conditional on the entitlement's period still starting then.
pub async fn insert_grant_checks_the_period_start(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let e = stored_entitlement(store, &t, "c").await;
    let g1 = grant(&e, "1");
    assert!(matches!(
        store
            .insert_grant(&g1, None, Some(e.current_period_start))
            .await
            .expect("insert"),
        InsertOutcome::Inserted
    ));
    let g2 = grant(&e, "2");
    let c2 = claim("grant", "p", g2.id.as_str(), "2");
    assert!(matches!(
        store
            .insert_grant(&g2, Some(&c2), Some(after(e.current_period_start, 86_400)))
            .await
            .expect("insert"),
        InsertOutcome::ParentUnavailable
    ));
    assert_eq!(store.get_grant(&t, &e.id, &g2.id).await.expect("get"), None);
    assert!(matches!(
        store.insert_grant(&g2, Some(&c2), None).await.expect("insert"),
        InsertOutcome::Inserted
    ));
}

/// `find_grant` finds a grant by id among its tenant's only.
pub async fn find_grant_by_id_within_the_tenant(store: &dyn Store, prefix: &str) {
    let (t, other) = (tenant(prefix, "a"), tenant(prefix, "b"));
    let e = stored_entitlement(store, &t, "c").await;
    let g = stored_grant(store, &e, "5").await;
    assert_eq!(store.find_grant(&t, &g.id).await.expect("find"), Some(g.clone()));
    assert_eq!(store.find_grant(&other, &g.id).await.expect("find"), None);
    assert_eq!(store.find_grant(&t, &GrantId::generate()).await.expect("find"), None);
}

async fn walk(store: &dyn Store, t: &TenantId, customer: Option<&str>, limit: usize) -> Vec<GrantId> {
    let mut seen: Vec<GrantId> = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..50 {
        let (batch, exhausted) = store
            .grants_after(t, customer, cursor.as_deref(), limit)
            .await
            .expect("grants_after");
        assert!(batch.len() <= limit, "at most the limit");
        for g in &batch {
            assert!(
                cursor.as_deref().is_none_or(|c| g.id.as_str() > c),
                "after the cursor, in id order"
            );
            assert!(customer.is_none_or(|c| g.customer_id == c));
            cursor = Some(g.id.as_str().to_owned());
            seen.push(g.id.clone());
        }
        if exhausted || batch.is_empty() {
            return seen;
        }
    }
    panic!("grants_after did not end");
}

/// `grants_after` pages through the tenant's (or a customer's) grants in id order.
pub async fn grants_after_pages_in_id_order(store: &dyn Store, prefix: &str) {
    let (t, other) = (tenant(prefix, "a"), tenant(prefix, "b"));
    let (e1, e2) = (
        stored_entitlement(store, &t, "c1").await,
        stored_entitlement(store, &t, "c2").await,
    );
    let mut c1 = Vec::new();
    let mut all = Vec::new();
    for (e, n) in [(&e1, 3), (&e2, 2)] {
        for _ in 0..n {
            let g = stored_grant(store, e, "1").await;
            if e.id == e1.id {
                c1.push(g.id.clone());
            }
            all.push(g.id);
        }
    }
    let (all, c1) = (sorted(all), sorted(c1));
    for limit in [1, 2, 3, 10] {
        assert_eq!(walk(store, &t, None, limit).await, all, "tenant-wide, limit {limit}");
    }
    for limit in [2, 3, 10] {
        assert_eq!(
            walk(store, &t, Some("c1"), limit).await,
            c1,
            "one customer, limit {limit}"
        );
    }
    let (page, exhausted) = store.grants_after(&t, None, None, 6).await.expect("grants_after");
    assert_eq!((ids(&page, |g| &g.id), exhausted), (all.clone(), true));
    // A read that stops at its limit says "maybe more", even when nothing follows.
    let (page, exhausted) = store.grants_after(&t, None, None, 5).await.expect("grants_after");
    assert_eq!((ids(&page, |g| &g.id), exhausted), (all.clone(), false));
    // The customer index reads from the cursor itself: its grant counts toward the limit.
    let (page, exhausted) = store
        .grants_after(&t, Some("c1"), Some(c1[0].as_str()), 2)
        .await
        .expect("grants_after");
    assert_eq!((ids(&page, |g| &g.id), exhausted), (vec![c1[1].clone()], false));
    let (page, _) = store
        .grants_after(&t, None, Some(all[1].as_str()), 2)
        .await
        .expect("grants_after");
    assert_eq!(ids(&page, |g| &g.id), all[2..4].to_vec());
    let (page, exhausted) = store
        .grants_after(&t, Some("c2"), None, 10)
        .await
        .expect("grants_after");
    assert_eq!((page.len(), exhausted), (2, true));
    assert_eq!(page.iter().find(|g| g.customer_id != "c2"), None);
    let (page, exhausted) = store.grants_after(&other, None, None, 10).await.expect("grants_after");
    assert!(page.is_empty() && exhausted);
    assert!(
        matches!(
            store.grants_after(&t, None, None, 0).await,
            Err(StoreError::Rejected(_))
        ),
        "a limit of 0 is refused"
    );
}

/// `edit_grant` changes the descriptive fields and expiry and bumps the version, unless usage drew on
/// the grant at or after the new expiry (then nothing is written).
pub async fn edit_grant_checks_the_last_use(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let e = stored_entitlement(store, &t, "c").await;
    let used_at = ts("2030-01-10T00:00:00Z");
    let mut g = grant(&e, "10");
    g.last_used_at = Some(used_at);
    g.details.name = Some("old".to_owned());
    assert!(matches!(
        store.insert_grant(&g, None, None).await.expect("insert"),
        InsertOutcome::Inserted
    ));
    let edit = |name: Option<&str>, expires_at: Option<Timestamp>, kind: Option<&str>| GrantEdit {
        entitlement_id: e.id.clone(),
        id: g.id.clone(),
        name: name.map(str::to_owned),
        expires_at,
        credit_grant_type: kind.map(str::to_owned),
    };
    let later = after(used_at, 1);
    let edited = match store
        .edit_grant(&t, &edit(Some("new"), Some(later), Some("FREE")))
        .await
        .expect("edit")
    {
        EditOutcome::Edited(g) => *g,
        other => panic!("expected an edit, got {other:?}"),
    };
    let mut expected = g.clone();
    expected.details.name = Some("new".to_owned());
    expected.details.credit_grant_type = Some("FREE".to_owned());
    expected.expires_at = Some(later);
    expected.version = 1;
    assert_eq!(edited, expected);
    assert_eq!(
        store.get_grant(&t, &e.id, &g.id).await.expect("get"),
        Some(expected.clone())
    );
    for expires in [used_at, after(used_at, -3600)] {
        match store
            .edit_grant(&t, &edit(Some("x"), Some(expires), None))
            .await
            .expect("edit")
        {
            EditOutcome::UsedAfterExpiry(at) => assert_eq!(at, used_at),
            other => panic!("expected UsedAfterExpiry, got {other:?}"),
        }
    }
    assert_eq!(
        store.get_grant(&t, &e.id, &g.id).await.expect("get"),
        Some(expected.clone()),
        "nothing written"
    );
    match store.edit_grant(&t, &edit(None, None, None)).await.expect("edit") {
        EditOutcome::Edited(g) => assert_eq!(
            *g,
            Grant {
                version: 2,
                ..expected.clone()
            }
        ),
        other => panic!("expected an edit, got {other:?}"),
    }
    let missing = GrantEdit {
        id: GrantId::generate(),
        ..edit(Some("x"), None, None)
    };
    assert!(matches!(
        store.edit_grant(&t, &missing).await.expect("edit"),
        EditOutcome::Missing
    ));
    let elsewhere = GrantEdit {
        entitlement_id: EntitlementId::generate(),
        ..edit(Some("x"), None, None)
    };
    assert!(matches!(
        store.edit_grant(&t, &elsewhere).await.expect("edit"),
        EditOutcome::Missing
    ));
    let unused = stored_grant(store, &e, "1").await;
    let early = GrantEdit {
        id: unused.id.clone(),
        ..edit(None, Some(after(ts(START), 1)), None)
    };
    assert!(matches!(
        store.edit_grant(&t, &early).await.expect("edit"),
        EditOutcome::Edited(_)
    ));
}

/// `release_claim` deletes one claim of one entitlement, so its key can be used again.
pub async fn release_claim_frees_the_key(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let (e, e2) = (
        stored_entitlement(store, &t, "c").await,
        stored_entitlement(store, &t, "c").await,
    );
    let g1 = grant(&e, "1");
    let c1 = claim("metronome", "u", g1.id.as_str(), "1");
    assert!(matches!(
        store.insert_grant(&g1, Some(&c1), None).await.expect("insert"),
        InsertOutcome::Inserted
    ));
    store
        .release_claim(&t, &e2.id, "metronome", "u")
        .await
        .expect("release elsewhere");
    store
        .release_claim(&t, &e.id, "grant", "u")
        .await
        .expect("release another scope");
    let g2 = grant(&e, "1");
    let c2 = claim("metronome", "u", g2.id.as_str(), "1");
    assert!(matches!(
        store.insert_grant(&g2, Some(&c2), None).await.expect("insert"),
        InsertOutcome::ClaimExists(_)
    ));
    store.release_claim(&t, &e.id, "metronome", "u").await.expect("release");
    assert!(matches!(
        store.insert_grant(&g2, Some(&c2), None).await.expect("insert"),
        InsertOutcome::Inserted
    ));
    store
        .release_claim(&t, &e.id, "metronome", "never claimed")
        .await
        .expect("releasing a missing claim is fine");
}

/// `void_grant` sets `voided_at` once (bumping the version); later voids return it unchanged.
pub async fn void_grant_is_idempotent(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let e = stored_entitlement(store, &t, "c").await;
    let g = stored_grant(store, &e, "10").await;
    let (t1, t2) = (after(ts(START), 10), after(ts(START), 20));
    let voided = store
        .void_grant(&t, &e.id, &g.id, t1)
        .await
        .expect("void")
        .expect("exists");
    let expected = Grant {
        voided_at: Some(t1),
        version: 1,
        ..g.clone()
    };
    assert_eq!(voided, expected);
    let again = store
        .void_grant(&t, &e.id, &g.id, t2)
        .await
        .expect("void")
        .expect("exists");
    assert_eq!(again, expected, "voided_at never moves");
    assert_eq!(store.get_grant(&t, &e.id, &g.id).await.expect("get"), Some(expected));
    assert_eq!(
        store
            .void_grant(&t, &e.id, &GrantId::generate(), t1)
            .await
            .expect("void"),
        None
    );
    assert_eq!(
        store
            .void_grant(&t, &EntitlementId::generate(), &g.id, t1)
            .await
            .expect("void"),
        None
    );
}

// ---- usage ----------------------------------------------------------------------------------

/// `write_usage` writes the record, adds to the counters and replaces the grants, together.
pub async fn write_usage_writes_record_counters_and_grants(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let e = stored_entitlement(store, &t, "c").await;
    let (g1, g2) = (stored_grant(store, &e, "10").await, stored_grant(store, &e, "5").await);
    let u1 = usage(&e, "evt-1", "12", vec![(&g1, "10"), (&g2, "2")]);
    let w1 = [
        bumped(&g1, |g| {
            g.remaining = dec("0");
            g.last_used_at = Some(u1.occurred_at);
        }),
        bumped(&g2, |g| g.remaining = dec("3.0")),
    ];
    assert!(matches!(
        write(store, &u1, delta("12", "0"), &w1).await,
        UsageWrite::Written
    ));
    let (ent, grants, records) = store.load_ledger(&t, &e.id).await.expect("load").expect("stored");
    assert_eq!((ent.usage_in_period, ent.overage), (dec("12"), dec("0")));
    let mut expected = vec![w1[0].0.clone(), w1[1].0.clone()];
    expected.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(grants, expected);
    assert_eq!(records, vec![u1.clone()]);
    assert_eq!(store.get_usage(&t, &e.id, "evt-1").await.expect("get"), Some(u1));
    let mut u2 = usage(&e, "evt-2", "4", vec![(&g2, "3")]);
    u2.overage = dec("1");
    let w2 = [bumped(&w1[1].0, |g| g.remaining = Decimal::ZERO)];
    assert!(matches!(
        write(store, &u2, delta("4", "1"), &w2).await,
        UsageWrite::Written
    ));
    let ent = store.get_entitlement(&t, &e.id).await.expect("get").expect("stored");
    assert_eq!((ent.usage_in_period, ent.overage), (dec("16"), dec("1")));
    assert_eq!(
        store.get_grant(&t, &e.id, &g2.id).await.expect("get"),
        Some(w2[0].0.clone())
    );
}

/// A record with the event id exists: nothing is written and it is returned, whatever else moved.
pub async fn write_usage_returns_an_existing_event(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let e = stored_entitlement(store, &t, "c").await;
    let g = stored_grant(store, &e, "10").await;
    let u1 = usage(&e, "evt-1", "3", vec![(&g, "3")]);
    let w1 = [bumped(&g, |g| g.remaining = dec("7"))];
    assert!(matches!(
        write(store, &u1, delta("3", "0"), &w1).await,
        UsageWrite::Written
    ));
    let u2 = usage(&e, "evt-1", "5", vec![(&w1[0].0, "5")]);
    let w2 = [bumped(&w1[0].0, |g| g.remaining = dec("2"))];
    match write(store, &u2, delta("5", "0"), &w2).await {
        UsageWrite::Exists(old) => assert_eq!(old, u1),
        other => panic!("expected Exists, got {other:?}"),
    }
    let (ent, grants, records) = store.load_ledger(&t, &e.id).await.expect("load").expect("stored");
    assert_eq!(ent.usage_in_period, dec("3"), "counters unchanged");
    assert_eq!(grants, vec![w1[0].0.clone()], "grants unchanged");
    assert_eq!(records, vec![u1.clone()]);
    // It decides first: before stale grants and an inactive entitlement.
    cancel(store, &e).await;
    match write(store, &u2, delta("5", "0"), &w1).await {
        UsageWrite::Exists(old) => assert_eq!(old, u1),
        other => panic!("expected Exists, got {other:?}"),
    }
}

/// A grant that moved since it was read (or is missing): nothing is written, Stale.
pub async fn write_usage_with_a_stale_grant_writes_nothing(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let e = stored_entitlement(store, &t, "c").await;
    let (g1, g2) = (stored_grant(store, &e, "10").await, stored_grant(store, &e, "10").await);
    let u = usage(&e, "evt-1", "4", vec![(&g1, "2"), (&g2, "2")]);
    let fresh = bumped(&g1, |g| g.remaining = dec("8"));
    let (moved, _) = bumped(&g2, |g| g.remaining = dec("8"));
    let stale = [fresh.clone(), (moved.clone(), 1)];
    assert!(matches!(
        write(store, &u, delta("4", "0"), &stale).await,
        UsageWrite::Stale
    ));
    let mut missing = grant(&e, "10");
    missing.remaining = dec("8");
    assert!(matches!(
        write(store, &u, delta("4", "0"), &[(missing, 0)]).await,
        UsageWrite::Stale
    ));
    let (ent, grants, records) = store.load_ledger(&t, &e.id).await.expect("load").expect("stored");
    assert_eq!(ent.usage_in_period, Decimal::ZERO);
    assert_eq!(
        grants,
        sorted_grants(vec![g1, g2]),
        "no grant written, not even the fresh one"
    );
    assert!(records.is_empty());
}

fn sorted_grants(mut g: Vec<Grant>) -> Vec<Grant> {
    g.sort_by(|a, b| a.id.cmp(&b.id));
    g
}

/// The entitlement must exist and be active (checked before the grants' versions).
pub async fn write_usage_needs_an_active_entitlement(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let e = stored_entitlement(store, &t, "c").await;
    let g = stored_grant(store, &e, "10").await;
    cancel(store, &e).await;
    let u = usage(&e, "evt-1", "1", vec![(&g, "1")]);
    let w = [bumped(&g, |g| g.remaining = dec("9"))];
    assert!(matches!(
        write(store, &u, delta("1", "0"), &w).await,
        UsageWrite::EntitlementUnavailable
    ));
    let stale = [(w[0].0.clone(), 7)];
    assert!(matches!(
        write(store, &u, delta("1", "0"), &stale).await,
        UsageWrite::EntitlementUnavailable
    ));
    let (ent, grants, records) = store.load_ledger(&t, &e.id).await.expect("load").expect("stored");
    assert_eq!(
        (ent.usage_in_period, grants, records.len()),
        (Decimal::ZERO, vec![g], 0)
    );
    let mut orphan = usage(&e, "evt-2", "1", Vec::new());
    orphan.entitlement_id = EntitlementId::generate();
    assert!(matches!(
        write(store, &orphan, delta("1", "0"), &[]).await,
        UsageWrite::EntitlementUnavailable
    ));
    assert_eq!(
        store.get_usage(&t, &orphan.entitlement_id, "evt-2").await.expect("get"),
        None
    );
}

/// `settle_usage` replaces a pending record (and only a pending one) with its settled state, adds
/// to the counters (the entitlement need only exist) and replaces the grants at their versions.
pub async fn settle_usage_replaces_a_pending_record(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let e = stored_entitlement(store, &t, "c").await;
    let g = stored_grant(store, &e, "10").await;
    let mut pending = usage(&e, "evt-1", "4", vec![(&g, "4")]);
    pending.status = UsageStatus::Pending;
    let held = bumped(&g, |g| g.reserved = dec("4"));
    assert!(matches!(
        write(store, &pending, delta("0", "0"), std::slice::from_ref(&held)).await,
        UsageWrite::Written
    ));
    let committed = UsageRecord {
        status: UsageStatus::Committed,
        settled_at: Some(after(ts(START), 7200)),
        ..pending.clone()
    };
    let consumed = bumped(&held.0, |g| {
        g.reserved = Decimal::ZERO;
        g.remaining = dec("6");
    });
    // A stale grant: nothing written.
    let stale = [(consumed.0.clone(), 0)];
    assert!(!store
        .settle_usage(&committed, delta("4", "0"), &stale)
        .await
        .expect("settle"));
    assert_eq!(
        store.get_usage(&t, &e.id, "evt-1").await.expect("get"),
        Some(pending.clone())
    );
    assert!(store
        .settle_usage(&committed, delta("4", "0"), std::slice::from_ref(&consumed))
        .await
        .expect("settle"));
    let (ent, grants, records) = store.load_ledger(&t, &e.id).await.expect("load").expect("stored");
    assert_eq!(ent.usage_in_period, dec("4"));
    assert_eq!(grants, vec![consumed.0.clone()]);
    assert_eq!(records, vec![committed.clone()]);
    // No longer pending: nothing written.
    let released = UsageRecord {
        status: UsageStatus::Released,
        ..committed.clone()
    };
    assert!(!store
        .settle_usage(&released, delta("0", "0"), &[])
        .await
        .expect("settle"));
    assert_eq!(store.get_usage(&t, &e.id, "evt-1").await.expect("get"), Some(committed));
    // A missing record is not created.
    let mut unknown = released.clone();
    unknown.event_id = "evt-unknown".to_owned();
    assert!(!store
        .settle_usage(&unknown, delta("1", "0"), &[])
        .await
        .expect("settle"));
    assert_eq!(store.get_usage(&t, &e.id, "evt-unknown").await.expect("get"), None);
    // Settling needs no active entitlement.
    let mut second = usage(&e, "evt-2", "1", vec![(&consumed.0, "1")]);
    second.status = UsageStatus::Pending;
    let held2 = bumped(&consumed.0, |g| g.reserved = dec("1"));
    assert!(matches!(
        write(store, &second, delta("0", "0"), std::slice::from_ref(&held2)).await,
        UsageWrite::Written
    ));
    cancel(store, &e).await;
    let release = UsageRecord {
        status: UsageStatus::Released,
        settled_at: Some(after(ts(START), 7200)),
        ..second
    };
    let freed = bumped(&held2.0, |g| g.reserved = Decimal::ZERO);
    assert!(store
        .settle_usage(&release, delta("0", "0"), &[freed])
        .await
        .expect("settle"));
    let ent = store.get_entitlement(&t, &e.id).await.expect("get").expect("stored");
    assert_eq!(ent.usage_in_period, dec("4"));
}

/// An entitlement's usage records are read back (by `load_ledger`) in the order of the SHA-256 of
/// their event ids (the sort key), with numbers normalised.
pub async fn usage_records_read_back_in_event_hash_order(store: &dyn Store, prefix: &str) {
    use sha2::{Digest, Sha256};
    let t = tenant(prefix, "a");
    let e = stored_entitlement(store, &t, "c").await;
    let events = ["evt-a", "evt-b", "evt-c", "evt-d"];
    for id in events {
        let mut u = usage(&e, id, "1.50", Vec::new());
        u.overage = dec("1.50");
        assert!(matches!(
            write(store, &u, delta("1.50", "1.50"), &[]).await,
            UsageWrite::Written
        ));
    }
    let (ent, _, records) = store.load_ledger(&t, &e.id).await.expect("load").expect("stored");
    let mut expected: Vec<&str> = events.to_vec();
    expected.sort_by_key(|id| hex::encode(Sha256::digest(id.as_bytes())));
    assert_eq!(
        records.iter().map(|r| r.event_id.as_str()).collect::<Vec<_>>(),
        expected
    );
    assert_eq!(records[0].amount.to_string(), "1.5", "numbers read back normalised");
    // A sum's scale is not part of the contract: DynamoDB Local keeps the operands' ("6.00"),
    // DynamoDB and the memory store trim it ("6").
    assert_eq!(ent.usage_in_period, dec("6"));
    assert_eq!(store.get_usage(&t, &e.id, "evt-z").await.expect("get"), None);
    assert!(store
        .load_ledger(&t, &EntitlementId::generate())
        .await
        .expect("load")
        .is_none());
}

// ---- periods --------------------------------------------------------------------------------

/// The reset schedule: active entitlements whose period ended by `now`, by period end; a smaller
/// limit gives a prefix. Cancelled and blocked ones leave it (and a cancelled one made active again
/// does not come back: the status change does not restore its schedule keys).
pub async fn due_for_reset_by_period_end(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let base = schedule_base();
    let at = |micros: i64| micros_after(base, micros);
    let make = |end: Timestamp| {
        let mut e = entitlement(&t, "c");
        e.current_period_end = end;
        e.current_period_start = after(end, -3600);
        e.period_anchor = e.current_period_start;
        e.period_months = None;
        e
    };
    let (first, second, third) = (make(at(2)), make(at(1)), make(at(3)));
    let (canceled, blocked, revived, later) = (make(at(1)), make(at(1)), make(at(2)), make(at(10)));
    for e in [&first, &second, &third, &canceled, &blocked, &revived, &later] {
        store.put_entitlement(e).await.expect("put");
    }
    cancel(store, &canceled).await;
    store
        .block_period_reset(&t, &blocked.id, "bad period")
        .await
        .expect("block");
    cancel(store, &revived).await;
    store
        .set_entitlement_status(&t, &revived.id, EntitlementStatus::Active, at(2))
        .await
        .expect("set")
        .expect("exists");
    store
        .block_period_reset(&t, &EntitlementId::generate(), "missing")
        .await
        .expect("blocking a missing entitlement is fine");
    let mine = |due: Vec<(TenantId, crate::EntitlementId)>| -> Vec<EntitlementId> {
        due.into_iter().filter(|(x, _)| *x == t).map(|(_, id)| id).collect()
    };
    let now = at(3);
    let full = store.entitlements_due_for_reset(now, 1000).await.expect("due");
    assert_eq!(
        mine(full.clone()),
        vec![second.id.clone(), first.id.clone(), third.id.clone()]
    );
    for limit in 1..=3 {
        let some = store.entitlements_due_for_reset(now, limit).await.expect("due");
        assert_eq!(some, full[..limit.min(full.len())].to_vec(), "limit {limit}: a prefix");
    }
    assert_eq!(
        mine(store.entitlements_due_for_reset(at(1), 1000).await.expect("due")),
        vec![second.id.clone()],
        "an end at now is due"
    );
    assert!(mine(store.entitlements_due_for_reset(at(0), 1000).await.expect("due")).is_empty());
    // A reset moves the entitlement in the schedule to its new period end.
    let reset = Reset {
        old_end: second.current_period_end,
        start: second.current_period_end,
        end: at(100),
        grants: Vec::new(),
        record: None,
    };
    assert!(store.reset_period(&second, &reset).await.expect("reset"));
    assert_eq!(
        mine(store.entitlements_due_for_reset(now, 1000).await.expect("due")),
        vec![first.id.clone(), third.id.clone()]
    );
    assert_eq!(
        mine(store.entitlements_due_for_reset(at(100), 1000).await.expect("due")),
        vec![first.id.clone(), third.id.clone(), later.id.clone(), second.id.clone()]
    );
}

/// An entitlement with counters and a grant whose rest a reset clamps (8 to 5).
async fn reset_setup(store: &dyn Store, t: &TenantId) -> (Entitlement, Grant) {
    let mut e = entitlement(t, "c");
    e.usage_in_period = dec("5");
    e.overage = dec("1");
    store.put_entitlement(&e).await.expect("put");
    let mut g = grant(&e, "10");
    g.remaining = dec("8");
    g.reset_max_rollover = Some(NonNegative::new(dec("5")).expect("bound"));
    assert!(matches!(
        store.insert_grant(&g, None, None).await.expect("insert"),
        InsertOutcome::Inserted
    ));
    (e, g)
}

/// `reset_period` moves the period and zeroes the counters, writes the clamped grants at their
/// versions and the rollover record, in one transaction conditional on the old period end and the
/// entitlement being active: false, and nothing written, when anything moved.
pub async fn reset_period_is_conditional_and_all_or_nothing(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let new_end = ts("2030-03-01T00:00:00Z");
    let reset_of = |e: &Entitlement, g: &Grant, read: u64| {
        let mut clamped = g.clone();
        clamped.remaining = dec("5");
        clamped.version = read + 1;
        let mut record = usage(
            e,
            &format!("rollover:{}", e.current_period_end.to_storage()),
            "0",
            vec![(g, "3")],
        );
        record.rollover = true;
        record.occurred_at = e.current_period_end;
        record.fingerprint = BTreeMap::new();
        Reset {
            old_end: e.current_period_end,
            start: e.current_period_end,
            end: new_end,
            grants: vec![(clamped, read)],
            record: Some(record),
        }
    };

    let (e, g) = reset_setup(store, &t).await;
    let reset = reset_of(&e, &g, 0);
    assert!(store.reset_period(&e, &reset).await.expect("reset"));
    let (ent, grants, records) = store.load_ledger(&t, &e.id).await.expect("load").expect("stored");
    let expected = Entitlement {
        current_period_start: e.current_period_end,
        current_period_end: new_end,
        usage_in_period: Decimal::ZERO,
        overage: Decimal::ZERO,
        ..e.clone()
    };
    assert_eq!(ent, expected);
    assert_eq!(grants, vec![reset.grants[0].0.clone()]);
    assert_eq!(records, reset.record.clone().into_iter().collect::<Vec<_>>());
    // Again: the period end moved.
    assert!(!store.reset_period(&e, &reset).await.expect("reset"));
    assert_eq!(
        store.load_ledger(&t, &e.id).await.expect("load"),
        Some((expected, grants, records))
    );

    // A grant that moved: nothing written.
    let (e, g) = reset_setup(store, &t).await;
    assert!(!store.reset_period(&e, &reset_of(&e, &g, 4)).await.expect("reset"));
    let (ent, grants, records) = store.load_ledger(&t, &e.id).await.expect("load").expect("stored");
    assert_eq!((ent, grants, records.len()), (e.clone(), vec![g.clone()], 0));

    // The rollover record exists: nothing written.
    let (e, g) = reset_setup(store, &t).await;
    let reset = reset_of(&e, &g, 0);
    let existing = reset.record.clone().expect("record");
    assert!(matches!(
        write(store, &existing, delta("0", "0"), &[]).await,
        UsageWrite::Written
    ));
    assert!(!store.reset_period(&e, &reset).await.expect("reset"));
    assert_eq!(store.get_entitlement(&t, &e.id).await.expect("get"), Some(e.clone()));
    assert_eq!(store.get_grant(&t, &e.id, &g.id).await.expect("get"), Some(g.clone()));

    // Not active: nothing written.
    let (e, g) = reset_setup(store, &t).await;
    cancel(store, &e).await;
    assert!(!store.reset_period(&e, &reset_of(&e, &g, 0)).await.expect("reset"));
    let ent = store.get_entitlement(&t, &e.id).await.expect("get").expect("stored");
    assert_eq!(ent.current_period_end, e.current_period_end);
    assert_eq!(store.get_grant(&t, &e.id, &g.id).await.expect("get"), Some(g));

    // A reset without grants or record.
    let e = stored_entitlement(store, &t, "c").await;
    let bare = Reset {
        old_end: e.current_period_end,
        start: e.current_period_end,
        end: new_end,
        grants: Vec::new(),
        record: None,
    };
    assert!(store.reset_period(&e, &bare).await.expect("reset"));
    let ent = store.get_entitlement(&t, &e.id).await.expect("get").expect("stored");
    assert_eq!(
        (ent.current_period_start, ent.current_period_end),
        (e.current_period_end, new_end)
    );
}

// ---- capacity grants ------------------------------------------------------------------------

/// Capacity grants: claimed inserts (a tenant-level claim), reads, and listing in id order.
pub async fn capacity_grants_claims_and_listing(store: &dyn Store, prefix: &str) {
    let (t, other) = (tenant(prefix, "a"), tenant(prefix, "b"));
    let c1 = capacity(&t, 10);
    let k1 = claim("capacity", "k", c1.fid.as_str(), "10");
    assert!(matches!(
        store.insert_capacity_grant(&c1, Some(&k1)).await.expect("insert"),
        InsertOutcome::Inserted
    ));
    let c2 = capacity(&t, 20);
    match store
        .insert_capacity_grant(&c2, Some(&claim("capacity", "k", c2.fid.as_str(), "20")))
        .await
        .expect("insert")
    {
        InsertOutcome::ClaimExists(stored) => assert_eq!(stored, k1),
        other => panic!("expected the first claim, got {other:?}"),
    }
    assert_eq!(store.get_capacity_grant(&t, &c2.fid).await.expect("get"), None);
    let c3 = capacity(&t, 30);
    assert!(matches!(
        store.insert_capacity_grant(&c3, None).await.expect("insert"),
        InsertOutcome::Inserted
    ));
    assert_eq!(
        store.get_capacity_grant(&t, &c1.fid).await.expect("get"),
        Some(c1.clone())
    );
    assert_eq!(
        store
            .get_capacity_grant(&t, &c1.fid)
            .await
            .expect("get")
            .map(|g| g.unit_price.as_str().to_owned()),
        Some("1.50".to_owned()),
        "prices are kept as written"
    );
    assert_eq!(store.get_capacity_grant(&other, &c1.fid).await.expect("get"), None);
    let mut both = vec![c1.clone(), c3.clone()];
    both.sort_by(|a, b| a.fid.cmp(&b.fid));
    assert_eq!(store.list_capacity_grants(&t).await.expect("list"), both);
    assert!(store.list_capacity_grants(&other).await.expect("list").is_empty());
    // The same key in another scope of the tenant (a credit plan's) is another claim.
    let p = plan(&t, PlanScope::Plan, "pro", PlanStatus::Published);
    assert!(matches!(
        store
            .insert_credit_plan(&p, Some(&claim("creditplan", "k", &p.id, "1")))
            .await
            .expect("insert"),
        InsertOutcome::Inserted
    ));
}

/// `delete_capacity_grant` sets `deleted_at` once (bumping the version).
pub async fn capacity_delete_is_idempotent(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let c = capacity(&t, 10);
    assert!(matches!(
        store.insert_capacity_grant(&c, None).await.expect("insert"),
        InsertOutcome::Inserted
    ));
    let (t1, t2) = (after(ts(START), 10), after(ts(START), 20));
    let expected = CapacityGrant {
        deleted_at: Some(t1),
        version: 1,
        ..c.clone()
    };
    assert_eq!(
        store.delete_capacity_grant(&t, &c.fid, t1).await.expect("delete"),
        Some(expected.clone())
    );
    assert_eq!(
        store.delete_capacity_grant(&t, &c.fid, t2).await.expect("delete"),
        Some(expected.clone())
    );
    assert_eq!(store.get_capacity_grant(&t, &c.fid).await.expect("get"), Some(expected));
    assert_eq!(
        store
            .delete_capacity_grant(&t, &CapacityGrantId::generate(), t1)
            .await
            .expect("delete"),
        None
    );
}

/// `resell_capacity_grant` replaces the old grant only at the version read and while not deleted,
/// and creates the new one, together.
pub async fn capacity_resell_checks_version_and_deletion(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let old = capacity(&t, 10);
    assert!(matches!(
        store.insert_capacity_grant(&old, None).await.expect("insert"),
        InsertOutcome::Inserted
    ));
    let resell = |old: &CapacityGrant, quantity: u64| {
        let new = CapacityGrant {
            fid: CapacityGrantId::generate(),
            quantity,
            starts_at: after(ts(START), 3600),
            resold_from: Some(old.fid.clone()),
            ..old.clone()
        };
        let retired = CapacityGrant {
            deleted_at: Some(new.starts_at),
            resold_to: Some(new.fid.clone()),
            version: old.version + 1,
            ..old.clone()
        };
        (retired, new)
    };
    let (retired, new) = resell(&old, 4);
    assert!(!store.resell_capacity_grant(&retired, 1, &new).await.expect("resell"));
    assert_eq!(store.get_capacity_grant(&t, &new.fid).await.expect("get"), None);
    assert_eq!(
        store.get_capacity_grant(&t, &old.fid).await.expect("get"),
        Some(old.clone())
    );
    assert!(store.resell_capacity_grant(&retired, 0, &new).await.expect("resell"));
    assert_eq!(
        store.get_capacity_grant(&t, &old.fid).await.expect("get"),
        Some(retired.clone())
    );
    assert_eq!(
        store.get_capacity_grant(&t, &new.fid).await.expect("get"),
        Some(new.clone())
    );
    // Deleted (as a resell leaves it): refused even at its version.
    let (again, newer) = resell(&retired, 2);
    assert!(!store
        .resell_capacity_grant(&again, retired.version, &newer)
        .await
        .expect("resell"));
    assert_eq!(store.get_capacity_grant(&t, &newer.fid).await.expect("get"), None);
    let gone = capacity(&t, 10);
    assert!(matches!(
        store.insert_capacity_grant(&gone, None).await.expect("insert"),
        InsertOutcome::Inserted
    ));
    let deleted = store
        .delete_capacity_grant(&t, &gone.fid, ts(START))
        .await
        .expect("delete")
        .expect("exists");
    let (r, n) = resell(&deleted, 5);
    assert!(!store
        .resell_capacity_grant(&r, deleted.version, &n)
        .await
        .expect("resell"));
    let missing = capacity(&t, 10);
    let (r, n) = resell(&missing, 5);
    assert!(!store.resell_capacity_grant(&r, 0, &n).await.expect("resell"));
    assert_eq!(store.get_capacity_grant(&t, &r.fid).await.expect("get"), None);
}

// ---- credit plans ---------------------------------------------------------------------------

/// Credit plans: claimed inserts, reads, listing in id order, and replacement at a version.
pub async fn credit_plans_claims_listing_and_versions(store: &dyn Store, prefix: &str) {
    let (t, other) = (tenant(prefix, "a"), tenant(prefix, "b"));
    let p1 = plan(&t, PlanScope::Subscription, "sub_1", PlanStatus::Published);
    let k1 = claim("creditplan", "k", &p1.id, "100");
    assert!(matches!(
        store.insert_credit_plan(&p1, Some(&k1)).await.expect("insert"),
        InsertOutcome::Inserted
    ));
    let p2 = plan(&t, PlanScope::Subscription, "sub_2", PlanStatus::Published);
    match store
        .insert_credit_plan(&p2, Some(&claim("creditplan", "k", &p2.id, "200")))
        .await
        .expect("insert")
    {
        InsertOutcome::ClaimExists(stored) => assert_eq!(stored, k1),
        other => panic!("expected the first claim, got {other:?}"),
    }
    assert_eq!(store.get_credit_plan(&t, &p2.id).await.expect("get"), None);
    let mut p3 = plan(&t, PlanScope::Plan, "pro", PlanStatus::Published);
    p3.recurrence = Recurrence::Once;
    p3.expiration = Expiration::BillingCycle;
    p3.priority = None;
    p3.end_date = None;
    p3.currency = None;
    p3.conversion_rate = None;
    p3.metadata = BTreeMap::new();
    let mut p4 = plan(&t, PlanScope::Plan, "pro", PlanStatus::Published);
    p4.expiration = Expiration::Never;
    for p in [&p3, &p4] {
        assert!(matches!(
            store.insert_credit_plan(p, None).await.expect("insert"),
            InsertOutcome::Inserted
        ));
    }
    for p in [&p1, &p3, &p4] {
        assert_eq!(store.get_credit_plan(&t, &p.id).await.expect("get").as_ref(), Some(p));
    }
    assert_eq!(store.get_credit_plan(&other, &p1.id).await.expect("get"), None);
    let mut all = vec![p1.clone(), p3.clone(), p4.clone()];
    all.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(store.list_credit_plans(&t).await.expect("list"), all);
    assert!(store.list_credit_plans(&other).await.expect("list").is_empty());

    let renamed = CreditPlan {
        name: "Renamed".to_owned(),
        version: 1,
        ..p1.clone()
    };
    assert!(!store.replace_credit_plan(&renamed, 1).await.expect("replace"));
    assert_eq!(store.get_credit_plan(&t, &p1.id).await.expect("get"), Some(p1.clone()));
    assert!(store.replace_credit_plan(&renamed, 0).await.expect("replace"));
    assert_eq!(
        store.get_credit_plan(&t, &p1.id).await.expect("get"),
        Some(renamed.clone())
    );
    assert!(!store.replace_credit_plan(&renamed, 0).await.expect("replace"));
    let missing = plan(&t, PlanScope::Plan, "x", PlanStatus::Published);
    assert!(!store.replace_credit_plan(&missing, 0).await.expect("replace"));
    assert_eq!(store.get_credit_plan(&t, &missing.id).await.expect("get"), None);
}

/// The scheduler's index: every tenant's published plans; archiving one takes it out.
pub async fn active_credit_plans_are_the_published_ones(store: &dyn Store, prefix: &str) {
    let (t, other) = (tenant(prefix, "a"), tenant(prefix, "b"));
    let published = [
        plan(&t, PlanScope::Plan, "pro", PlanStatus::Published),
        plan(&t, PlanScope::Plan, "pro", PlanStatus::Published),
    ];
    let archived = plan(&t, PlanScope::Plan, "pro", PlanStatus::Archived);
    let to_archive = plan(&t, PlanScope::Plan, "pro", PlanStatus::Published);
    let elsewhere = plan(&other, PlanScope::Plan, "pro", PlanStatus::Published);
    for p in published.iter().chain([&archived, &to_archive, &elsewhere]) {
        assert!(matches!(
            store.insert_credit_plan(p, None).await.expect("insert"),
            InsertOutcome::Inserted
        ));
    }
    let gone = CreditPlan {
        status: PlanStatus::Archived,
        version: 1,
        ..to_archive.clone()
    };
    assert!(store.replace_credit_plan(&gone, 0).await.expect("replace"));
    let active = store.active_credit_plans().await.expect("active");
    let mine: Vec<&CreditPlan> = active.iter().filter(|p| p.tenant == t).collect();
    let mut expected: Vec<&CreditPlan> = published.iter().collect();
    expected.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(mine, expected);
    assert!(active.contains(&elsewhere));
}

async fn in_scope(store: &dyn Store, t: &TenantId, scope: PlanScope, id: &str) -> Vec<EntitlementId> {
    let found = store.entitlements_in_scope(t, scope, id).await.expect("in scope");
    ids(&found, |e| &e.id)
}

/// The entitlements a plan's scope reaches: by subscription id or plan id, whatever their status,
/// in id order.
pub async fn entitlements_in_scope_by_subscription_or_plan(store: &dyn Store, prefix: &str) {
    let (t, other) = (tenant(prefix, "a"), tenant(prefix, "b"));
    let with = |t: &TenantId, sub: Option<&str>, plan_id: Option<&str>| {
        let mut e = entitlement(t, "c");
        e.subscription_id = sub.map(str::to_owned);
        e.plan_id = plan_id.map(str::to_owned);
        e
    };
    let both = with(&t, Some("sub_1"), Some("pro"));
    let sub_only = with(&t, Some("sub_1"), None);
    let plan_canceled = with(&t, None, Some("pro"));
    let sub2 = with(&t, Some("sub_2"), None);
    let foreign = with(&other, Some("sub_1"), Some("pro"));
    for e in [&both, &sub_only, &plan_canceled, &sub2, &foreign] {
        store.put_entitlement(e).await.expect("put");
    }
    cancel(store, &plan_canceled).await;
    assert_eq!(
        in_scope(store, &t, PlanScope::Subscription, "sub_1").await,
        sorted(vec![both.id.clone(), sub_only.id.clone()])
    );
    assert_eq!(
        in_scope(store, &t, PlanScope::Plan, "pro").await,
        sorted(vec![both.id.clone(), plan_canceled.id.clone()])
    );
    assert_eq!(
        in_scope(store, &t, PlanScope::Subscription, "sub_2").await,
        vec![sub2.id.clone()]
    );
    assert!(in_scope(store, &t, PlanScope::Plan, "sub_1").await.is_empty());
}

async fn progress(store: &dyn Store, e: &Entitlement, plan_id: &str) -> u64 {
    store.plan_progress(&e.tenant, &e.id, plan_id).await.expect("progress")
}

async fn apply(store: &dyn Store, plan_id: &str, g: &Grant, expected: u64, next: u64) -> PlanApply {
    store
        .apply_plan_period(g, plan_id, expected, next)
        .await
        .expect("apply")
}

/// `apply_plan_period` writes the grant and advances the plan's progress on the entitlement from
/// `expected` to `next`, together: Moved (nothing written) when the progress is elsewhere,
/// EntitlementInactive when the entitlement is missing or not active (checked first).
pub async fn apply_plan_period_advances_progress_once(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let e = stored_entitlement(store, &t, "c").await;
    let plan_id = "cgrant_contract";
    assert_eq!(progress(store, &e, plan_id).await, 0);
    let g0 = grant(&e, "100");
    assert_eq!(apply(store, plan_id, &g0, 0, 1).await, PlanApply::Applied);
    assert_eq!(progress(store, &e, plan_id).await, 1);
    assert_eq!(store.get_grant(&t, &e.id, &g0.id).await.expect("get"), Some(g0.clone()));
    let late = grant(&e, "100");
    assert_eq!(
        apply(store, plan_id, &late, 0, 1).await,
        PlanApply::Moved,
        "another run applied period 0"
    );
    assert_eq!(store.get_grant(&t, &e.id, &late.id).await.expect("get"), None);
    assert_eq!(apply(store, plan_id, &late, 2, 3).await, PlanApply::Moved);
    assert_eq!(
        apply(store, plan_id, &g0, 1, 2).await,
        PlanApply::Moved,
        "the grant exists"
    );
    assert_eq!(progress(store, &e, plan_id).await, 1);
    let g1 = grant(&e, "100");
    assert_eq!(apply(store, plan_id, &g1, 1, 2).await, PlanApply::Applied);
    assert_eq!(progress(store, &e, plan_id).await, 2);
    assert_eq!(progress(store, &e, "cgrant_other").await, 0, "progress is per plan");
    assert_eq!(store.list_grants(&t, &e.id).await.expect("list").len(), 2);

    let canceled = stored_entitlement(store, &t, "c").await;
    cancel(store, &canceled).await;
    let g = grant(&canceled, "100");
    assert_eq!(apply(store, plan_id, &g, 0, 1).await, PlanApply::EntitlementInactive);
    assert_eq!(
        apply(store, plan_id, &g, 5, 6).await,
        PlanApply::EntitlementInactive,
        "checked first"
    );
    assert_eq!(progress(store, &canceled, plan_id).await, 0);
    assert_eq!(store.get_grant(&t, &canceled.id, &g.id).await.expect("get"), None);
    let mut orphan = grant(&e, "100");
    orphan.entitlement_id = EntitlementId::generate();
    assert_eq!(
        apply(store, plan_id, &orphan, 0, 1).await,
        PlanApply::EntitlementInactive
    );
}

// ---- purchases ------------------------------------------------------------------------------

/// `insert_purchase` writes the invoice, its session lookup and its claim together, conditional on
/// the claim being new (checked first) and the entitlement being active.
pub async fn insert_purchase_claims_and_sessions(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let e = stored_entitlement(store, &t, "c").await;
    let i1 = invoice(&e, ts("2030-01-02T00:00:00Z"));
    let k1 = claim("purchase", "buy", i1.id.as_str(), "100");
    assert!(matches!(
        store.insert_purchase(&i1, &k1).await.expect("insert"),
        InsertOutcome::Inserted
    ));
    assert_eq!(store.get_invoice(&t, &i1.id).await.expect("get"), Some(i1.clone()));
    assert_eq!(
        store.find_session(&i1.session.id).await.expect("session"),
        Some((t.clone(), i1.id.clone()))
    );
    let i2 = invoice(&e, ts("2030-01-02T00:00:00Z"));
    match store
        .insert_purchase(&i2, &claim("purchase", "buy", i2.id.as_str(), "200"))
        .await
        .expect("insert")
    {
        InsertOutcome::ClaimExists(stored) => assert_eq!(stored, k1),
        other => panic!("expected the first claim, got {other:?}"),
    }
    assert_eq!(store.get_invoice(&t, &i2.id).await.expect("get"), None);
    assert_eq!(store.find_session(&i2.session.id).await.expect("session"), None);

    let other = stored_entitlement(store, &t, "c").await;
    cancel(store, &other).await;
    let i3 = invoice(&other, ts("2030-01-02T00:00:00Z"));
    assert!(matches!(
        store
            .insert_purchase(&i3, &claim("purchase", "buy", i3.id.as_str(), "100"))
            .await
            .expect("insert"),
        InsertOutcome::ParentUnavailable
    ));
    assert_eq!(store.get_invoice(&t, &i3.id).await.expect("get"), None);
    assert_eq!(store.find_session(&i3.session.id).await.expect("session"), None);
    // A replay after the entitlement was cancelled is still answered.
    cancel(store, &e).await;
    assert!(matches!(
        store
            .insert_purchase(&i2, &claim("purchase", "buy", i2.id.as_str(), "100"))
            .await
            .expect("insert"),
        InsertOutcome::ClaimExists(_)
    ));
    assert_eq!(store.find_session(&SessionId::generate()).await.expect("session"), None);
    assert_eq!(store.get_invoice(&t, &InvoiceId::generate()).await.expect("get"), None);
}

/// `update_invoice` replaces the invoice only at the version it was read at.
pub async fn update_invoice_checks_the_version(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let e = stored_entitlement(store, &t, "c").await;
    let i = stored_invoice(store, &e, ts("2030-01-02T00:00:00Z")).await;
    let canceled = next_invoice(&i, |i| {
        i.status = InvoiceStatus::Canceled;
        i.canceled_at = Some(ts("2030-01-02T00:00:00Z"));
        i.cancel_reason = Some("payment_session_expired".to_owned());
    });
    assert!(!store.update_invoice(&canceled, 0).await.expect("update"));
    assert_eq!(store.get_invoice(&t, &i.id).await.expect("get"), Some(i.clone()));
    assert!(store.update_invoice(&canceled, 1).await.expect("update"));
    assert_eq!(store.get_invoice(&t, &i.id).await.expect("get"), Some(canceled.clone()));
    assert!(!store.update_invoice(&canceled, 1).await.expect("update"));
    let missing = invoice(&e, ts("2030-01-02T00:00:00Z"));
    assert!(!store.update_invoice(&missing, 1).await.expect("update"));
    assert_eq!(store.get_invoice(&t, &missing.id).await.expect("get"), None);
}

/// `settle_invoice` replaces the invoice at the version read and creates its grant, together; it
/// needs no active entitlement (money taken is never lost).
pub async fn settle_invoice_creates_the_grant_once(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let e = stored_entitlement(store, &t, "c").await;
    let i = stored_invoice(store, &e, ts("2030-01-02T00:00:00Z")).await;
    let g = grant(&e, "100");
    let paid = next_invoice(&i, |i| {
        i.status = InvoiceStatus::Paid;
        i.paid_at = Some(ts("2030-01-01T12:00:00Z"));
        i.grant_id = Some(g.id.clone());
    });
    assert!(!store.settle_invoice(&paid, 2, &g).await.expect("settle"));
    assert_eq!(store.get_grant(&t, &e.id, &g.id).await.expect("get"), None);
    assert_eq!(store.get_invoice(&t, &i.id).await.expect("get"), Some(i.clone()));
    assert!(store.settle_invoice(&paid, 1, &g).await.expect("settle"));
    assert_eq!(store.get_invoice(&t, &i.id).await.expect("get"), Some(paid.clone()));
    assert_eq!(store.get_grant(&t, &e.id, &g.id).await.expect("get"), Some(g.clone()));
    let g2 = grant(&e, "100");
    let twice = next_invoice(&paid, |i| i.grant_id = Some(g2.id.clone()));
    assert!(!store.settle_invoice(&twice, 1, &g2).await.expect("settle"));
    assert_eq!(store.get_grant(&t, &e.id, &g2.id).await.expect("get"), None);
    // The grant's id exists: nothing written.
    let i3 = stored_invoice(store, &e, ts("2030-01-02T00:00:00Z")).await;
    let dup = next_invoice(&i3, |i| i.status = InvoiceStatus::Paid);
    assert!(!store.settle_invoice(&dup, 1, &g).await.expect("settle"));
    assert_eq!(store.get_invoice(&t, &i3.id).await.expect("get"), Some(i3));
    // Paid after the entitlement was cancelled: still fulfilled.
    let late = stored_invoice(store, &e, ts("2030-01-02T00:00:00Z")).await;
    cancel(store, &e).await;
    let g4 = grant(&e, "100");
    let paid_late = next_invoice(&late, |i| {
        i.status = InvoiceStatus::Paid;
        i.paid_late = true;
        i.grant_id = Some(g4.id.clone());
    });
    assert!(store.settle_invoice(&paid_late, 1, &g4).await.expect("settle"));
    assert_eq!(store.get_grant(&t, &e.id, &g4.id).await.expect("get"), Some(g4));
}

/// The expiry sweep's index: open invoices whose session expired by `now`, by expiry; a smaller
/// limit gives a prefix; paid and canceled invoices leave it.
pub async fn due_open_invoices_by_session_expiry(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let e = stored_entitlement(store, &t, "c").await;
    let base = schedule_base();
    let at = |micros: i64| micros_after(base, micros);
    let first = stored_invoice(store, &e, at(2)).await;
    let second = stored_invoice(store, &e, at(1)).await;
    let third = stored_invoice(store, &e, at(3)).await;
    let paid = stored_invoice(store, &e, at(1)).await;
    let canceled = stored_invoice(store, &e, at(1)).await;
    let _later = stored_invoice(store, &e, at(10)).await;
    let g = grant(&e, "100");
    let settled = next_invoice(&paid, |i| {
        i.status = InvoiceStatus::Paid;
        i.grant_id = Some(g.id.clone());
    });
    assert!(store.settle_invoice(&settled, 1, &g).await.expect("settle"));
    let gone = next_invoice(&canceled, |i| i.status = InvoiceStatus::Canceled);
    assert!(store.update_invoice(&gone, 1).await.expect("update"));
    let failed = next_invoice(&first, |i| i.failure_reason = Some("PAYMENT_FAILED".to_owned()));
    assert!(store.update_invoice(&failed, 1).await.expect("update"), "still open");
    let mine =
        |due: &[Invoice]| -> Vec<InvoiceId> { due.iter().filter(|i| i.tenant == t).map(|i| i.id.clone()).collect() };
    let now = at(3);
    let full = store.due_open_invoices(now, 1000).await.expect("due");
    assert_eq!(mine(&full), vec![second.id.clone(), first.id.clone(), third.id.clone()]);
    assert_eq!(full.iter().find(|i| i.id == first.id), Some(&failed), "as stored now");
    for limit in 1..=3 {
        let some = store.due_open_invoices(now, limit).await.expect("due");
        assert_eq!(
            ids(&some, |i| &i.id),
            ids(&full[..limit.min(full.len())], |i| &i.id),
            "limit {limit}: a prefix"
        );
    }
    assert_eq!(
        mine(&store.due_open_invoices(at(1), 1000).await.expect("due")),
        vec![second.id.clone()]
    );
    assert!(mine(&store.due_open_invoices(at(0), 1000).await.expect("due")).is_empty());
}

// ---- transactions ---------------------------------------------------------------------------

/// A usage write over more grants than one transaction holds (100 items) is refused (DynamoDB's
/// validation), and nothing is written. (Two writes to one item in a transaction are not checked
/// here: DynamoDB refuses them, DynamoDB Local reports a failed condition.)
pub async fn oversized_transactions_are_refused(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let e = stored_entitlement(store, &t, "c").await;
    let mut writes = Vec::new();
    for _ in 0..99 {
        let g = stored_grant(store, &e, "1").await;
        writes.push(bumped(&g, |g| g.remaining = Decimal::ZERO));
    }
    let u = usage(&e, "evt-big", "99", Vec::new());
    assert!(
        matches!(
            store.write_usage(&u, delta("99", "0"), &writes).await,
            Err(StoreError::Rejected(_))
        ),
        "101 items"
    );
    assert_eq!(store.get_usage(&t, &e.id, "evt-big").await.expect("get"), None);
    assert!(matches!(
        write(store, &u, delta("98", "0"), &writes[..98]).await,
        UsageWrite::Written
    ));
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
    due_open_invoices_by_session_expiry,
    oversized_transactions_are_refused,
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
        assert_eq!(CHECKS.len(), 38);
    }
}
