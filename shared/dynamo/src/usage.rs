//! [`UsageStore`] on DynamoDB: Usage records, with the counters and grants they change in one transaction.

use crate::prelude::*;

// ---- usage ----------------------------------------------------------------------------------

/// Deductions as stored: a list of `{g: grant id, a: amount}`.
pub(crate) fn deductions_attr(drawn: &[Deduction]) -> AttributeValue {
    AttributeValue::L(
        drawn
            .iter()
            .map(|d| {
                AttributeValue::M(HashMap::from([
                    ("g".to_owned(), s(d.grant_id.as_str())),
                    ("a".to_owned(), n(d.amount)),
                ]))
            })
            .collect(),
    )
}

/// The deductions stored under `key` (see [`deductions_attr`]).
pub(crate) fn deductions_from(item: &Item, key: &str) -> Result<Vec<Deduction>, StoreError> {
    item.get(key)
        .and_then(|v| v.as_l().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("{key} list")))?
        .iter()
        .map(|d| {
            let m = d.as_m().map_err(|_| StoreError::Corrupt("deduction".to_owned()))?;
            let r = Reader(m);
            Ok(Deduction {
                grant_id: GrantId::parse(r.s("g")?).map_err(corrupt("grant id"))?,
                amount: r.dec("a")?,
            })
        })
        .collect()
}

pub(crate) fn usage_item(u: &UsageRecord) -> Item {
    let mut item: Item = HashMap::from([
        (
            PK.to_owned(),
            s(entitlement_pk(u.tenant.as_str(), u.entitlement_id.as_str())),
        ),
        (SK.to_owned(), s(usage_sk(&u.event_id))),
        ("type".to_owned(), s("usage")),
        ("tenant".to_owned(), s(u.tenant.as_str())),
        ("entitlement_id".to_owned(), s(u.entitlement_id.as_str())),
        ("event_id".to_owned(), s(&u.event_id)),
        ("amount".to_owned(), n(u.amount)),
        ("occurred_at".to_owned(), ts(u.occurred_at)),
        ("recorded_at".to_owned(), ts(u.recorded_at)),
        ("status".to_owned(), s(u.status.as_str())),
        ("deductions".to_owned(), deductions_attr(&u.deductions)),
        ("overage".to_owned(), n(u.overage)),
        ("fingerprint".to_owned(), map_ss(&u.fingerprint)),
    ]);
    if let Some(t) = u.settled_at {
        item.insert("settled_at".to_owned(), ts(t));
    }
    if u.rollover {
        item.insert("rollover".to_owned(), AttributeValue::Bool(true));
    }
    item
}

pub(crate) fn usage_from(item: &Item) -> Result<UsageRecord, StoreError> {
    let r = Reader(item);
    let deductions = deductions_from(item, "deductions")?;
    Ok(UsageRecord {
        rollover: r.bool("rollover"),
        tenant: TenantId::parse(r.s("tenant")?).map_err(corrupt("tenant"))?,
        entitlement_id: EntitlementId::parse(r.s("entitlement_id")?).map_err(corrupt("entitlement id"))?,
        event_id: r.s("event_id")?.to_owned(),
        amount: r.dec("amount")?,
        occurred_at: r.ts("occurred_at")?,
        recorded_at: r.ts("recorded_at")?,
        status: UsageStatus::parse(r.s("status")?).ok_or_else(|| StoreError::Corrupt("usage status".to_owned()))?,
        deductions,
        overage: r.dec("overage")?,
        settled_at: r.opt_ts("settled_at")?,
        fingerprint: r.map_ss("fingerprint"),
    })
}

/// Adds usage and overage to the entitlement's period counters, under `condition`; with a log
/// append, also moves the entitlement's log head, conditional on it being where it was read.
pub(crate) fn counters_update(
    table: &str,
    record: &UsageRecord,
    delta: CounterDelta,
    require_active: bool,
    log: Option<&LogAppend>,
    lease_free_at: Option<Timestamp>,
) -> Result<TransactWriteItem, StoreError> {
    debug_assert!(
        delta.usage >= Decimal::ZERO && delta.overage >= Decimal::ZERO,
        "counters only grow"
    );
    let mut update = Update::builder()
        .table_name(table)
        .key(
            PK,
            s(entitlement_pk(record.tenant.as_str(), record.entitlement_id.as_str())),
        )
        .key(SK, s(ENTITLEMENT_SK))
        .expression_attribute_values(":u", n(delta.usage))
        .expression_attribute_values(":o", n(delta.overage));
    let mut condition = if require_active {
        update = update
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":active", s(EntitlementStatus::Active.as_str()));
        "#st = :active".to_owned()
    } else {
        "attribute_exists(PK)".to_owned()
    };
    // No multi-step application is under way on it (its grants are part-way changed).
    condition.push_str(" AND attribute_not_exists(#applying)");
    update = update.expression_attribute_names("#applying", APPLYING);
    if let Some(now) = lease_free_at {
        // Nobody is applying a batch (group commit) on it.
        condition.push_str(" AND (attribute_not_exists(#until) OR #until < :now)");
        update = update
            .expression_attribute_names("#until", LEASE_UNTIL)
            .expression_attribute_values(":now", ts(now));
    }
    let mut set = Vec::new();
    update = with_log_head(update, &mut set, &mut condition, log);
    update = update.update_expression(if set.is_empty() {
        "ADD usage_in_period :u, overage :o".to_owned()
    } else {
        format!("SET {} ADD usage_in_period :u, overage :o", set.join(", "))
    });
    update = update
        .condition_expression(condition)
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
    Ok(TransactWriteItem::builder()
        .update(update.build().map_err(|e| StoreError::Corrupt(e.to_string()))?)
        .build())
}

