//! [`EntitlementStore`] on DynamoDB: Entitlements (the partition's head item).

use crate::prelude::*;

// ---- entitlements ---------------------------------------------------------------------------

pub(crate) fn entitlement_item(e: &Entitlement) -> Item {
    debug_assert!(e.counters_hold(), "writing entitlement {} with negative counters", e.id);
    let t = e.tenant.as_str();
    let mut item: Item = HashMap::from([
        (PK.to_owned(), s(entitlement_pk(t, e.id.as_str()))),
        (SK.to_owned(), s(ENTITLEMENT_SK)),
        ("GSI1PK".to_owned(), s(tenant_entitlements(t))),
        ("GSI1SK".to_owned(), s(e.id.as_str())),
        ("GSI2PK".to_owned(), s(customer_key(t, &e.customer_id))),
        ("GSI2SK".to_owned(), s(format!("E#{}", e.id))),
        ("type".to_owned(), s("entitlement")),
        ("id".to_owned(), s(e.id.as_str())),
        ("tenant".to_owned(), s(t)),
        ("customer_id".to_owned(), s(&e.customer_id)),
        ("feature_id".to_owned(), s(&e.feature_id)),
        ("feature_key".to_owned(), s(&e.feature_key)),
        ("product_id".to_owned(), s(&e.product_id)),
        ("status".to_owned(), s(e.status.as_str())),
        ("active_from".to_owned(), ts(e.active_from)),
        ("metadata".to_owned(), map_ss(&e.metadata)),
        ("is_soft_limit".to_owned(), AttributeValue::Bool(e.is_soft_limit)),
        ("current_period_start".to_owned(), ts(e.current_period_start)),
        ("current_period_end".to_owned(), ts(e.current_period_end)),
        ("period_anchor".to_owned(), ts(e.period_anchor)),
        ("usage_in_period".to_owned(), n(e.usage_in_period)),
        ("overage".to_owned(), n(e.overage)),
        ("created_at".to_owned(), ts(e.created_at)),
    ]);
    if let Some(sub) = &e.subscription_id {
        item.insert("subscription_id".to_owned(), s(sub));
        item.insert("GSI3PK".to_owned(), s(subscription_key(t, sub)));
        item.insert("GSI3SK".to_owned(), s(e.id.as_str()));
    }
    if let Some(plan) = &e.plan_id {
        item.insert("plan_id".to_owned(), s(plan));
        item.insert("GSI4PK".to_owned(), s(plan_key(t, plan)));
        item.insert("GSI4SK".to_owned(), s(e.id.as_str()));
    }
    if let Some(to) = e.active_to {
        item.insert("active_to".to_owned(), ts(to));
    }
    if let Some(p) = &e.pricing_unit_id {
        item.insert("pricing_unit_id".to_owned(), s(p));
    }
    if let Some(m) = e.period_months {
        item.insert("period_months".to_owned(), AttributeValue::N(m.to_string()));
    }
    if let Some(log) = &e.log {
        item.extend(log_head_attributes(log));
    }
    if e.status == EntitlementStatus::Active {
        // Sparse index of active entitlements by period end: what the period-reset run walks.
        item.insert("GSI5PK".to_owned(), s(PERIOD_ENDS));
        item.insert(
            "GSI5SK".to_owned(),
            s(period_end_sk(&e.current_period_end.to_storage(), t, e.id.as_str())),
        );
    }
    item
}

pub(crate) fn entitlement_from(item: &Item) -> Result<Entitlement, StoreError> {
    let r = Reader(item);
    let entitlement = Entitlement {
        id: EntitlementId::parse(r.s("id")?).map_err(corrupt("entitlement id"))?,
        tenant: TenantId::parse(r.s("tenant")?).map_err(corrupt("tenant"))?,
        customer_id: r.s("customer_id")?.to_owned(),
        feature_id: r.s("feature_id")?.to_owned(),
        feature_key: r.s("feature_key")?.to_owned(),
        product_id: r.s("product_id")?.to_owned(),
        subscription_id: r.opt_s("subscription_id").map(str::to_owned),
        plan_id: r.opt_s("plan_id").map(str::to_owned),
        status: EntitlementStatus::parse(r.s("status")?)
            .ok_or_else(|| StoreError::Corrupt("entitlement status".to_owned()))?,
        active_from: r.ts("active_from")?,
        active_to: r.opt_ts("active_to")?,
        metadata: r.map_ss("metadata"),
        is_soft_limit: r.bool("is_soft_limit"),
        pricing_unit_id: r.opt_s("pricing_unit_id").map(str::to_owned),
        current_period_start: r.ts("current_period_start")?,
        current_period_end: r.ts("current_period_end")?,
        period_anchor: r
            .opt_ts("period_anchor")?
            .map_or_else(|| r.ts("current_period_start"), Ok)?,
        period_months: r
            .opt_dec("period_months")?
            .map(|d| u32::try_from(d).map_err(|_| StoreError::Corrupt("period_months".to_owned())))
            .transpose()?,
        usage_in_period: r.opt_dec("usage_in_period")?.unwrap_or_default(),
        overage: r.opt_dec("overage")?.unwrap_or_default(),
        created_at: r.ts("created_at")?,
        log: log_head_from(item)?,
        lease_until: r.opt_ts(LEASE_UNTIL)?,
        applying: r.opt_s(APPLYING).map(str::to_owned),
    };
    debug_assert!(
        entitlement.counters_hold(),
        "stored entitlement {} has negative counters",
        entitlement.id
    );
    Ok(entitlement)
}

