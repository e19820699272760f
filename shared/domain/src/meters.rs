//! Billable metrics (Paygentic's `billableMetrics`, a meter in the field's terms): which ingested
//! usage events burn credits, and by how much. A metric names a CloudEvents `eventType`; an event
//! of that type for a customer burns credits on that customer's active entitlements whose
//! `featureKey` is the event type, by the metric's aggregation of the event's `data`:
//! - `SUM`: the number at `valueProperty` (a dotted member path such as `$.tokens`);
//! - `COUNT`: one per event.
//!
//! Paygentic also offers AVG, MIN, MAX, UNIQUE_COUNT and LATEST; none of them is an amount a single
//! event can be charged when it arrives (each needs the whole period's events), so they are refused
//! with a 400 that says so. One metric per event type per tenant: a second one would burn the
//! same event twice. Creating an identical metric again returns the first (a retried create is
//! safe); a different one for a taken event type is a conflict.
use crate::kernel::{Label, StoreError};
use crate::{Clock, TenantId, Timestamp};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::fmt;

/// A billable metric's id (`bm_` and a ULID).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MetricId(String);

impl MetricId {
    pub const PREFIX: &'static str = "bm_";
    pub fn generate() -> Self {
        Self(format!("{}{}", Self::PREFIX, ulid::Ulid::generate()))
    }
    /// An id as a client sent it; anything else is simply not found.
    pub fn parse(s: &str) -> Option<Self> {
        let rest = s.strip_prefix(Self::PREFIX)?;
        let ok = !rest.is_empty() && s.len() <= 64 && rest.bytes().all(|b| b.is_ascii_alphanumeric());
        ok.then(|| Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MetricId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where in an event's `data` a value is: `$.` and one or more member names joined by `.`
/// (`$.tokens`, `$.usage.input_tokens`); names are ASCII letters, digits, `_` and `-`. The subset
/// of JSONPath Paygentic's examples use: no brackets, wildcards or filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValuePath(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValuePathError {
    #[error("must start with `$.` (for example `$.tokens`)")]
    Prefix,
    #[error("must be member names joined by `.` (letters, digits, `_`, `-`), such as `$.usage.tokens`")]
    Member,
}

impl ValuePath {
    pub fn parse(s: &str) -> Result<Self, ValuePathError> {
        let rest = s.strip_prefix("$.").ok_or(ValuePathError::Prefix)?;
        let member = |m: &str| {
            !m.is_empty() && m.len() <= 128 && m.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        if s.len() > 255 || !rest.split('.').all(member) {
            return Err(ValuePathError::Member);
        }
        Ok(Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The member names after `$.`, outermost first.
    pub fn members(&self) -> impl Iterator<Item = &str> {
        self.0[2..].split('.')
    }
}

/// How a metric turns one event into an amount of credits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Aggregation {
    /// The number at this path of the event's `data`.
    Sum(ValuePath),
    /// One per event.
    Count,
}

/// Why an aggregation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AggregationError {
    #[error(
        "{0} is not supported: credits are burned as each event arrives, and {0} needs the period's events \
         together; use SUM or COUNT"
    )]
    Unsupported(String),
    #[error("must be one of SUM, COUNT, AVG, MIN, MAX, UNIQUE_COUNT, LATEST")]
    Unknown,
    #[error("is required for SUM")]
    ValuePropertyRequired,
}

impl Aggregation {
    /// Paygentic's names of aggregations, the ones served here first.
    pub const ALL: &'static [&'static str] = &["SUM", "COUNT", "AVG", "MIN", "MAX", "UNIQUE_COUNT", "LATEST"];

    /// `aggregation` with `valueProperty` (already parsed); COUNT ignores the path, as Paygentic does.
    pub fn parse(name: &str, value_property: Option<ValuePath>) -> Result<Self, AggregationError> {
        match name {
            "SUM" => value_property
                .map(Self::Sum)
                .ok_or(AggregationError::ValuePropertyRequired),
            "COUNT" => Ok(Self::Count),
            other if Self::ALL.contains(&other) => Err(AggregationError::Unsupported(other.to_owned())),
            _ => Err(AggregationError::Unknown),
        }
    }
    pub fn name(&self) -> &'static str {
        match self {
            Self::Sum(_) => "SUM",
            Self::Count => "COUNT",
        }
    }
    pub fn value_property(&self) -> Option<&ValuePath> {
        match self {
            Self::Sum(p) => Some(p),
            Self::Count => None,
        }
    }
}

