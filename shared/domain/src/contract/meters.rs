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
