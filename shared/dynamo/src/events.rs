//! [`EventStore`] on DynamoDB: ingested usage events. One item per event, in a partition of its
//! own (`T#<t>#EV#<sha256(key:<idempotency key> | id:<event id>)>`), so a tenant's event stream
//! spreads over partitions; written with one conditional PutItem, which both accepts the event
//! and deduplicates it (a duplicate gets the stored event back from the failed condition, no
//! second read). Events nothing metered (or whose burn was refused) are also in the sparse GSI1
//! partition `T#<t>#EVENTS_NOT_METERED`, sorted by receipt: an operator lists them there.
use crate::meters::metric_from;
use crate::prelude::*;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use grants_domain::ingest::{EventStore, IngestedEvent, Outcome};
use grants_domain::meters::{BillableMetric, MetricId};
use grants_domain::EventId;

fn event_item(e: &IngestedEvent) -> Item {
    let t = e.tenant.as_str();
    let mut item: Item = HashMap::from([
        (PK.to_owned(), s(ingested_event_pk(t, &e.dedup_key()))),
        (SK.to_owned(), s(INGESTED_EVENT_SK)),
        ("type".to_owned(), s("ingested_event")),
        ("id".to_owned(), s(e.id.as_str())),
        ("event_type".to_owned(), s(&e.event_type)),
        ("source".to_owned(), s(&e.source)),
        ("customer".to_owned(), s(&e.customer)),
        ("occurred_at".to_owned(), ts(e.occurred_at)),
        ("received_at".to_owned(), ts(e.received_at)),
        ("fingerprint".to_owned(), map_ss(&e.fingerprint)),
    ]);
    if let Some(k) = &e.idempotency_key {
        item.insert("idempotency_key".to_owned(), s(k));
    }
    if let Some((metric, amount)) = &e.metered {
        item.insert("metric_id".to_owned(), s(metric.as_str()));
        item.insert("amount".to_owned(), n(*amount));
    }
    item.extend(outcome_attributes(e));
    item
}

/// The outcome's attributes: the entitlement it was resolved to, the reason a burn was refused,
/// and the not-metered index keys unless it was applied.
fn outcome_attributes(e: &IngestedEvent) -> Vec<(String, AttributeValue)> {
    let mut out = vec![("outcome".to_owned(), s(e.outcome.as_str()))];
    match &e.outcome {
        Outcome::Applied(ent) => out.push(("entitlement".to_owned(), s(ent.as_str()))),
        other => {
            if let Outcome::ApplyFailed { entitlement, reason } = other {
                out.push(("entitlement".to_owned(), s(entitlement.as_str())));
                out.push(("reason".to_owned(), s(reason)));
            }
            out.push(("GSI1PK".to_owned(), s(events_not_metered(e.tenant.as_str()))));
            out.push((
                "GSI1SK".to_owned(),
                s(format!("{}#{}", e.received_at.to_storage(), e.id)),
            ));
        }
    }
    out
}

fn event_from(tenant: &TenantId, item: &Item) -> Result<IngestedEvent, StoreError> {
    let r = Reader(item);
    let metered = match (r.opt_s("metric_id"), r.opt_dec("amount")?) {
        (Some(m), Some(amount)) => Some((
            MetricId::parse(m).ok_or_else(|| StoreError::Corrupt("event metric id".to_owned()))?,
            amount,
        )),
        _ => None,
    };
    let entitlement = || EntitlementId::parse(r.s("entitlement")?).map_err(corrupt("event entitlement"));
    let outcome = match r.s("outcome")? {
        "applied" => Outcome::Applied(entitlement()?),
        "apply_failed" => Outcome::ApplyFailed {
            entitlement: entitlement()?,
            reason: r.s("reason")?.to_owned(),
        },
        "unmetered" => Outcome::Unmetered,
        "no_entitlement" => Outcome::NoEntitlement,
        "before_meter" => Outcome::BeforeMeter,
        "zero" => Outcome::Zero,
        other => return Err(StoreError::Corrupt(format!("event outcome {other}"))),
    };
    Ok(IngestedEvent {
        id: EventId::parse(r.s("id")?).map_err(corrupt("event id"))?,
        tenant: tenant.clone(),
        event_type: r.s("event_type")?.to_owned(),
        source: r.s("source")?.to_owned(),
        customer: r.s("customer")?.to_owned(),
        occurred_at: r.ts("occurred_at")?,
        received_at: r.ts("received_at")?,
        idempotency_key: r.opt_s("idempotency_key").map(str::to_owned),
        fingerprint: r.map_ss("fingerprint"),
        metered,
        outcome,
    })
}

#[async_trait]
impl EventStore for DynamoStore {
    async fn insert_event(&self, e: &IngestedEvent) -> Result<Option<IngestedEvent>, StoreError> {
        let result = self
            .client()
            .put_item()
            .table_name(&self.table)
            .set_item(Some(event_item(e)))
            .condition_expression("attribute_not_exists(PK)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(None),
            Err(SdkError::ServiceError(ctx)) => match ctx.into_err() {
                PutItemError::ConditionalCheckFailedException(c) => {
                    let old = c
                        .item
                        .ok_or_else(|| StoreError::Corrupt("a duplicate event came back empty".to_owned()))?;
                    event_from(&e.tenant, &old).map(Some)
                }
                other => Err(service_failure(other)),
            },
            Err(err) => Err(unavailable(err)),
        }
    }

    async fn set_event_outcome(&self, e: &IngestedEvent) -> Result<(), StoreError> {
        let mut set = Vec::new();
        let mut names = Vec::new();
        let mut values = Vec::new();
        for (i, (k, v)) in outcome_attributes(e).into_iter().enumerate() {
            set.push(format!("#a{i} = :v{i}"));
            names.push((format!("#a{i}"), k));
            values.push((format!(":v{i}"), v));
        }
        let mut expression = format!("SET {}", set.join(", "));
        if matches!(e.outcome, Outcome::Applied(_)) {
            expression.push_str(" REMOVE GSI1PK, GSI1SK, reason");
        }
        let mut update = self
            .client()
            .update_item()
            .table_name(&self.table)
            .key(PK, s(ingested_event_pk(e.tenant.as_str(), &e.dedup_key())))
            .key(SK, s(INGESTED_EVENT_SK))
            .condition_expression("attribute_exists(PK)")
            .update_expression(expression);
        for (k, v) in names {
            update = update.expression_attribute_names(k, v);
        }
        for (k, v) in values {
            update = update.expression_attribute_values(k, v);
        }
        update.send().await.map_err(unavailable)?;
        Ok(())
    }

    async fn metric_for_type(&self, tenant: &TenantId, event_type: &str) -> Result<Option<BillableMetric>, StoreError> {
        self.get(tenant_pk(tenant.as_str()), &metric_type_sk(event_type))
            .await?
            .map(|item| metric_from(tenant, &item))
            .transpose()
    }
}
