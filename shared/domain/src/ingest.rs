//! Usage events as Paygentic's SDK sends them (`events.ingest`): accepted with one durable write,
//! deduplicated by their idempotency key, then metered.
//!
//! The mapping (issue 16): the event's `subject` (or, without one, `externalSubject`) is an
//! entitlement's `customerId`; the billable metric whose `eventType` is the event's `type`
//! ([`crate::meters`]) turns its `data` into an amount; that amount is burned, as one usage event,
//! on each of the customer's active entitlements whose `featureKey` is the event's type, through
//! the same path as `POST /v1/entitlements/{id}/usage` (so burn-down, overage and replays are
//! that path's). An event no metric meters, or whose customer has no such entitlement, or that
//! occurred before its metric's `eventFrom`, is kept with that outcome and reported, never dropped.
//!
//! Applying runs right after the accepting write, in the same request. A failure there is an
//! error answer (the client retries; the retry finds the accepted event and applies what is
//! missing, since each usage event is idempotent by its id): an accepted event whose client never
//! retries stays recorded as accepted and not applied.
use crate::entitlement_store::EntitlementStore;
use crate::kernel::{Label, StoreError};
use crate::meters::{Aggregation, BillableMetric, MetricId, MetricStore, ValuePath};
use crate::model::EntitlementStatus;
use crate::usage::{self, NewUsage, UsageError, UsageStore};
use crate::{Clock, CreditAmount, EntitlementId, EventId, TenantId, Timestamp};
use async_trait::async_trait;
use rust_decimal::Decimal;
use std::collections::BTreeMap;

/// What metering needs from an event's `data` (a JSON object at the HTTP boundary; the domain
/// does not parse JSON).
pub trait EventData {
    /// The number at `path`: `None` when nothing is there, `Err` when what is there is not a number.
    fn number_at(&self, path: &ValuePath) -> Option<Result<Decimal, String>>;
}

/// An event as the client sent it, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// The CloudEvents `type`.
    pub event_type: Label,
    pub source: String,
    /// `subject`, else `externalSubject`: the customer.
    pub customer: Label,
    pub occurred_at: Option<Timestamp>,
    /// The client's deduplication key; None: this event is never a duplicate.
    pub idempotency_key: Option<Label>,
    /// What identifies the event's content, for telling a duplicate from a reused key (the
    /// request's own fields, canonically).
    pub fingerprint: BTreeMap<String, String>,
}

/// How an accepted event was metered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Burned on these entitlements.
    Applied(Vec<EntitlementId>),
    /// No billable metric meters this type.
    Unmetered,
    /// The metric meters it, but the customer has no active entitlement for this type.
    NoEntitlement,
    /// It occurred before the metric's `eventFrom`.
    BeforeMeter,
    /// The metric's amount for it is zero: nothing to burn.
    Zero,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Applied(_) => "applied",
            Outcome::Unmetered => "unmetered",
            Outcome::NoEntitlement => "no_entitlement",
            Outcome::BeforeMeter => "before_meter",
            Outcome::Zero => "zero",
        }
    }
}

/// An accepted event, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestedEvent {
    pub id: EventId,
    pub tenant: TenantId,
    pub event_type: String,
    pub source: String,
    pub customer: String,
    pub occurred_at: Timestamp,
    pub received_at: Timestamp,
    pub idempotency_key: Option<String>,
    pub fingerprint: BTreeMap<String, String>,
    /// The metric that metered it and the amount, when one did.
    pub metered: Option<(MetricId, Decimal)>,
    pub outcome: Outcome,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The metric needs a number at its `valueProperty` and the event has none, or not a number.
    #[error("data{path}: {message}", path = .path.trim_start_matches('$'))]
    Value { path: String, message: String },
    #[error("timestamp is in the future")]
    InFuture,
    /// The idempotency key was used for a different event.
    #[error("idempotencyKey reused with a different event: {}", .0.join(", "))]
    IdempotencyMismatch(Vec<String>),
    /// Burning on an entitlement failed (busy, too many grants); retrying the same event is safe.
    #[error("applying the event: {0}")]
    Apply(#[from] UsageError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What ingestion needs from storage beyond the metrics, entitlements and usage ports.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Writes the event unless one with its idempotency key exists (then returns that one,
    /// nothing written).
    async fn insert_event(&self, event: &IngestedEvent) -> Result<Option<IngestedEvent>, StoreError>;
    /// The metric for an event type.
    async fn metric_for_type(&self, tenant: &TenantId, event_type: &str) -> Result<Option<BillableMetric>, StoreError>;
}

