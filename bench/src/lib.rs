//! Fixtures shared by the criterion benches (`benches/`) and the measuring programs (`src/bin`).
use grants_domain::capacity::{CapacityGrant, ExactPrice};
use grants_domain::ledger::{Deduction, Posting, UsageStatus};
use grants_domain::model::{Grant, NewGrantFields};
use grants_domain::plans::{CreditPlan, Expiration, PlanScope, PlanStatus, Recurrence};
use grants_domain::{CapacityGrantId, CreditAmount, EntitlementId, GrantId, Priority, TenantId, Timestamp};
use grants_http::ApiRequest;
use rust_decimal::Decimal;
use std::collections::BTreeMap;

/// The fixtures' epoch plus `seconds`.
pub fn at(seconds: i64) -> Timestamp {
    Timestamp::parse("2030-01-01T00:00:00Z")
        .ok()
        .and_then(|t| t.plus_seconds(seconds))
        .unwrap_or_else(|| unreachable!("a fixed valid instant"))
}

/// `n` grants of one entitlement with a realistic mix: three priorities, half expiring at spread
/// instants, effective over the first hour; 100 credits each.
pub fn grants(n: usize) -> Vec<Grant> {
    (0..n)
        .map(|i| {
            let i64n = i64::try_from(i).unwrap_or(i64::MAX);
            let mut g = Grant::new(NewGrantFields {
                tenant: TenantId::parse("bench").unwrap_or_else(|_| unreachable!("a valid tenant")),
                entitlement_id: EntitlementId::parse("ent_00000000000000000000000001")
                    .unwrap_or_else(|_| unreachable!("a valid id")),
                customer_id: "cus_bench".to_owned(),
                amount: CreditAmount::new(Decimal::from(100)).unwrap_or_else(|_| unreachable!("positive")),
                effective_at: at(i64n % 3600),
                created_at: at(0),
                credit_type_id: None,
            })
            .with_expiry((i % 2 == 0).then(|| at(86_400 + i64n * 60)))
            .with_priority(Some(
                Priority::new(Decimal::from(i64n % 3)).unwrap_or_else(|_| unreachable!("small")),
            ))
            .with_idempotency_key(Some(format!("k{i}")));
            // Fixed ids: the same fixture on every run.
            g.id = GrantId::parse(&format!("grt_{i:026}")).unwrap_or_else(|_| unreachable!("a valid id"));
            g
        })
        .collect()
}

/// One committed usage event per grant, each drawing 1 credit from it.
pub fn postings(grants: &[Grant]) -> Vec<Posting> {
    grants
        .iter()
        .enumerate()
        .map(|(i, g)| Posting {
            rollover: false,
            event_id: format!("e{i}"),
            occurred_at: at(3600),
            recorded_at: at(3600),
            status: UsageStatus::Committed,
            deductions: vec![Deduction {
                grant_id: g.id.clone(),
                amount: Decimal::ONE,
            }],
            overage: Decimal::ZERO,
        })
        .collect()
}

/// A request as API Gateway hands it over: a JSON body and, when given, an Idempotency-Key.
pub fn request(path: &str, body: &str, idempotency_key: Option<&str>) -> ApiRequest {
    let mut headers = http::HeaderMap::new();
    if let Some(k) = idempotency_key.and_then(|k| http::HeaderValue::from_str(k).ok()) {
        headers.insert("idempotency-key", k);
    }
    let mut req = ApiRequest {
        method: http::Method::POST,
        path: path.to_owned(),
        headers,
        body: bytes::Bytes::copy_from_slice(body.as_bytes()),
        ..ApiRequest::default()
    };
    if let Some((_, params)) = grants_http::Route::resolve(&http::Method::POST, path) {
        req.path_params = params;
    }
    req
}

pub fn capacity_grant() -> CapacityGrant {
    let price = |p: &str| ExactPrice::parse(p).unwrap_or_else(|_| unreachable!("a valid price"));
    CapacityGrant {
        fid: CapacityGrantId::generate(),
        tenant: TenantId::parse("bench").unwrap_or_else(|_| unreachable!("a valid tenant")),
        kind: "gpu".to_owned(),
        cluster: "c1".to_owned(),
        quantity: 8,
        starts_at: at(0),
        ends_at: at(86_400),
        unit_price: price("2.50"),
        early_termination_buyback_price: price("1.25"),
        flexible_usage_buyback_price: price("1.00"),
        created_at: at(0),
        deleted_at: None,
        resold_from: None,
        resold_to: None,
        version: 1,
    }
}

pub fn credit_plan() -> CreditPlan {
    CreditPlan {
        id: "cgrant_bench".to_owned(),
        tenant: TenantId::parse("bench").unwrap_or_else(|_| unreachable!("a valid tenant")),
        name: "Monthly".to_owned(),
        scope: PlanScope::Plan,
        scope_id: "plan_bench".to_owned(),
        credits: CreditAmount::new(Decimal::from(500)).unwrap_or_else(|_| unreachable!("positive")),
        currency: Some("usd".to_owned()),
        recurrence: Recurrence::Once,
        expiration: Expiration::Never,
        priority: Some(1),
        metadata: BTreeMap::from([("team".to_owned(), "core".to_owned())]),
        status: PlanStatus::Published,
        start_date: at(0),
        end_date: None,
        conversion_rate: None,
        created_at: at(0),
        updated_at: at(0),
        version: 1,
    }
}
