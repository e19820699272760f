//! [`UsageQueue`] on DynamoDB: queued requests (`Q#` items in the entitlement's partition), the
//! lease (`lease_owner`, `lease_until` on the entitlement's item) and the batch transaction.
use crate::prelude::*;
use grants_domain::group_commit::{Application, Batch, BatchWrite, QueueState, Step, UsageQueue};

/// On a usage record applied by a batch: how many events that batch applied.
const BATCH_OF: &str = "batch_of";

/// How many events the batch that applied this record applied (1: on its own).
fn batch_of(item: &Item) -> usize {
    item.get(BATCH_OF)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

fn queued_item(r: &UsageRecord) -> Item {
    let mut item = usage_item(r);
    item.insert(SK.to_owned(), s(queue_sk(&r.recorded_at.to_storage(), &r.event_id)));
    item.insert("type".to_owned(), s("queued"));
    item
}

fn key_of(pk: &str, sk: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([(PK.to_owned(), s(pk)), (SK.to_owned(), s(sk))])
}

/// True when the lease on the entitlement item `e` is absent or expired at `now`.
fn lease_free(e: &Item, now: Timestamp) -> bool {
    match Reader(e).opt_s(LEASE_UNTIL) {
        None => true,
        Some(until) => until < now.to_storage().as_str(),
    }
}

impl DynamoStore {
    /// Strongly consistent reads of several items of one table, in one BatchGetItem (what it
    /// leaves unprocessed is asked again).
    async fn get_many(&self, keys: Vec<HashMap<String, AttributeValue>>) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::new();
        let mut pending = keys;
        for _ in 0..8 {
            if pending.is_empty() {
                break;
            }
            let request = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                .set_keys(Some(pending.clone()))
                .consistent_read(true)
                .build()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let out = self
                .client()
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(unavailable)?;
            found.extend(
                out.responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default(),
            );
            pending = out
                .unprocessed_keys
                .and_then(|mut u| u.remove(&self.table))
                .map(|k| k.keys)
                .unwrap_or_default();
        }
        if pending.is_empty() {
            Ok(found)
        } else {
            Err(StoreError::Contention)
        }
    }
}

#[async_trait]
impl UsageQueue for DynamoStore {
    fn busy(&self) -> &grants_domain::group_commit::BusyEntitlements {
        &self.busy
    }

    fn combiner(&self) -> &grants_domain::combining::Combiner {
        &self.combiner
    }

    async fn enqueue_usage(&self, request: &UsageRecord) -> Result<(), StoreError> {
        let result = self
            .client()
            .put_item()
            .table_name(&self.table)
            .set_item(Some(queued_item(request)))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await;
        // Queued already (the same request sent twice): one stays.
        written(result).map(drop)
    }

    async fn queued_usage(
        &self,
        tenant: &TenantId,
        id: &EntitlementId,
        limit: usize,
    ) -> Result<Vec<UsageRecord>, StoreError> {
        let out = self
            .client()
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("PK = :pk AND begins_with(SK, :q)")
            .expression_attribute_values(":pk", s(entitlement_pk(tenant.as_str(), id.as_str())))
            .expression_attribute_values(":q", s(QUEUE_SK_PREFIX))
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(unavailable)?;
        out.items.unwrap_or_default().iter().map(usage_from).collect()
    }

    async fn applied_usage(&self, request: &UsageRecord) -> Result<Option<(UsageRecord, usize)>, StoreError> {
        let pk = entitlement_pk(request.tenant.as_str(), request.entitlement_id.as_str());
        match self.get(pk, &usage_sk(&request.event_id)).await? {
            Some(item) => Ok(Some((usage_from(&item)?, batch_of(&item)))),
            None => Ok(None),
        }
    }

