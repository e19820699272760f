//! Usage events in (`POST /v0/events`, Paygentic's `events.ingest`): accepted, deduplicated by
//! `idempotencyKey`, metered by the event type's billable metric and burned on the customer's
//! entitlements for that type. The mapping is [`grants_domain::ingest`]'s.
use crate::body::JsonBody;
use crate::object_tag;
use crate::openapi::{
    BadRequest, Busy, Conflict, Forbidden, NotFound, TooLarge, Unauthorized, Unprocessable, Unsupported,
};
use crate::wire::{IdempotencyKey as IdempotencyKeySchema, Label as LabelSchema, Number};
use crate::{ApiError, ApiRequest, ApiResponse, App, Store};
use grants_domain::amount::parse_decimal;
use grants_domain::auth::Principal;
use grants_domain::ingest::{self, EventData, IngestedEvent, NewEvent};
use grants_domain::kernel::{Created, Label};
use grants_domain::meters::ValuePath;
use grants_domain::Timestamp;
use http::StatusCode;
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// An event's `data`, read by a billable metric's `valueProperty`.
struct Data<'a>(&'a Map<String, Value>);

impl EventData for Data<'_> {
    fn number_at(&self, path: &ValuePath) -> Option<Result<Decimal, String>> {
        let mut members = path.members();
        let first = members.next()?;
        let mut value = self.0.get(first)?;
        for m in members {
            value = value.as_object()?.get(m)?;
        }
        Some(match value {
            Value::Null => return None,
            Value::Number(n) => parse_decimal(&n.to_string()).map_err(|e| e.to_string()),
            _ => Err("must be a number".to_owned()),
        })
    }
}

object_tag!(EventTag = "event");

/// What `POST /v0/events` answers (202): Paygentic's EventResponse, plus how the event was
/// metered: `status` (`applied`, or why not: `unmetered`, `no_entitlement`, `before_meter`,
/// `zero`, `apply_failed`), and when applied `amount` (the credits burned) and `entitlement`
/// (where).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = EventResponse)]
pub struct EventBody {
    pub id: String,
    #[schema(inline)]
    pub object: EventTag,
    pub r#type: String,
    pub source: String,
    /// The customer the event was metered for.
    pub subject: String,
    pub namespace: String,
    #[schema(value_type = String, format = DateTime)]
    pub timestamp: Timestamp,
    #[schema(required)]
    pub idempotency_key: Option<String>,
    pub status: &'static str,
    #[schema(inline, required)]
    pub amount: Option<Number>,
    #[schema(required)]
    pub entitlement: Option<String>,
    /// Why the burn was refused (`apply_failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub reason: Option<String>,
}

impl From<&IngestedEvent> for EventBody {
    fn from(e: &IngestedEvent) -> Self {
        Self {
            id: e.id.as_str().to_owned(),
            object: EventTag,
            r#type: e.event_type.clone(),
            source: e.source.clone(),
            subject: e.customer.clone(),
            namespace: e.tenant.as_str().to_owned(),
            timestamp: e.occurred_at,
            idempotency_key: e.idempotency_key.clone(),
            status: e.outcome.as_str(),
            amount: match &e.outcome {
                ingest::Outcome::Applied(_) => e.metered.as_ref().map(|(_, n)| Number(*n)),
                _ => None,
            },
            entitlement: match &e.outcome {
                ingest::Outcome::Applied(id) => Some(id.as_str().to_owned()),
                _ => None,
            },
            reason: match &e.outcome {
                ingest::Outcome::ApplyFailed { reason, .. } => Some(reason.clone()),
                _ => None,
            },
        }
    }
}

/// The body of `POST /v0/events` (CloudEvents-style).
#[derive(ToSchema)]
#[schema(rename_all = "camelCase", as = IngestEventRequest)]
pub struct EventRequest {
    /// The CloudEvents type: the billable metric's `eventType`.
    pub r#type: LabelSchema,
    pub source: LabelSchema,
    /// The event's payload; a SUM metric reads its `valueProperty` here.
    pub data: BTreeMap<String, serde_json::Value>,
    /// The customer (an entitlement's `customerId`); required unless `externalSubject` is given.
    #[schema(required = false)]
    pub subject: LabelSchema,
    /// The customer, when there is no `subject`.
    #[schema(required = false)]
    pub external_subject: LabelSchema,
    /// The key's organization (another's: 404).
    #[schema(required = false)]
    pub namespace: String,
    /// When it happened (default: now; up to 5 minutes ahead of this service's clock counts as now).
    #[schema(format = DateTime, required = false)]
    pub timestamp: String,
    /// Events with the same key are one event.
    #[schema(required = false)]
    pub idempotency_key: IdempotencyKeySchema,
    #[schema(required = false)]
    pub external_id: LabelSchema,
}

