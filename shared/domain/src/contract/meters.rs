//! The contract of the billable metrics port ([`crate::meters::MetricStore`]).
use super::{tenant, ts};
use crate::meters::{Aggregation, BillableMetric, MetricDefinition, MetricId, ValuePath};
use crate::ports::Store;
use std::collections::BTreeMap;

fn metric(t: &crate::TenantId, event_type: &str, aggregation: Aggregation) -> BillableMetric {
    let at = ts("2030-01-01T00:00:00.123456Z");
    BillableMetric {
        id: MetricId::generate(),
        tenant: t.clone(),
        definition: MetricDefinition {
            name: "Tokens".to_owned(),
            description: String::new(),
            unit: "tokens".to_owned(),
            event_type: event_type.to_owned(),
            aggregation,
            product_id: Some("prod_1".to_owned()),
            item_id: None,
            group_by: BTreeMap::from([("model".to_owned(), ValuePath::parse("$.model").expect("path"))]),
            event_from: Some(ts("2030-01-01T00:00:00Z")),
        },
        created_at: at,
        updated_at: at,
    }
}

/// A metric reads back as written; one event type per tenant (a second metric for it returns the
/// first and writes nothing), not across tenants; metrics list in id order.
pub async fn billable_metrics_hold_event_types_unique(store: &dyn Store, prefix: &str) {
    let (t, other) = (tenant(prefix, "a"), tenant(prefix, "b"));
    let sum = Aggregation::Sum(ValuePath::parse("$.usage.tokens").expect("path"));
    let first = metric(&t, "ai.inference", sum);
    assert_eq!(store.insert_metric(&first).await.expect("insert"), None);
    assert_eq!(store.get_metric(&t, &first.id).await.expect("get"), Some(first.clone()));
    let dup = metric(&t, "ai.inference", Aggregation::Count);
    assert_eq!(store.insert_metric(&dup).await.expect("insert"), Some(first.clone()));
    assert_eq!(store.get_metric(&t, &dup.id).await.expect("get"), None);
    let second = metric(&t, "ai.embedding", Aggregation::Count);
    assert_eq!(store.insert_metric(&second).await.expect("insert"), None);
    let mut both = vec![first.clone(), second];
    both.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(store.list_metrics(&t).await.expect("list"), both);
    assert_eq!(store.get_metric(&other, &first.id).await.expect("get"), None);
    let theirs = metric(&other, "ai.inference", Aggregation::Count);
    assert_eq!(store.insert_metric(&theirs).await.expect("insert"), None);
    assert_eq!(store.list_metrics(&other).await.expect("list"), vec![theirs]);
}

fn ingested(t: &crate::TenantId, key: Option<&str>, outcome: crate::ingest::Outcome) -> crate::ingest::IngestedEvent {
    let metered = matches!(
        outcome,
        crate::ingest::Outcome::Applied(_) | crate::ingest::Outcome::ApplyFailed { .. }
    )
    .then(|| (MetricId::generate(), rust_decimal::Decimal::new(125, 1)));
    crate::ingest::IngestedEvent {
        id: crate::EventId::generate(),
        tenant: t.clone(),
        event_type: "ai.inference".to_owned(),
        source: "https://app.example".to_owned(),
        customer: "cus_1".to_owned(),
        occurred_at: ts("2030-01-01T00:00:00.5Z"),
        received_at: ts("2030-01-01T00:00:01Z"),
        idempotency_key: key.map(str::to_owned),
        fingerprint: BTreeMap::from([("data".to_owned(), "{\"tokens\":12.5}".to_owned())]),
        metered,
        outcome,
    }
}

/// An ingested event reads back as written when its idempotency key comes again (nothing
/// written); events without a key never collide; an outcome can be replaced; the metric for an
/// event type is found by type.
pub async fn ingested_events_are_deduplicated_by_key(store: &dyn Store, prefix: &str) {
    use crate::ingest::Outcome;
    let (t, other) = (tenant(prefix, "a"), tenant(prefix, "b"));
    let entitlement = crate::EntitlementId::generate();
    let failed = Outcome::ApplyFailed {
        entitlement: entitlement.clone(),
        reason: "too many grants".to_owned(),
    };
    let mut first = ingested(&t, Some("k1"), failed);
    assert_eq!(store.insert_event(&first).await.expect("insert"), None);
    let again = ingested(&t, Some("k1"), Outcome::Unmetered);
    assert_eq!(store.insert_event(&again).await.expect("insert"), Some(first.clone()));
    first.outcome = Outcome::Applied(entitlement);
    store.set_event_outcome(&first).await.expect("set outcome");
    assert_eq!(store.insert_event(&again).await.expect("insert"), Some(first.clone()));
    assert_eq!(
        store
            .insert_event(&ingested(&other, Some("k1"), Outcome::Unmetered))
            .await
            .expect("insert"),
        None
    );
    for outcome in [
        Outcome::Unmetered,
        Outcome::NoEntitlement,
        Outcome::BeforeMeter,
        Outcome::Zero,
    ] {
        let e = ingested(&t, None, outcome);
        assert_eq!(store.insert_event(&e).await.expect("insert"), None);
        assert_eq!(store.insert_event(&e).await.expect("insert"), Some(e.clone()));
    }
    let m = metric(&t, "ai.inference", Aggregation::Count);
    store.insert_metric(&m).await.expect("metric");
    assert_eq!(
        store.metric_for_type(&t, "ai.inference").await.expect("by type"),
        Some(m)
    );
    assert_eq!(store.metric_for_type(&t, "ai.other").await.expect("by type"), None);
    assert_eq!(
        store.metric_for_type(&other, "ai.inference").await.expect("by type"),
        None
    );
}