    async fn queue_state(&self, request: &UsageRecord, now: Timestamp) -> Result<QueueState, StoreError> {
        let pk = entitlement_pk(request.tenant.as_str(), request.entitlement_id.as_str());
        let (record_sk, queued_sk) = (
            usage_sk(&request.event_id),
            queue_sk(&request.recorded_at.to_storage(), &request.event_id),
        );
        let items = self
            .get_many(vec![
                key_of(&pk, &record_sk),
                key_of(&pk, &queued_sk),
                key_of(&pk, ENTITLEMENT_SK),
            ])
            .await?;
        let sk_of = |i: &Item| Reader(i).opt_s(SK).map(str::to_owned);
        let mut state = QueueState {
            record: None,
            queued: false,
            lease_free: false,
            batch_of: 1,
        };
        for item in &items {
            match sk_of(item) {
                Some(sk) if sk == record_sk => {
                    state.record = Some(usage_from(item)?);
                    state.batch_of = batch_of(item);
                }
                Some(sk) if sk == queued_sk => state.queued = true,
                Some(sk) if sk == ENTITLEMENT_SK => state.lease_free = lease_free(item, now),
                _ => {}
            }
        }
        Ok(state)
    }

    async fn withdraw_usage(&self, request: &UsageRecord) -> Result<bool, StoreError> {
        let result = self
            .client()
            .delete_item()
            .table_name(&self.table)
            .key(
                PK,
                s(entitlement_pk(request.tenant.as_str(), request.entitlement_id.as_str())),
            )
            .key(SK, s(queue_sk(&request.recorded_at.to_storage(), &request.event_id)))
            .condition_expression("attribute_exists(PK)")
            .send()
            .await;
        Ok(written(result)?.is_some())
    }