#[async_trait]
impl EntitlementStore for DynamoStore {
    async fn put_entitlement(&self, entitlement: &Entitlement) -> Result<(), StoreError> {
        self.client()
            .put_item()
            .table_name(&self.table)
            .set_item(Some(entitlement_item(entitlement)))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn get_entitlement(&self, tenant: &TenantId, id: &EntitlementId) -> Result<Option<Entitlement>, StoreError> {
        self.get(entitlement_pk(tenant.as_str(), id.as_str()), ENTITLEMENT_SK)
            .await?
            .as_ref()
            .map(entitlement_from)
            .transpose()
    }

    async fn load_entitlement(
        &self,
        tenant: &TenantId,
        id: &EntitlementId,
    ) -> Result<Option<(Entitlement, Vec<Grant>)>, StoreError> {
        let items = self
            .query_all(
                None,
                "PK = :pk AND SK BETWEEN :lo AND :hi",
                &[],
                vec![
                    (":pk", s(entitlement_pk(tenant.as_str(), id.as_str()))),
                    (":lo", s(ENTITLEMENT_SK)),
                    (":hi", s(GRANT_SK_MAX)),
                ],
            )
            .await?;
        let mut entitlement = None;
        let mut grants = Vec::new();
        for item in &items {
            match Reader(item).opt_s("type") {
                Some("entitlement") => entitlement = Some(entitlement_from(item)?),
                Some("grant") => grants.push(grant_from(item)?),
                _ => {}
            }
        }
        Ok(entitlement.map(|e| (e, grants)))
    }

    async fn list_entitlements(
        &self,
        tenant: &TenantId,
        customer_id: Option<&str>,
    ) -> Result<Vec<Entitlement>, StoreError> {
        let items = match customer_id {
            Some(c) => {
                self.query_all(
                    Some(GSI2),
                    "GSI2PK = :pk AND begins_with(GSI2SK, :e)",
                    &[],
                    vec![(":pk", s(customer_key(tenant.as_str(), c))), (":e", s("E#"))],
                )
                .await?
            }
            None => {
                self.query_all(
                    Some(GSI1),
                    "GSI1PK = :pk",
                    &[],
                    vec![(":pk", s(tenant_entitlements(tenant.as_str())))],
                )
                .await?
            }
        };
        items.iter().map(entitlement_from).collect()
    }

    async fn set_entitlement_status(
        &self,
        tenant: &TenantId,
        id: &EntitlementId,
        status: EntitlementStatus,
        at: Timestamp,
    ) -> Result<Option<Entitlement>, StoreError> {
        let mut update = self
            .update_at(entitlement_pk(tenant.as_str(), id.as_str()), ENTITLEMENT_SK)
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":st", s(status.as_str()))
            .return_values(ReturnValue::AllNew);
        update = if status == EntitlementStatus::Active {
            update.update_expression("SET #st = :st REMOVE active_to")
        } else {
            update
                .update_expression("SET #st = :st, active_to = if_not_exists(active_to, :at) REMOVE GSI5PK, GSI5SK")
                .expression_attribute_values(":at", ts(at))
        };
        // A missing entitlement fails the condition: None.
        written(update.send().await)?
            .and_then(|out| out.attributes)
            .as_ref()
            .map(entitlement_from)
            .transpose()
    }
}

/// The entitlement's log head ([`LogHead`]) as attributes of its item.
pub(crate) fn log_head_attributes(h: &LogHead) -> Vec<(String, AttributeValue)> {
    let mut attrs = vec![
        (LOG_SEQ.to_owned(), AttributeValue::N(h.seq.to_string())),
        (
            LOG_CHECKPOINT_SEQ.to_owned(),
            AttributeValue::N(h.checkpoint_seq.to_string()),
        ),
        (LOG_OVERAGE.to_owned(), n(h.overage_total)),
        (LOG_LATE.to_owned(), AttributeValue::N(h.late_entries.to_string())),
    ];
    if let Some(at) = h.checkpoint_at {
        attrs.push((LOG_CHECKPOINT_AT.to_owned(), ts(at)));
    }
    if let Some(at) = h.latest_occurred {
        attrs.push((LOG_LATEST.to_owned(), ts(at)));
    }
    attrs
}

/// The log head, or None for an entitlement written before the log existed (no `log_seq`).
fn log_head_from(item: &Item) -> Result<Option<LogHead>, StoreError> {
    let r = Reader(item);
    if !item.contains_key(LOG_SEQ) {
        return Ok(None);
    }
    Ok(Some(LogHead {
        seq: r.version(LOG_SEQ)?,
        checkpoint_seq: r.version(LOG_CHECKPOINT_SEQ)?,
        checkpoint_at: r.opt_ts(LOG_CHECKPOINT_AT)?,
        overage_total: r.dec(LOG_OVERAGE)?,
        late_entries: r.version(LOG_LATE)?,
        latest_occurred: r.opt_ts(LOG_LATEST)?,
    }))
}
