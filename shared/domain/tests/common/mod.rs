//! What the domain's tests share: a clock the test sets, the in-memory store with a tenant, and
//! short constructors for requests. Each test file uses part of it.
#![allow(dead_code, clippy::unwrap_used)]
use grants_domain::entitlements::{self, Label, NewEntitlement};
use grants_domain::grants::{IdempotencyKey, NewGrant};
use grants_domain::memory::MemoryStore;
use grants_domain::model::Entitlement;
use grants_domain::{Clock, CreditAmount, EntitlementId, NonNegative, Priority, TenantId, Timestamp};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::sync::Mutex;

pub fn ts(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

pub fn dec(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap()
}

pub fn credits(s: &str) -> CreditAmount {
    CreditAmount::parse(s).unwrap()
}

pub fn bound(s: &str) -> NonNegative {
    NonNegative::parse(s).unwrap()
}

pub fn priority(p: i64) -> Priority {
    Priority::new(Decimal::from(p)).unwrap()
}

pub fn label(s: &str) -> Label {
    Label::parse(s).unwrap()
}

pub fn key(s: &str) -> IdempotencyKey {
    IdempotencyKey::parse(s).unwrap()
}

/// A clock the test moves by hand.
pub struct TestClock(Mutex<Timestamp>);

impl TestClock {
    pub fn at(s: &str) -> Self {
        Self(Mutex::new(ts(s)))
    }
    pub fn set(&self, s: &str) {
        *self.0.lock().unwrap() = ts(s);
    }
    pub fn advance(&self, seconds: i64) {
        let mut t = self.0.lock().unwrap();
        *t = t.plus_seconds(seconds).unwrap();
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
    }
}

/// One tenant's world: an empty in-memory store and a clock.
pub struct World {
    pub store: MemoryStore,
    pub clock: TestClock,
    pub tenant: TenantId,
}

impl World {
    pub fn at(now: &str) -> Self {
        Self {
            store: MemoryStore::new(),
            clock: TestClock::at(now),
            tenant: TenantId::parse("acme").unwrap(),
        }
    }

    /// An active entitlement of `customer` with the default period (the calendar month of now).
    pub async fn entitlement(&self, customer: &str) -> Entitlement {
        self.entitlement_with(new_entitlement(customer)).await
    }

    pub async fn entitlement_with(&self, req: NewEntitlement) -> Entitlement {
        entitlements::create_entitlement(&self.store, &self.clock, &self.tenant, req)
            .await
            .unwrap()
    }

    /// An entitlement whose period is [`start`, `end`).
    pub async fn entitlement_for(&self, customer: &str, start: &str, end: &str) -> Entitlement {
        self.entitlement_with(NewEntitlement {
            current_period_start: Some(ts(start)),
            current_period_end: Some(ts(end)),
            ..new_entitlement(customer)
        })
        .await
    }
}

pub fn new_entitlement(customer: &str) -> NewEntitlement {
    NewEntitlement {
        customer_id: label(customer),
        feature_key: label("api_calls"),
        feature_id: None,
        product_id: None,
        subscription_id: None,
        plan_id: None,
        current_period_start: None,
        current_period_end: None,
        metadata: BTreeMap::new(),
        is_soft_limit: false,
        pricing_unit_id: None,
    }
}

/// A direct grant request: `amount` credits on `entitlement`, under idempotency key `k`.
pub fn new_grant(entitlement: &EntitlementId, amount: &str, k: &str) -> NewGrant {
    NewGrant {
        entitlement_id: entitlement.clone(),
        amount: credits(amount),
        idempotency_key: key(k),
        effective_at: None,
        expires_at: None,
        priority: None,
        reset_max_rollover: None,
        reset_min_rollover: None,
    }
}

/// The error of a result, as its Debug form (`NotFound`, `IdempotencyMismatch(["amount"])`): tests
/// name the variant without depending on which error enum an operation returns.
pub fn err<T: std::fmt::Debug, E: std::fmt::Debug>(r: Result<T, E>) -> String {
    format!("{:?}", r.expect_err("expected an error"))
}

impl World {
    /// A direct grant (see [`grants_domain::grants::create_grant`]), new.
    pub async fn grant(&self, req: NewGrant) -> grants_domain::model::Grant {
        let facts = grants_domain::grants::EntitlementFactsCache::new(std::time::Duration::from_secs(60));
        grants_domain::grants::create_grant(&self.store, &self.clock, &facts, &self.tenant, req)
            .await
            .unwrap()
            .into_inner()
    }
}