/// The request's own fields, canonically: what tells a duplicate from a reused key.
fn fingerprint(fields: &[(&str, Option<String>)]) -> BTreeMap<String, String> {
    fields
        .iter()
        .filter_map(|(k, v)| v.clone().map(|v| ((*k).to_owned(), v)))
        .collect()
}

/// Ingest a usage event.
///
/// Admin only. Accepted with one durable write and deduplicated by `idempotencyKey`, then metered
/// and burned (see the README's mapping). An event nothing meters is kept and answered with its
/// `status`. 202 for a duplicate too.
#[utoipa::path(post, path = "/v0/events", operation_id = "ingestEvent", tag = "paygentic",
    request_body = EventRequest,
    responses(
        (status = 202, description = "Accepted (and metered, as `status` says).", body = EventBody),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound), (status = 409, response = Conflict),
        (status = 413, response = TooLarge), (status = 415, response = Unsupported),
        (status = 422, response = Unprocessable), (status = 503, response = Busy),
    ))]
pub async fn ingest_event<S: Store>(app: &App<S>, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let mut body = JsonBody::parse(req)?;
    let event_type = body.parsed("type", true, Label::parse);
    let source = body.parsed("source", true, Label::parse).map(Label::into_string);
    let data = body.raw_object("data", true);
    let subject = body.parsed("subject", false, Label::parse);
    let external_subject = body.parsed("externalSubject", false, Label::parse);
    let namespace = body.optional_string("namespace");
    let timestamp = body.optional_timestamp("timestamp");
    let idempotency_key = body.parsed("idempotencyKey", false, Label::parse);
    let external_id = body.parsed("externalId", false, Label::parse).map(Label::into_string);
    let has_customer = body.has("subject") || body.has("externalSubject");
    if !has_customer {
        body.reject("subject", "required", "is required unless externalSubject is given");
    }
    body.finish()?;
    if namespace.as_deref().is_some_and(|n| n != who.tenant.as_str()) {
        return Err(ApiError::not_found(
            "namespace_not_found",
            "No such namespace (it must be the key's organization)",
        ));
    }
    let (Some(event_type), Some(source), Some(data), Some(customer)) =
        (event_type, source, data, subject.clone().or(external_subject.clone()))
    else {
        return Err(ApiError::internal());
    };
    let raw = |l: &Option<Label>| l.clone().map(Label::into_string);
    let fingerprint = fingerprint(&[
        ("type", Some(event_type.clone().into_string())),
        ("source", Some(source.clone())),
        ("subject", raw(&subject)),
        ("externalSubject", raw(&external_subject)),
        ("timestamp", timestamp.map(|t| t.to_rfc3339())),
        ("externalId", external_id),
        // The data's digest, not the data: the stored event stays small whatever the body carried.
        (
            "data",
            Some(hex::encode(Sha256::digest(Value::Object(data.clone()).to_string()))),
        ),
    ]);
    let new = NewEvent {
        event_type,
        source,
        customer,
        occurred_at: timestamp,
        idempotency_key,
        fingerprint,
    };
    let created = ingest::ingest(app.store.as_ref(), app.clock.as_ref(), &who.tenant, new, &Data(&data)).await?;
    let event = match &created {
        Created::New(e) | Created::Replayed(e) => e,
    };
    if !matches!(event.outcome, ingest::Outcome::Applied(_)) {
        tracing::warn!(event = %event.id, event_type = %event.event_type, outcome = event.outcome.as_str(), "event kept, not metered");
    }
    let mut response = ApiResponse::json(StatusCode::ACCEPTED, &EventBody::from(event));
    if matches!(created, Created::Replayed(_)) {
        response
            .headers
            .push(("idempotent-replayed".to_owned(), "true".to_owned()));
    }
    Ok(response)
}