/// The amount `metric` meters for an event with `data`: zero, or a credit amount (checked before
/// the event is accepted, so that an accepted event can always be applied).
fn measure(metric: &BillableMetric, data: &(dyn EventData + Sync)) -> Result<Decimal, IngestError> {
    let Aggregation::Sum(path) = &metric.definition.aggregation else {
        return Ok(Decimal::ONE);
    };
    let value_error = |message: String| IngestError::Value {
        path: path.as_str().to_owned(),
        message,
    };
    let n = match data.number_at(path) {
        None => return Err(value_error("is required by the billable metric (SUM)".to_owned())),
        Some(Err(e)) => return Err(value_error(e)),
        Some(Ok(n)) => n,
    };
    if n.is_zero() {
        return Ok(n);
    }
    CreditAmount::new(n)
        .map(|a| a.value())
        .map_err(|e| value_error(e.to_string()))
}

/// Accepts one event (one durable write, deduplicated by its idempotency key) and meters it.
/// Returns the event as stored; `Created::Replayed` for a duplicate (whose application is
/// completed if an earlier attempt stopped part way).
pub async fn ingest<S>(
    store: &S,
    clock: &dyn Clock,
    tenant: &TenantId,
    new: NewEvent,
    data: &(dyn EventData + Sync),
) -> Result<crate::kernel::Created<IngestedEvent>, IngestError>
where
    S: EventStore + MetricStore + EntitlementStore + UsageStore + ?Sized,
{
    let now = clock.now();
    let occurred_at = new.occurred_at.unwrap_or(now);
    if occurred_at > now {
        return Err(IngestError::InFuture);
    }
    let metric = store.metric_for_type(tenant, new.event_type.as_str()).await?;
    let metered = match &metric {
        Some(m) => Some((m.id.clone(), measure(m, data)?)),
        None => None,
    };
    let targets = match &metric {
        None => Err(Outcome::Unmetered),
        Some(m) if m.definition.event_from.is_some_and(|from| occurred_at < from) => Err(Outcome::BeforeMeter),
        Some(_) if metered.as_ref().is_some_and(|(_, n)| n.is_zero()) => Err(Outcome::Zero),
        Some(_) => {
            let ids: Vec<EntitlementId> = store
                .list_entitlements(tenant, Some(new.customer.as_str()))
                .await?
                .into_iter()
                .filter(|e| e.status == EntitlementStatus::Active && e.feature_key == new.event_type.as_str())
                .map(|e| e.id)
                .collect();
            if ids.is_empty() {
                Err(Outcome::NoEntitlement)
            } else {
                Ok(ids)
            }
        }
    };
    let event = IngestedEvent {
        id: EventId::generate(),
        tenant: tenant.clone(),
        event_type: new.event_type.into_string(),
        source: new.source,
        customer: new.customer.into_string(),
        occurred_at,
        received_at: now,
        idempotency_key: new.idempotency_key.map(Label::into_string),
        fingerprint: new.fingerprint,
        metered,
        outcome: match &targets {
            Ok(ids) => Outcome::Applied(ids.clone()),
            Err(outcome) => outcome.clone(),
        },
    };
    let (event, replayed) = match store.insert_event(&event).await? {
        None => (event, false),
        Some(existing) if existing.fingerprint == event.fingerprint => (existing, true),
        Some(existing) => {
            let differing = event
                .fingerprint
                .iter()
                .filter(|(k, v)| existing.fingerprint.get(*k) != Some(v))
                .map(|(k, _)| k.clone())
                .chain(
                    existing
                        .fingerprint
                        .keys()
                        .filter(|k| !event.fingerprint.contains_key(*k))
                        .cloned(),
                )
                .collect();
            return Err(IngestError::IdempotencyMismatch(differing));
        }
    };
    apply(store, clock, tenant, &event).await?;
    Ok(if replayed {
        crate::kernel::Created::Replayed(event)
    } else {
        crate::kernel::Created::New(event)
    })
}

/// Burns an accepted event's amount on the entitlements it was resolved to (idempotent: each
/// burn is a usage event whose id is the event's).
async fn apply<S>(store: &S, clock: &dyn Clock, tenant: &TenantId, event: &IngestedEvent) -> Result<(), IngestError>
where
    S: EntitlementStore + UsageStore + ?Sized,
{
    let (Outcome::Applied(ids), Some((_, amount))) = (&event.outcome, &event.metered) else {
        return Ok(());
    };
    let amount = CreditAmount::new(*amount).map_err(|e| StoreError::Corrupt(format!("metered amount: {e}")))?;
    let event_id = Label::parse(event.id.as_str()).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    for entitlement_id in ids {
        let burn = NewUsage {
            entitlement_id: entitlement_id.clone(),
            event_id: event_id.clone(),
            amount,
            occurred_at: Some(event.occurred_at),
            pending: false,
        };
        match usage::record_usage(store, clock, tenant, burn).await {
            Ok(_) => {}
            // Cancelled between resolving and burning: nothing to burn there.
            Err(UsageError::EntitlementNotActive(_) | UsageError::EntitlementNotFound) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
