//! Usage events as Paygentic's SDK sends them (`events.ingest`): accepted with one durable write,
//! deduplicated by their idempotency key, then metered.
//!
//! The mapping (issue 16): the event's `subject` (or, without one, `externalSubject`) is an
//! entitlement's `customerId`; the billable metric whose `eventType` is the event's `type`
//! ([`crate::meters`]) turns its `data` into an amount; that amount is burned, as one usage event,
//! on **one** entitlement: the customer's oldest active entitlement whose `featureKey` is the
//! event's type (an event is charged once, however many entitlements could take it), through the
//! same path as `POST /v1/entitlements/{id}/usage` (so burn-down, overage and replays are that
//! path's). An event no metric meters, or whose customer has no such entitlement, or that occurred
//! before its metric's `eventFrom`, or that the burn refuses (more grants than one usage event may
//! draw on), is kept with that outcome and reported, never dropped.
//!
//! Burning runs right after the accepting write, in the same request. Only a transient failure
//! there (storage busy) is an error answer: the client's retry with the same idempotency key finds
//! the accepted event and burns it, at most once (the burn is a usage event whose id is the
//! event's). An event sent without an idempotency key cannot be recognised when it is sent again:
//! its retry is a new event.
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

/// How far ahead of this service's clock an event's `timestamp` may be (a producer's clock skew):
/// such an event counts as occurring now. Further ahead is refused.
pub const MAX_CLOCK_SKEW_SECONDS: i64 = 300;

/// How an accepted event was metered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Burned on this entitlement.
    Applied(EntitlementId),
    /// Resolved to this entitlement, but the burn was refused for good (the reason); kept, and
    /// tried again when the same event is sent again.
    ApplyFailed { entitlement: EntitlementId, reason: String },
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
            Outcome::ApplyFailed { .. } => "apply_failed",
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

impl IngestedEvent {
    /// What makes two events one: the idempotency key, else (no key) the event's own id.
    pub fn dedup_key(&self) -> String {
        match &self.idempotency_key {
            Some(k) => format!("key:{k}"),
            None => format!("id:{}", self.id),
        }
    }
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
    /// Burning failed for now (storage busy); retrying the same event is safe.
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
    /// Replaces a stored event's outcome (after its burn succeeded or was refused).
    async fn set_event_outcome(&self, event: &IngestedEvent) -> Result<(), StoreError>;
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
    S: EventStore + MetricStore + EntitlementStore + UsageStore + crate::group_commit::UsageQueue + ?Sized,
{
    let now = clock.now();
    let occurred_at = match new.occurred_at {
        None => now,
        Some(t) if t <= now => t,
        Some(t) if now.plus_seconds(MAX_CLOCK_SKEW_SECONDS).is_some_and(|limit| t <= limit) => now,
        Some(_) => return Err(IngestError::InFuture),
    };
    let (metered, outcome) = resolve(store, tenant, &new, occurred_at, data).await?;
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
        outcome,
    };
    let (event, replayed) = match store.insert_event(&event).await? {
        None => (event, false),
        Some(existing) if existing.fingerprint == event.fingerprint => (existing, true),
        Some(existing) => return Err(IngestError::IdempotencyMismatch(differing(&existing, &event))),
    };
    let event = apply(store, clock, tenant, event).await?;
    Ok(if replayed {
        crate::kernel::Created::Replayed(event)
    } else {
        crate::kernel::Created::New(event)
    })
}

/// What the event's metric makes of it (`None` when nothing meters it, or it occurred before the
/// metric's `eventFrom`) and its outcome: where it is to be burned (the customer's oldest active
/// entitlement for its type), or why it is not.
async fn resolve<S>(
    store: &S,
    tenant: &TenantId,
    new: &NewEvent,
    occurred_at: Timestamp,
    data: &(dyn EventData + Sync),
) -> Result<(Option<(MetricId, Decimal)>, Outcome), IngestError>
where
    S: EventStore + EntitlementStore + ?Sized,
{
    let metric = store.metric_for_type(tenant, new.event_type.as_str()).await?;
    let before_meter = |m: &BillableMetric| m.definition.event_from.is_some_and(|from| occurred_at < from);
    let metered = match &metric {
        Some(m) if !before_meter(m) => Some((m.id.clone(), measure(m, data)?)),
        _ => None,
    };
    let outcome = match (&metric, &metered) {
        (None, _) => Outcome::Unmetered,
        (Some(_), None) => Outcome::BeforeMeter,
        (Some(_), Some((_, n))) if n.is_zero() => Outcome::Zero,
        (Some(_), Some(_)) => store
            .list_entitlements(tenant, Some(new.customer.as_str()))
            .await?
            .into_iter()
            .filter(|e| e.status == EntitlementStatus::Active && e.feature_key == new.event_type.as_str())
            .min_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)))
            .map_or(Outcome::NoEntitlement, |e| Outcome::Applied(e.id)),
    };
    Ok((metered, outcome))
}

/// The fingerprint keys on which two events differ.
fn differing(a: &IngestedEvent, b: &IngestedEvent) -> Vec<String> {
    let mut keys: Vec<String> = a
        .fingerprint
        .keys()
        .chain(b.fingerprint.keys())
        .filter(|k| a.fingerprint.get(*k) != b.fingerprint.get(*k))
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Burns an accepted event's amount on the entitlement it was resolved to (idempotent: the burn is
/// a usage event whose id is the event's), and returns the event with its outcome as stored: a
/// refused burn is recorded as [`Outcome::ApplyFailed`], a refused one that now succeeds as applied.
async fn apply<S>(
    store: &S,
    clock: &dyn Clock,
    tenant: &TenantId,
    mut event: IngestedEvent,
) -> Result<IngestedEvent, IngestError>
where
    S: EventStore + EntitlementStore + UsageStore + crate::group_commit::UsageQueue + ?Sized,
{
    let entitlement = match &event.outcome {
        Outcome::Applied(e) | Outcome::ApplyFailed { entitlement: e, .. } => e.clone(),
        _ => return Ok(event),
    };
    let Some((_, amount)) = &event.metered else {
        return Err(StoreError::Corrupt(format!("event {} resolved but not metered", event.id)).into());
    };
    let amount = CreditAmount::new(*amount).map_err(|e| StoreError::Corrupt(format!("metered amount: {e}")))?;
    let event_id = Label::parse(event.id.as_str()).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let burn = NewUsage {
        entitlement_id: entitlement.clone(),
        event_id,
        amount,
        occurred_at: Some(event.occurred_at),
        pending: false,
    };
    let outcome = match usage::record_usage(store, clock, tenant, burn).await {
        Ok(_) => Outcome::Applied(entitlement),
        // Refused for good (not by a busy store): kept with the reason.
        Err(
            e @ (UsageError::EntitlementNotActive(_)
            | UsageError::TooManyGrantsToHold(_)
            | UsageError::EntitlementNotFound
            | UsageError::IdempotencyMismatch(_)
            | UsageError::OccurredInFuture),
        ) => Outcome::ApplyFailed {
            entitlement,
            reason: e.to_string(),
        },
        Err(e @ UsageError::Store(_)) => return Err(e.into()),
    };
    if outcome != event.outcome {
        event.outcome = outcome;
        store.set_event_outcome(&event).await?;
    }
    Ok(event)
}