#[async_trait]
impl UsageStore for DynamoStore {
    async fn load_ledger(
        &self,
        tenant: &TenantId,
        id: &EntitlementId,
    ) -> Result<Option<(Entitlement, Vec<Grant>, Vec<UsageRecord>)>, StoreError> {
        let items = self
            .query_all(
                None,
                "PK = :pk",
                &[],
                vec![(":pk", s(entitlement_pk(tenant.as_str(), id.as_str())))],
            )
            .await?;
        let mut entitlement = None;
        let mut grants = Vec::new();
        let mut usage = Vec::new();
        for item in &items {
            match Reader(item).opt_s("type") {
                Some("entitlement") => entitlement = Some(entitlement_from(item)?),
                Some("grant") => grants.push(grant_from(item)?),
                Some("usage") => usage.push(usage_from(item)?),
                _ => {}
            }
        }
        Ok(entitlement.map(|e| (e, grants, usage)))
    }

    async fn get_usage(
        &self,
        tenant: &TenantId,
        entitlement: &EntitlementId,
        event_id: &str,
    ) -> Result<Option<UsageRecord>, StoreError> {
        self.get(
            entitlement_pk(tenant.as_str(), entitlement.as_str()),
            &usage_sk(event_id),
        )
        .await?
        .as_ref()
        .map(usage_from)
        .transpose()
    }

    async fn write_usage(
        &self,
        record: &UsageRecord,
        delta: CounterDelta,
        grants: &[(Grant, u64)],
        log: Option<&LogAppend>,
    ) -> Result<UsageWrite, StoreError> {
        let mut items = vec![
            put(&self.table, usage_item(record), "attribute_not_exists(PK)")?,
            counters_update(&self.table, record, delta, true, log, Some(record.recorded_at))?,
        ];
        for (g, read) in grants {
            items.push(versioned_grant_put(&self.table, g, *read)?);
        }
        if record.status == UsageStatus::Pending {
            items.push(hold_put(&self.table, record)?);
        }
        if let Some(log) = log {
            items.extend(append_items(
                &self.table,
                &record.tenant,
                &record.entitlement_id,
                log,
                record.rollover,
            )?);
        }
        let failed = match self.transact(items).await {
            Ok(Transacted::Committed) => return Ok(UsageWrite::Written),
            Ok(Transacted::ConditionsFailed(failed)) => failed,
            // Still losing races after every retry: the caller reloads and tries again.
            Err(StoreError::Contention) => return Ok(UsageWrite::Stale),
            Err(e) => return Err(e),
        };
        if let Some(old) = failed.old(0) {
            let pk = entitlement_pk(record.tenant.as_str(), record.entitlement_id.as_str());
            let old = self
                .as_it_was(old, pk, &usage_sk(&record.event_id), "usage record vanished")
                .await?;
            return Ok(UsageWrite::Exists(usage_from(&old)?));
        }
        if let Some(old) = failed.old(1) {
            // The entitlement's condition: it is gone or not active, or (still active) its log
            // moved since it was read, or a batch is being applied on it.
            let active = old.is_some_and(|e| Reader(e).opt_s("status") == Some(EntitlementStatus::Active.as_str()));
            if !active {
                return Ok(UsageWrite::EntitlementUnavailable);
            }
        }
        Ok(UsageWrite::Stale)
    }

    async fn settle_usage(
        &self,
        record: &UsageRecord,
        delta: CounterDelta,
        grants: &[(Grant, u64)],
        log: Option<&LogAppend>,
    ) -> Result<bool, StoreError> {
        let record_put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(usage_item(record)))
            .condition_expression("#st = :pending")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":pending", s(UsageStatus::Pending.as_str()))
            .build()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut items = vec![
            TransactWriteItem::builder().put(record_put).build(),
            counters_update(&self.table, record, delta, false, log, None)?,
            hold_delete(&self.table, record)?,
        ];
        for (g, read) in grants {
            items.push(versioned_grant_put(&self.table, g, *read)?);
        }
        if let Some(log) = log {
            items.extend(append_items(
                &self.table,
                &record.tenant,
                &record.entitlement_id,
                log,
                record.rollover,
            )?);
        }
        self.transact_versioned(items).await
    }
}