    async fn take_lease(
        &self,
        tenant: &TenantId,
        id: &EntitlementId,
        owner: &str,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let result = self
            .update_at(entitlement_pk(tenant.as_str(), id.as_str()), ENTITLEMENT_SK)
            .update_expression("SET #owner = :owner, #until = :until")
            .condition_expression("attribute_exists(PK) AND (attribute_not_exists(#until) OR #until < :now)")
            .expression_attribute_names("#owner", LEASE_OWNER)
            .expression_attribute_names("#until", LEASE_UNTIL)
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":until", ts(until))
            .expression_attribute_values(":now", ts(now))
            .send()
            .await;
        Ok(written(result)?.is_some())
    }

    async fn release_lease(&self, tenant: &TenantId, id: &EntitlementId, owner: &str) -> Result<(), StoreError> {
        let result = self
            .update_at(entitlement_pk(tenant.as_str(), id.as_str()), ENTITLEMENT_SK)
            .update_expression("REMOVE #owner, #until")
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#owner", LEASE_OWNER)
            .expression_attribute_names("#until", LEASE_UNTIL)
            .expression_attribute_values(":owner", s(owner))
            .send()
            .await;
        unless_condition_failed(result)
    }

    async fn write_step(&self, step: &Step) -> Result<BatchWrite, StoreError> {
        let record = &step.application.record;
        let pk = entitlement_pk(record.tenant.as_str(), record.entitlement_id.as_str());
        let done = step.application.done;
        let first = done == 0;
        let mut update = Update::builder()
            .table_name(&self.table)
            .key(PK, s(&pk))
            .key(SK, s(ENTITLEMENT_SK))
            .update_expression("SET #until = :until, #applying = :event")
            .expression_attribute_names("#owner", LEASE_OWNER)
            .expression_attribute_names("#until", LEASE_UNTIL)
            .expression_attribute_names("#applying", APPLYING)
            .expression_attribute_values(":owner", s(&step.owner))
            .expression_attribute_values(":until", ts(step.lease_until))
            .expression_attribute_values(":event", s(&record.event_id))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        update = if first {
            update
                .condition_expression("#owner = :owner AND #st = :active AND attribute_not_exists(#applying)")
                .expression_attribute_names("#st", "status")
                .expression_attribute_values(":active", s(EntitlementStatus::Active.as_str()))
        } else {
            update.condition_expression("#owner = :owner AND #applying = :event")
        };
        let update = update.build().map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut progress = usage_item(record);
        progress.insert(SK.to_owned(), s(application_sk(&record.event_id)));
        progress.insert("type".to_owned(), s("application"));
        progress.insert("done".to_owned(), AttributeValue::N((done + 1).to_string()));
        let progress_put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(progress))
            .condition_expression(if first {
                "attribute_not_exists(PK)"
            } else {
                "done = :done"
            })
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let progress_put = if first {
            progress_put
        } else {
            progress_put.expression_attribute_values(":done", AttributeValue::N(done.to_string()))
        }
        .build()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut items = vec![
            TransactWriteItem::builder().update(update).build(),
            TransactWriteItem::builder().put(progress_put).build(),
        ];
        if first {
            // Not recorded already (a replay of an applied event is only dequeued).
            let check = ConditionCheck::builder()
                .table_name(&self.table)
                .key(PK, s(&pk))
                .key(SK, s(usage_sk(&record.event_id)))
                .condition_expression("attribute_not_exists(PK)")
                .build()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            items.push(TransactWriteItem::builder().condition_check(check).build());
        }
        for (g, read) in &step.grants {
            items.push(versioned_grant_put(&self.table, g, *read)?);
        }
        let failed = match self.transact(items).await {
            Ok(Transacted::Committed) => return Ok(BatchWrite::Written),
            Ok(Transacted::ConditionsFailed(failed)) => failed,
            Err(StoreError::Contention) => return Ok(BatchWrite::Stale),
            Err(e) => return Err(e),
        };
        if let Some(old) = failed.old(0) {
            if old.is_none_or(|e| Reader(e).opt_s(LEASE_OWNER) != Some(step.owner.as_str())) {
                return Ok(BatchWrite::LeaseLost);
            }
        }
        if first && (failed.at(1) || failed.at(2)) {
            return Ok(BatchWrite::Exists(record.event_id.clone()));
        }
        Ok(BatchWrite::Stale)
    }

    async fn load_application(
        &self,
        tenant: &TenantId,
        id: &EntitlementId,
        event_id: &str,
    ) -> Result<Option<Application>, StoreError> {
        let Some(item) = self
            .get(entitlement_pk(tenant.as_str(), id.as_str()), &application_sk(event_id))
            .await?
        else {
            return Ok(None);
        };
        let done = Reader(&item).version("done")?;
        Ok(Some(Application {
            record: usage_from(&item)?,
            done: usize::try_from(done).map_err(|_| StoreError::Corrupt("application progress".to_owned()))?,
        }))
    }

    async fn write_batch(&self, batch: &Batch) -> Result<BatchWrite, StoreError> {
        let pk = entitlement_pk(batch.tenant.as_str(), batch.entitlement_id.as_str());
        let committed = !batch.records.is_empty();
        if committed {
            let written = self.transact_batch(batch, &pk).await?;
            if written != BatchWrite::Written {
                return Ok(written);
            }
        }
        match self.dequeue(&pk, &batch.dequeued).await {
            Ok(()) => Ok(BatchWrite::Written),
            // The batch stands: a request left queued is found recorded by the next batch, and
            // only dequeued then.
            Err(error) if committed => {
                tracing::warn!(%error, "could not dequeue the requests of a committed batch");
                Ok(BatchWrite::Written)
            }
            Err(error) => Err(error),
        }
    }
}

