//! [`PeriodStore`] on DynamoDB: The period-reset schedule (GSI5) and resets.

use crate::prelude::*;

#[async_trait]
impl PeriodStore for DynamoStore {
    async fn entitlements_due_for_reset(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<(TenantId, EntitlementId)>, StoreError> {
        let out = self
            .client()
            .query()
            .table_name(&self.table)
            .index_name(GSI5)
            .key_condition_expression("GSI5PK = :pk AND GSI5SK < :hi")
            .expression_attribute_values(":pk", s(PERIOD_ENDS))
            .expression_attribute_values(":hi", s(format!("{}#~", now.to_storage())))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(unavailable)?;
        out.items
            .unwrap_or_default()
            .iter()
            .map(|i| {
                let r = Reader(i);
                Ok((
                    TenantId::parse(r.s("tenant")?).map_err(corrupt("tenant"))?,
                    EntitlementId::parse(r.s("id")?).map_err(corrupt("entitlement id"))?,
                ))
            })
            .collect()
    }

    async fn reset_period(&self, entitlement: &Entitlement, reset: &Reset) -> Result<bool, StoreError> {
        let t = entitlement.tenant.as_str();
        let mut set: Vec<String> = [
            "current_period_start = :s",
            "current_period_end = :e",
            "usage_in_period = :z",
            "overage = :z",
            "GSI5SK = :k",
        ]
        .map(str::to_owned)
        .into();
        let mut condition = "current_period_end = :old AND #st = :active AND attribute_not_exists(applying)".to_owned();
        let update = with_log_head(Update::builder(), &mut set, &mut condition, reset.log.as_ref());
        let update = update
            .table_name(&self.table)
            .key(PK, s(entitlement_pk(t, entitlement.id.as_str())))
            .key(SK, s(ENTITLEMENT_SK))
            .update_expression(format!("SET {}", set.join(", ")))
            .condition_expression(condition)
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":s", ts(reset.start))
            .expression_attribute_values(":e", ts(reset.end))
            .expression_attribute_values(":z", n(Decimal::ZERO))
            .expression_attribute_values(
                ":k",
                s(period_end_sk(&reset.end.to_storage(), t, entitlement.id.as_str())),
            )
            .expression_attribute_values(":old", ts(reset.old_end))
            .expression_attribute_values(":active", s(EntitlementStatus::Active.as_str()))
            .build()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut items = vec![TransactWriteItem::builder().update(update).build()];
        for (g, read) in &reset.grants {
            items.push(versioned_grant_put(&self.table, g, *read)?);
        }
        if let Some(record) = &reset.record {
            items.push(put(&self.table, usage_item(record), "attribute_not_exists(PK)")?);
            if let Some(log) = &reset.log {
                items.extend(append_items(
                    &self.table,
                    &record.tenant,
                    &record.entitlement_id,
                    log,
                    record.rollover,
                )?);
            }
        }
        self.transact_versioned(items).await
    }

    async fn block_period_reset(&self, tenant: &TenantId, id: &EntitlementId, reason: &str) -> Result<(), StoreError> {
        let result = self
            .update_at(entitlement_pk(tenant.as_str(), id.as_str()), ENTITLEMENT_SK)
            .condition_expression("attribute_exists(PK)")
            .update_expression("REMOVE GSI5PK, GSI5SK SET reset_blocked = :why")
            .expression_attribute_values(":why", s(reason.chars().take(500).collect::<String>()))
            .send()
            .await;
        unless_condition_failed(result)
    }
}