/// A billable metric as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct BillableMetric {
    pub id: MetricId,
    pub tenant: TenantId,
    pub definition: MetricDefinition,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What a client chooses about a metric: a create with the same definition is the same metric.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricDefinition {
    pub name: String,
    pub description: String,
    pub unit: String,
    /// The CloudEvents `type` of the events this metric meters.
    pub event_type: String,
    pub aggregation: Aggregation,
    pub product_id: Option<String>,
    pub item_id: Option<String>,
    /// Dimension name to path; kept and returned (burn-down does not split by dimension).
    pub group_by: BTreeMap<String, ValuePath>,
    /// Only events at or after this instant are metered.
    pub event_from: Option<Timestamp>,
}

/// A create request, its fields validated.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMetric {
    /// The organization the client names (`merchantId`); it must be the key's tenant.
    pub merchant_id: String,
    pub name: Label,
    pub description: String,
    pub unit: Label,
    pub event_type: Label,
    pub aggregation: Aggregation,
    pub product_id: Option<Label>,
    pub item_id: Option<Label>,
    pub group_by: BTreeMap<String, ValuePath>,
    pub event_from: Option<Timestamp>,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateMetricError {
    /// `merchantId` is not the key's tenant: another organization's metrics are not found.
    #[error("no such merchant")]
    MerchantNotFound,
    /// The tenant meters this event type with a different metric already.
    #[error("event type {event_type} is already metered by {existing}")]
    EventTypeTaken { event_type: String, existing: MetricId },
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum MetricLookupError {
    #[error("billable metric not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum ListMetricsError {
    /// `merchantId` is not the key's tenant.
    #[error("no such merchant")]
    MerchantNotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a billable metric needs from storage.
#[async_trait]
pub trait MetricStore: Send + Sync {
    /// Creates the metric unless the tenant has one for its event type; returns that one if so
    /// (nothing written).
    async fn insert_metric(&self, metric: &BillableMetric) -> Result<Option<BillableMetric>, StoreError>;
    async fn get_metric(&self, tenant: &TenantId, id: &MetricId) -> Result<Option<BillableMetric>, StoreError>;
    /// The tenant's metrics in id order (creation order, to the millisecond).
    async fn list_metrics(&self, tenant: &TenantId) -> Result<Vec<BillableMetric>, StoreError>;
}

/// Creates a billable metric; an identical one for the same event type is returned as it is.
pub async fn create_metric(
    store: &dyn MetricStore,
    clock: &dyn Clock,
    tenant: &TenantId,
    new: NewMetric,
) -> Result<crate::kernel::Created<BillableMetric>, CreateMetricError> {
    if new.merchant_id != tenant.as_str() {
        return Err(CreateMetricError::MerchantNotFound);
    }
    let now = clock.now();
    let definition = MetricDefinition {
        name: new.name.into_string(),
        description: new.description,
        unit: new.unit.into_string(),
        event_type: new.event_type.into_string(),
        aggregation: new.aggregation,
        product_id: new.product_id.map(Label::into_string),
        item_id: new.item_id.map(Label::into_string),
        group_by: new.group_by,
        event_from: new.event_from,
    };
    let metric = BillableMetric {
        id: MetricId::generate(),
        tenant: tenant.clone(),
        definition,
        created_at: now,
        updated_at: now,
    };
    match store.insert_metric(&metric).await? {
        None => Ok(crate::kernel::Created::New(metric)),
        Some(existing) if existing.definition == metric.definition => Ok(crate::kernel::Created::Replayed(existing)),
        Some(existing) => Err(CreateMetricError::EventTypeTaken {
            event_type: existing.definition.event_type,
            existing: existing.id,
        }),
    }
}

/// One of the tenant's metrics.
pub async fn get_metric(
    store: &dyn MetricStore,
    tenant: &TenantId,
    id: &MetricId,
) -> Result<BillableMetric, MetricLookupError> {
    store.get_metric(tenant, id).await?.ok_or(MetricLookupError::NotFound)
}

/// Which of the tenant's metrics a list shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricFilter {
    pub product_id: Option<String>,
    pub item_id: Option<String>,
}

/// A page of the tenant's metrics in id order. `merchant` must be the tenant (else not found).
pub async fn list_metrics(
    store: &dyn MetricStore,
    tenant: &TenantId,
    merchant: &str,
    filter: &MetricFilter,
    limit: usize,
    offset: usize,
) -> Result<crate::kernel::Page<BillableMetric>, ListMetricsError> {
    if merchant != tenant.as_str() {
        return Err(ListMetricsError::MerchantNotFound);
    }
    let all: Vec<BillableMetric> = store
        .list_metrics(tenant)
        .await?
        .into_iter()
        .filter(|m| filter.product_id.is_none() || m.definition.product_id == filter.product_id)
        .filter(|m| filter.item_id.is_none() || m.definition.item_id == filter.item_id)
        .collect();
    Ok(crate::kernel::Page::slice(all, limit, offset))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::Created;
    use crate::memory::MemoryStore;
    use crate::SystemClock;

    fn new_metric(event_type: &str, aggregation: Aggregation) -> NewMetric {
        NewMetric {
            merchant_id: "acme".to_owned(),
            name: Label::parse("Tokens").unwrap(),
            description: "LLM tokens".to_owned(),
            unit: Label::parse("tokens").unwrap(),
            event_type: Label::parse(event_type).unwrap(),
            aggregation,
            product_id: None,
            item_id: None,
            group_by: BTreeMap::new(),
            event_from: None,
        }
    }

    fn tokens() -> Aggregation {
        Aggregation::Sum(ValuePath::parse("$.tokens").unwrap())
    }

    #[test]
    fn value_paths_are_dotted_members_after_the_root() {
        assert_eq!(
            ValuePath::parse("$.tokens").unwrap().members().collect::<Vec<_>>(),
            ["tokens"]
        );
        assert_eq!(
            ValuePath::parse("$.usage.input_tokens")
                .unwrap()
                .members()
                .collect::<Vec<_>>(),
            ["usage", "input_tokens"]
        );
        for bad in ["tokens", "$", "$.", "$..a", "$.a.", "$.a[0]", "$.*", "$['a']"] {
            assert!(ValuePath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_sum_with_a_path_and_count_are_aggregations_here() {
        let path = || Some(ValuePath::parse("$.n").unwrap());
        assert_eq!(Aggregation::parse("SUM", path()).unwrap().name(), "SUM");
        assert_eq!(
            Aggregation::parse("SUM", None),
            Err(AggregationError::ValuePropertyRequired)
        );
        assert_eq!(Aggregation::parse("COUNT", path()), Ok(Aggregation::Count));
        for other in ["AVG", "MIN", "MAX", "UNIQUE_COUNT", "LATEST"] {
            assert_eq!(
                Aggregation::parse(other, path()),
                Err(AggregationError::Unsupported(other.to_owned()))
            );
        }
        assert_eq!(Aggregation::parse("sum", path()), Err(AggregationError::Unknown));
    }

    #[tokio::test]
    async fn an_identical_create_returns_the_first_and_a_different_one_conflicts() {
        let (store, clock, tenant) = (MemoryStore::new(), SystemClock, TenantId::parse("acme").unwrap());
        let first = create_metric(&store, &clock, &tenant, new_metric("ai.inference", tokens()))
            .await
            .unwrap();
        let Created::New(first) = first else {
            panic!("first create")
        };
        let again = create_metric(&store, &clock, &tenant, new_metric("ai.inference", tokens()))
            .await
            .unwrap();
        assert!(matches!(again, Created::Replayed(ref m) if *m == first), "{again:?}");
        let err = create_metric(&store, &clock, &tenant, new_metric("ai.inference", Aggregation::Count))
            .await
            .unwrap_err();
        assert!(
            matches!(err, CreateMetricError::EventTypeTaken { ref existing, .. } if *existing == first.id),
            "{err:?}"
        );
        let other_type = create_metric(&store, &clock, &tenant, new_metric("ai.embedding", Aggregation::Count))
            .await
            .unwrap();
        assert!(matches!(other_type, Created::New(_)));
        let page = list_metrics(&store, &tenant, "acme", &MetricFilter::default(), 10, 0)
            .await
            .unwrap();
        assert_eq!(page.total, 2);
        assert!(page.items.iter().any(|m| m.id == first.id));
        assert!(page.items.windows(2).all(|w| w[0].id < w[1].id), "in id order");
    }

    #[tokio::test]
    async fn another_merchant_is_not_found() {
        let (store, clock, tenant) = (MemoryStore::new(), SystemClock, TenantId::parse("acme").unwrap());
        let mut new = new_metric("ai.inference", tokens());
        new.merchant_id = "globex".to_owned();
        assert!(matches!(
            create_metric(&store, &clock, &tenant, new).await,
            Err(CreateMetricError::MerchantNotFound)
        ));
        assert!(matches!(
            list_metrics(&store, &tenant, "globex", &MetricFilter::default(), 10, 0).await,
            Err(ListMetricsError::MerchantNotFound)
        ));
        let missing = get_metric(&store, &tenant, &MetricId::generate()).await;
        assert!(matches!(missing, Err(MetricLookupError::NotFound)));
    }
}