impl DynamoStore {
    /// Deletes queued requests, 25 to a BatchWriteItem (what it leaves unprocessed is sent again).
    async fn dequeue(&self, pk: &str, requests: &[(String, Timestamp)]) -> Result<(), StoreError> {
        for chunk in requests.chunks(25) {
            let mut writes: Vec<aws_sdk_dynamodb::types::WriteRequest> = chunk
                .iter()
                .map(|(event, at)| {
                    let delete = aws_sdk_dynamodb::types::DeleteRequest::builder()
                        .set_key(Some(key_of(pk, &queue_sk(&at.to_storage(), event))))
                        .build()
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    Ok(aws_sdk_dynamodb::types::WriteRequest::builder()
                        .delete_request(delete)
                        .build())
                })
                .collect::<Result<_, StoreError>>()?;
            for _ in 0..8 {
                if writes.is_empty() {
                    break;
                }
                let out = self
                    .client()
                    .batch_write_item()
                    .request_items(&self.table, writes)
                    .send()
                    .await
                    .map_err(unavailable)?;
                writes = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.table))
                    .unwrap_or_default();
            }
        }
        Ok(())
    }

    /// The batch's transaction (see [`UsageQueue::write_batch`]).
    async fn transact_batch(&self, batch: &Batch, pk: &str) -> Result<BatchWrite, StoreError> {
        let mut set = vec!["#until = :until".to_owned()];
        let mut condition = "#owner = :owner".to_owned();
        let mut remove = String::new();
        let mut update = Update::builder()
            .table_name(&self.table)
            .key(PK, s(pk))
            .key(SK, s(ENTITLEMENT_SK))
            .expression_attribute_names("#owner", LEASE_OWNER)
            .expression_attribute_names("#until", LEASE_UNTIL)
            .expression_attribute_values(":owner", s(&batch.owner))
            .expression_attribute_values(":until", ts(batch.lease_until))
            .expression_attribute_values(":u", n(batch.delta.usage))
            .expression_attribute_values(":o", n(batch.delta.overage))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if batch.finishing.is_none() {
            // (An application under way finishes even if the entitlement was cancelled meanwhile:
            // its first steps already drew on the grants.)
            condition.push_str(" AND #st = :active");
            update = update
                .expression_attribute_names("#st", "status")
                .expression_attribute_values(":active", s(EntitlementStatus::Active.as_str()));
        }
        update = with_log_head(update, &mut set, &mut condition, batch.log.as_ref());
        update = update.expression_attribute_names("#applying", APPLYING);
        match &batch.finishing {
            Some(event) => {
                condition.push_str(" AND #applying = :event");
                remove.push_str(" REMOVE #applying");
                update = update.expression_attribute_values(":event", s(event));
            }
            None => condition.push_str(" AND attribute_not_exists(#applying)"),
        }
        let update = update
            .update_expression(format!(
                "SET {} ADD usage_in_period :u, overage :o{remove}",
                set.join(", ")
            ))
            .condition_expression(condition)
            .build()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut items = vec![TransactWriteItem::builder().update(update).build()];
        // What each item is, to tell which condition failed.
        enum Role {
            Entitlement,
            Record(String),
            Other,
        }
        let mut roles = vec![Role::Entitlement];
        for r in &batch.records {
            let mut item = usage_item(r);
            item.insert(BATCH_OF.to_owned(), AttributeValue::N(batch.records.len().to_string()));
            items.push(put(&self.table, item, "attribute_not_exists(PK)")?);
            roles.push(Role::Record(r.event_id.clone()));
            if r.status == UsageStatus::Pending {
                items.push(hold_put(&self.table, r)?);
                roles.push(Role::Other);
            }
        }
        for (g, read) in &batch.grants {
            items.push(versioned_grant_put(&self.table, g, *read)?);
            roles.push(Role::Other);
        }
        if let Some(event) = &batch.finishing {
            let delete = aws_sdk_dynamodb::types::Delete::builder()
                .table_name(&self.table)
                .key(PK, s(pk))
                .key(SK, s(application_sk(event)))
                .condition_expression("attribute_exists(PK)")
                .build()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            items.push(TransactWriteItem::builder().delete(delete).build());
            roles.push(Role::Other);
        }
        if let Some(log) = &batch.log {
            let appended = append_items(&self.table, &batch.tenant, &batch.entitlement_id, log, false)?;
            roles.extend(appended.iter().map(|_| Role::Other));
            items.extend(appended);
        }
        let failed = match self.transact(items).await {
            Ok(Transacted::Committed) => return Ok(BatchWrite::Written),
            Ok(Transacted::ConditionsFailed(failed)) => failed,
            Err(StoreError::Contention) => return Ok(BatchWrite::Stale),
            Err(e) => return Err(e),
        };
        for (i, role) in roles.iter().enumerate() {
            let Some(old) = failed.old(i) else { continue };
            match role {
                Role::Record(event) => return Ok(BatchWrite::Exists(event.clone())),
                Role::Entitlement => {
                    let held = old.is_some_and(|e| Reader(e).opt_s(LEASE_OWNER) == Some(batch.owner.as_str()));
                    if !held {
                        return Ok(BatchWrite::LeaseLost);
                    }
                }
                Role::Other => {}
            }
        }
        Ok(BatchWrite::Stale)
    }
}
