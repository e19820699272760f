//! Each surface's create request parsed and checked (every field), and a response serialised.
#![allow(clippy::unwrap_used)]
use criterion::{criterion_group, criterion_main, Criterion};
use grants_bench::{at, capacity_grant, credit_plan, grants, postings, request};
use grants_domain::credits::{CreditType, LedgerGrant};
use grants_http::{capacity, flexprice, metronome, paygentic};
use std::hint::black_box;

const PAYGENTIC: &str = r#"{"amount": 1000, "idempotencyKey": "promo-2030-01", "effectiveAt": "2030-01-01T00:00:00Z",
  "expiresAt": "2030-12-31T00:00:00Z", "priority": 1, "resetMaxRollover": 100, "resetMinRollover": 0}"#;
const METRONOME: &str = r#"{"customer_id": "cus_bench", "name": "Promo", "priority": 1, "expires_at": "2030-12-31T00:00:00Z",
  "grant_amount": {"amount": 1000, "credit_type_id": "2714e483-4ff1-48e4-9e25-ac732e8f24f2"},
  "paid_amount": {"amount": 0, "credit_type_id": "2714e483-4ff1-48e4-9e25-ac732e8f24f2"},
  "reason": "promotion", "uniqueness_key": "promo-2030-01", "custom_fields": {"campaign": "launch"}}"#;
const CAPACITY: &str = r#"{"kind": "gpu", "cluster": "c1", "quantity": 8, "starts_at": "2030-01-01T00:00:00Z",
  "ends_at": "2030-02-01T00:00:00Z", "unit_price": "2.50", "early_termination_buyback_price": "1.25",
  "flexible_usage_buyback_price": "1.00"}"#;
const FLEXPRICE: &str = r#"{"name": "Monthly", "scope": "PLAN", "plan_id": "plan_bench", "credits": "500",
  "cadence": "RECURRING", "period": "MONTHLY", "period_count": 1, "expiration_type": "BILLING_CYCLE",
  "priority": 1, "metadata": {"team": "core"}}"#;

fn surfaces(c: &mut Criterion) {
    let mut parse = c.benchmark_group("parse_create");
    let req = request(
        "/v1/entitlements/ent_00000000000000000000000001/grants",
        PAYGENTIC,
        None,
    );
    parse.bench_function("paygentic", |b| {
        b.iter(|| paygentic::parse_create_grant(black_box(&req)).unwrap())
    });
    let req = request("/v1/credits/createGrant", METRONOME, None);
    parse.bench_function("metronome", |b| {
        b.iter(|| metronome::parse_create_grant(black_box(&req)).unwrap())
    });
    let req = request("/v2/grants", CAPACITY, Some("cap-2030-01"));
    parse.bench_function("capacity", |b| {
        b.iter(|| capacity::parse_create(black_box(&req)).unwrap())
    });
    let req = request("/v1/creditgrants", FLEXPRICE, Some("plan-2030-01"));
    parse.bench_function("flexprice", |b| {
        b.iter(|| flexprice::parse_create(black_box(&req)).unwrap())
    });
    parse.finish();

    let mut out = c.benchmark_group("serialise");
    let grant = grants(1).remove(0);
    out.bench_function("paygentic", |b| {
        b.iter(|| serde_json::to_string(&paygentic::GrantBody::from(black_box(&grant))).unwrap())
    });
    let lg = LedgerGrant {
        days: grants_domain::ledger::days_of(&postings(std::slice::from_ref(&grant))),
        holds: Vec::new(),
        grant: grant.clone(),
    };
    let catalogue = [CreditType::default_type()];
    out.bench_function("metronome", |b| {
        b.iter(|| {
            serde_json::to_string(&metronome::wire::GrantBody::new(black_box(&lg), &catalogue, at(7200))).unwrap()
        })
    });
    let cap = capacity_grant();
    out.bench_function("capacity", |b| {
        b.iter(|| serde_json::to_string(&capacity::GrantBody::from(black_box(&cap))).unwrap())
    });
    let plan = credit_plan();
    out.bench_function("flexprice", |b| {
        b.iter(|| serde_json::to_string(&flexprice::PlanBody::new(black_box(&plan), flexprice::Credits::Text)).unwrap())
    });
    out.finish();
}

criterion_group!(benches, surfaces);
criterion_main!(benches);
