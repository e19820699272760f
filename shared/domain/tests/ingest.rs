//! Ingested events on the in-memory store: metered by their type's billable metric, burned on the
//! customer's entitlements for that type, deduplicated by idempotency key, and kept (never
//! dropped) when nothing meters them.
#![allow(clippy::unwrap_used)]
mod common;

use common::{dec, err, label, new_entitlement, new_grant, ts, World};
use grants_domain::grants::Created;
use grants_domain::ingest::{self, EventData, IngestedEvent, NewEvent, Outcome};
use grants_domain::meters::{self, Aggregation, NewMetric, ValuePath};
use grants_domain::model::Grant;
use grants_domain::ports::GrantStore;
use rust_decimal::Decimal;
use std::collections::BTreeMap;

/// Event data as a flat map from dotted path (`$.tokens`) to a number, or to a non-number.
struct Data(BTreeMap<&'static str, Result<Decimal, String>>);

impl EventData for Data {
    fn number_at(&self, path: &ValuePath) -> Option<Result<Decimal, String>> {
        self.0.get(path.as_str()).cloned()
    }
}

fn tokens(n: &str) -> Data {
    Data(BTreeMap::from([("$.tokens", Ok(dec(n)))]))
}

async fn metric(w: &World, event_type: &str, aggregation: Aggregation, from: Option<&str>) {
    let new = NewMetric {
        merchant_id: "acme".to_owned(),
        name: label("m"),
        description: String::new(),
        unit: label("u"),
        event_type: label(event_type),
        aggregation,
        product_id: None,
        item_id: None,
        group_by: BTreeMap::new(),
        event_from: from.map(ts),
    };
    meters::create_metric(&w.store, &w.clock, &w.tenant, new).await.unwrap();
}

fn sum() -> Aggregation {
    Aggregation::Sum(ValuePath::parse("$.tokens").unwrap())
}

fn event(event_type: &str, customer: &str, key: Option<&str>, tokens: &str) -> NewEvent {
    NewEvent {
        event_type: label(event_type),
        source: "https://app.example".to_owned(),
        customer: label(customer),
        occurred_at: None,
        idempotency_key: key.map(label),
        fingerprint: BTreeMap::from([("data".to_owned(), tokens.to_owned())]),
    }
}

async fn try_ingest(w: &World, new: NewEvent, data: &Data) -> Result<Created<IngestedEvent>, ingest::IngestError> {
    ingest::ingest(&w.store, &w.clock, &w.tenant, new, data).await
}

async fn ingest(w: &World, new: NewEvent, data: &Data) -> IngestedEvent {
    try_ingest(w, new, data).await.unwrap().into_inner()
}

async fn remaining(w: &World, g: &Grant) -> Decimal {
    w.store
        .get_grant(&w.tenant, &g.entitlement_id, &g.id)
        .await
        .unwrap()
        .unwrap()
        .remaining
}

/// An entitlement of `customer` for `feature` with a grant of 100.
async fn funded(w: &World, customer: &str, feature: &str, k: &str) -> Grant {
    let mut req = new_entitlement(customer);
    req.feature_key = label(feature);
    let e = w.entitlement_with(req).await;
    w.grant(new_grant(&e.id, "100", k)).await
}

#[tokio::test]
async fn an_event_burns_its_metered_amount_once_on_the_oldest_entitlement_of_its_type() {
    let w = World::at("2030-03-14T10:00:00Z");
    metric(&w, "ai.inference", sum(), None).await;
    let a = funded(&w, "cus_1", "ai.inference", "a").await;
    w.clock.advance(1);
    let b = funded(&w, "cus_1", "ai.inference", "b").await;
    let other_feature = funded(&w, "cus_1", "api_calls", "c").await;
    let other_customer = funded(&w, "cus_2", "ai.inference", "d").await;
    let e = ingest(&w, event("ai.inference", "cus_1", Some("k1"), "12.5"), &tokens("12.5")).await;
    assert_eq!(e.outcome, Outcome::Applied(a.entitlement_id.clone()));
    assert_eq!(e.metered.as_ref().map(|m| m.1), Some(dec("12.5")));
    assert_eq!(remaining(&w, &a).await, dec("87.5"));
    assert_eq!(
        remaining(&w, &b).await,
        dec("100"),
        "charged once, not on every entitlement"
    );
    assert_eq!(remaining(&w, &other_feature).await, dec("100"));
    assert_eq!(remaining(&w, &other_customer).await, dec("100"));
}

#[tokio::test]
async fn a_duplicate_is_applied_once_and_a_reused_key_with_other_data_is_refused() {
    let w = World::at("2030-03-14T10:00:00Z");
    metric(&w, "ai.inference", Aggregation::Count, None).await;
    let g = funded(&w, "cus_1", "ai.inference", "a").await;
    let first = try_ingest(&w, event("ai.inference", "cus_1", Some("k"), "1"), &tokens("1"))
        .await
        .unwrap();
    let Created::New(first) = first else { panic!("new") };
    let again = try_ingest(&w, event("ai.inference", "cus_1", Some("k"), "1"), &tokens("1"))
        .await
        .unwrap();
    assert!(matches!(again, Created::Replayed(ref e) if e.id == first.id));
    assert_eq!(remaining(&w, &g).await, dec("99"), "COUNT burns one, once");
    let reused = try_ingest(&w, event("ai.inference", "cus_1", Some("k"), "2"), &tokens("2")).await;
    assert_eq!(err(reused), "IdempotencyMismatch([\"data\"])");
    ingest(&w, event("ai.inference", "cus_1", None, "1"), &tokens("1")).await;
    ingest(&w, event("ai.inference", "cus_1", None, "1"), &tokens("1")).await;
    assert_eq!(remaining(&w, &g).await, dec("97"), "without a key, every event counts");
}

#[tokio::test]
async fn events_nothing_meters_are_kept_with_their_outcome() {
    let w = World::at("2030-03-14T10:00:00Z");
    metric(&w, "ai.inference", sum(), Some("2030-03-01T00:00:00Z")).await;
    let g = funded(&w, "cus_1", "ai.inference", "a").await;
    let unmetered = ingest(&w, event("ai.embedding", "cus_1", Some("u"), "5"), &tokens("5")).await;
    assert_eq!(unmetered.outcome, Outcome::Unmetered);
    let nobody = ingest(&w, event("ai.inference", "cus_9", Some("n"), "5"), &tokens("5")).await;
    assert_eq!(nobody.outcome, Outcome::NoEntitlement);
    let mut early = event("ai.inference", "cus_1", Some("e"), "5");
    early.occurred_at = Some(ts("2030-02-28T00:00:00Z"));
    assert_eq!(ingest(&w, early, &tokens("5")).await.outcome, Outcome::BeforeMeter);
    let zero = ingest(&w, event("ai.inference", "cus_1", Some("z"), "0"), &tokens("0")).await;
    assert_eq!(zero.outcome, Outcome::Zero);
    let mut early_without_value = event("ai.inference", "cus_1", Some("e2"), "none");
    early_without_value.occurred_at = Some(ts("2030-02-28T00:00:00Z"));
    let kept = ingest(&w, early_without_value, &Data(BTreeMap::new())).await;
    assert_eq!(
        kept.outcome,
        Outcome::BeforeMeter,
        "not metered, so its value is not read"
    );
    assert_eq!(remaining(&w, &g).await, dec("100"));
}

#[tokio::test]
async fn a_burn_over_more_grants_than_one_transaction_holds_is_applied() {
    let w = World::at("2030-03-14T10:00:00Z");
    metric(&w, "ai.inference", sum(), None).await;
    let first = funded(&w, "cus_1", "ai.inference", "g0").await;
    for i in 1..150 {
        w.grant(new_grant(&first.entitlement_id, "1", &format!("g{i}"))).await;
    }
    // 100 + 149 * 1 credits: 249 draws on all 150 grants, over the 93 one transaction holds.
    let e = ingest(&w, event("ai.inference", "cus_1", Some("big"), "249"), &tokens("249")).await;
    assert_eq!(e.outcome, Outcome::Applied(first.entitlement_id.clone()));
    assert_eq!(remaining(&w, &first).await, dec("0"), "every grant burned");
    let again = ingest(&w, event("ai.inference", "cus_1", Some("big"), "249"), &tokens("249")).await;
    assert_eq!(again.id, e.id, "once");
}

#[tokio::test]
async fn a_timestamp_a_little_ahead_counts_as_now() {
    let w = World::at("2030-03-14T10:00:00Z");
    metric(&w, "ai.inference", Aggregation::Count, None).await;
    funded(&w, "cus_1", "ai.inference", "a").await;
    let mut ahead = event("ai.inference", "cus_1", Some("ahead"), "1");
    ahead.occurred_at = Some(ts("2030-03-14T10:04:00Z"));
    let e = ingest(&w, ahead, &tokens("1")).await;
    assert_eq!(e.occurred_at, ts("2030-03-14T10:00:00Z"));
    let mut far = event("ai.inference", "cus_1", Some("far"), "1");
    far.occurred_at = Some(ts("2030-03-14T10:06:00Z"));
    assert_eq!(err(try_ingest(&w, far, &tokens("1")).await), "InFuture");
}

#[tokio::test]
async fn a_sum_without_a_usable_number_is_refused_before_anything_is_written() {
    let w = World::at("2030-03-14T10:00:00Z");
    metric(&w, "ai.inference", sum(), None).await;
    let g = funded(&w, "cus_1", "ai.inference", "a").await;
    let cases = [
        (Data(BTreeMap::new()), "is required"),
        (
            Data(BTreeMap::from([("$.tokens", Err("must be a number".to_owned()))])),
            "must be a number",
        ),
        (tokens("-1"), "greater than 0"),
        (tokens("0.0000000000001"), "decimal places"),
    ];
    for (data, message) in cases {
        let r = try_ingest(&w, event("ai.inference", "cus_1", Some("k"), "x"), &data).await;
        let e = r.expect_err("refused");
        assert!(e.to_string().starts_with("data.tokens: "), "{e}");
        assert!(e.to_string().contains(message), "{e}");
    }
    // The key was never taken: the same key with good data is a new event.
    let ok = try_ingest(&w, event("ai.inference", "cus_1", Some("k"), "x"), &tokens("3"))
        .await
        .unwrap();
    assert!(matches!(ok, Created::New(_)));
    assert_eq!(remaining(&w, &g).await, dec("97"));
    let mut future = event("ai.inference", "cus_1", Some("f"), "1");
    future.occurred_at = Some(ts("2030-03-15T00:00:00Z"));
    assert_eq!(err(try_ingest(&w, future, &tokens("1")).await), "InFuture");
}
