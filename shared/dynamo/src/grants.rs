//! [`GrantStore`] on DynamoDB: Grants and idempotency claims.

use crate::prelude::*;

// ---- grants ---------------------------------------------------------------------------------

pub(crate) fn grant_item(g: &Grant) -> Item {
    debug_assert!(g.holds_invariants(), "writing grant {} that breaks its invariant", g.id);
    let t = g.tenant.as_str();
    let mut item: Item = HashMap::from([
        (PK.to_owned(), s(entitlement_pk(t, g.entitlement_id.as_str()))),
        (SK.to_owned(), s(grant_sk(g.id.as_str()))),
        ("GSI1PK".to_owned(), s(tenant_grants(t))),
        ("GSI1SK".to_owned(), s(g.id.as_str())),
        ("GSI2PK".to_owned(), s(customer_key(t, &g.customer_id))),
        ("GSI2SK".to_owned(), s(format!("G#{}", g.id))),
        ("type".to_owned(), s("grant")),
        ("id".to_owned(), s(g.id.as_str())),
        ("tenant".to_owned(), s(t)),
        ("entitlement_id".to_owned(), s(g.entitlement_id.as_str())),
        ("customer_id".to_owned(), s(&g.customer_id)),
        ("amount".to_owned(), n(g.amount.value())),
        ("remaining".to_owned(), n(g.remaining)),
        ("effective_at".to_owned(), ts(g.effective_at)),
        ("created_at".to_owned(), ts(g.created_at)),
    ]);
    let mut opt = |k: &str, v: Option<AttributeValue>| {
        if let Some(v) = v {
            item.insert(k.to_owned(), v);
        }
    };
    opt("expires_at", g.expires_at.map(ts));
    opt("voided_at", g.voided_at.map(ts));
    opt("priority", g.priority.map(|p| n(p.value())));
    opt("reset_max_rollover", g.reset_max_rollover.map(|v| n(v.value())));
    opt("reset_min_rollover", g.reset_min_rollover.map(|v| n(v.value())));
    opt("recurrence_period", g.recurrence_period.clone().map(s));
    opt("idempotency_key", g.idempotency_key.clone().map(s));
    opt("reserved", (!g.reserved.is_zero()).then(|| n(g.reserved)));
    opt("last_used_at", g.last_used_at.map(ts));
    opt("gv", (g.version > 0).then(|| AttributeValue::N(g.version.to_string())));
    opt("credit_type_id", g.credit_type_id.clone().map(s));
    let d = &g.details;
    opt("name", d.name.clone().map(s));
    opt("reason", d.reason.clone().map(s));
    opt("credit_grant_type", d.credit_grant_type.clone().map(s));
    opt(
        "custom_fields",
        (!d.custom_fields.is_empty()).then(|| map_ss(&d.custom_fields)),
    );
    opt("paid_amount", d.paid_amount.map(n));
    opt("paid_credit_type_id", d.paid_credit_type_id.clone().map(s));
    opt(
        "product_ids",
        (!d.product_ids.is_empty()).then(|| AttributeValue::L(d.product_ids.iter().map(s).collect())),
    );
    opt("uniqueness_key", d.uniqueness_key.clone().map(s));
    opt("invoice_id", d.invoice_id.clone().map(s));
    item
}

/// A stored grant as it was written. A literal rather than [`Grant::new`]: that builds a grant
/// about to be created (new id, nothing consumed), while this restores every stored-only field
/// (id, `remaining`, `reserved`, `version`, `voided_at`, `last_used_at`) as it was.
pub(crate) fn grant_from(item: &Item) -> Result<Grant, StoreError> {
    let r = Reader(item);
    let grant = Grant {
        id: GrantId::parse(r.s("id")?).map_err(corrupt("grant id"))?,
        tenant: TenantId::parse(r.s("tenant")?).map_err(corrupt("tenant"))?,
        entitlement_id: EntitlementId::parse(r.s("entitlement_id")?).map_err(corrupt("entitlement id"))?,
        customer_id: r.s("customer_id")?.to_owned(),
        amount: CreditAmount::new(r.dec("amount")?).map_err(corrupt("amount"))?,
        remaining: r.dec("remaining")?,
        effective_at: r.ts("effective_at")?,
        expires_at: r.opt_ts("expires_at")?,
        voided_at: r.opt_ts("voided_at")?,
        created_at: r.ts("created_at")?,
        priority: r
            .opt_dec("priority")?
            .map(Priority::new)
            .transpose()
            .map_err(corrupt("priority"))?,
        reset_max_rollover: r
            .opt_dec("reset_max_rollover")?
            .map(NonNegative::new)
            .transpose()
            .map_err(corrupt("rollover"))?,
        reset_min_rollover: r
            .opt_dec("reset_min_rollover")?
            .map(NonNegative::new)
            .transpose()
            .map_err(corrupt("rollover"))?,
        recurrence_period: r.opt_s("recurrence_period").map(str::to_owned),
        idempotency_key: r.opt_s("idempotency_key").map(str::to_owned),
        reserved: r.opt_dec("reserved")?.unwrap_or_default(),
        last_used_at: r.opt_ts("last_used_at")?,
        version: r.version("gv")?,
        credit_type_id: r.opt_s("credit_type_id").map(str::to_owned),
        details: GrantDetails {
            name: r.opt_s("name").map(str::to_owned),
            reason: r.opt_s("reason").map(str::to_owned),
            credit_grant_type: r.opt_s("credit_grant_type").map(str::to_owned),
            custom_fields: r.map_ss("custom_fields"),
            paid_amount: r.opt_dec("paid_amount")?,
            paid_credit_type_id: r.opt_s("paid_credit_type_id").map(str::to_owned),
            product_ids: r.list_s("product_ids"),
            uniqueness_key: r.opt_s("uniqueness_key").map(str::to_owned),
            invoice_id: r.opt_s("invoice_id").map(str::to_owned),
        },
    };
    // Every write keeps it; a stored grant that breaks it was written by something else.
    debug_assert!(
        grant.holds_invariants(),
        "stored grant {} breaks its invariant",
        grant.id
    );
    Ok(grant)
}

pub(crate) fn claim_item(pk: String, c: &Claim) -> Item {
    HashMap::from([
        (PK.to_owned(), s(pk)),
        (SK.to_owned(), s(claim_sk(&c.scope, &c.key))),
        ("type".to_owned(), s("claim")),
        ("scope".to_owned(), s(&c.scope)),
        ("key".to_owned(), s(&c.key)),
        ("object_id".to_owned(), s(&c.object_id)),
        ("fingerprint".to_owned(), map_ss(&c.fingerprint)),
    ])
}

pub(crate) fn claim_from(item: &Item) -> Result<Claim, StoreError> {
    let r = Reader(item);
    Ok(Claim {
        scope: r.s("scope")?.to_owned(),
        key: r.s("key")?.to_owned(),
        object_id: r.s("object_id")?.to_owned(),
        fingerprint: r.map_ss("fingerprint"),
    })
}

/// A grant replaced only at the version it was read at.
pub(crate) fn versioned_grant_put(
    table: &str,
    grant: &Grant,
    read_version: u64,
) -> Result<TransactWriteItem, StoreError> {
    let mut put = Put::builder().table_name(table).set_item(Some(grant_item(grant)));
    put = if read_version == 0 {
        put.condition_expression("attribute_exists(PK) AND attribute_not_exists(gv)")
    } else {
        put.condition_expression("gv = :gv")
            .expression_attribute_values(":gv", AttributeValue::N(read_version.to_string()))
    };
    Ok(TransactWriteItem::builder()
        .put(put.build().map_err(|e| StoreError::Corrupt(e.to_string()))?)
        .build())
}

/// Version races a void may lose (to ledger writes on the grant) before giving up.
const VOID_RETRIES: usize = 8;

#[async_trait]
impl GrantStore for DynamoStore {
    async fn insert_grant(
        &self,
        grant: &Grant,
        claim: Option<&Claim>,
        period_start: Option<Timestamp>,
    ) -> Result<InsertOutcome, StoreError> {
        let pk = entitlement_pk(grant.tenant.as_str(), grant.entitlement_id.as_str());
        self.insert_claimed(
            pk,
            claim,
            vec![
                put(&self.table, grant_item(grant), "attribute_not_exists(PK)")?,
                message_put(&self.table, &webhook_messages::grant_created(grant))?,
            ],
            period_start,
        )
        .await
    }

    async fn find_grant(&self, tenant: &TenantId, id: &GrantId) -> Result<Option<Grant>, StoreError> {
        let items = self
            .query_all(
                Some(GSI1),
                "GSI1PK = :pk AND GSI1SK = :id",
                &[],
                vec![(":pk", s(tenant_grants(tenant.as_str()))), (":id", s(id.as_str()))],
            )
            .await?;
        items.first().map(grant_from).transpose()
    }

    async fn grants_after(
        &self,
        tenant: &TenantId,
        customer_id: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Grant>, bool), StoreError> {
        let t = tenant.as_str();
        let mut q = self
            .client()
            .query()
            .table_name(&self.table)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX));
        q = match (customer_id, after) {
            (None, None) => q
                .index_name(GSI1)
                .key_condition_expression("GSI1PK = :pk")
                .expression_attribute_values(":pk", s(tenant_grants(t))),
            (None, Some(a)) => q
                .index_name(GSI1)
                .key_condition_expression("GSI1PK = :pk AND GSI1SK > :after")
                .expression_attribute_values(":pk", s(tenant_grants(t)))
                .expression_attribute_values(":after", s(a)),
            // Grant sort keys are `G#<id>`; ids use characters below `~`.
            (Some(c), after) => q
                .index_name(GSI2)
                .key_condition_expression("GSI2PK = :pk AND GSI2SK BETWEEN :lo AND :hi")
                .expression_attribute_values(":pk", s(customer_key(t, c)))
                .expression_attribute_values(":lo", s(format!("G#{}", after.unwrap_or_default())))
                .expression_attribute_values(":hi", s("G#~")),
        };
        let out = q.send().await.map_err(unavailable)?;
        let exhausted = out.last_evaluated_key.as_ref().is_none_or(|k| k.is_empty());
        let grants = out
            .items
            .unwrap_or_default()
            .iter()
            .map(grant_from)
            .filter(|g| !matches!((g, after), (Ok(g), Some(a)) if g.id.as_str() == a))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((grants, exhausted))
    }

    async fn edit_grant(&self, tenant: &TenantId, edit: &GrantEdit) -> Result<EditOutcome, StoreError> {
        let mut sets = Vec::new();
        let mut update = self
            .client()
            .update_item()
            .table_name(&self.table)
            .key(PK, s(entitlement_pk(tenant.as_str(), edit.entitlement_id.as_str())))
            .key(SK, s(grant_sk(edit.id.as_str())))
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":one", AttributeValue::N("1".to_owned()))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if let Some(name) = &edit.name {
            sets.push("#nm = :nm");
            update = update
                .expression_attribute_names("#nm", "name")
                .expression_attribute_values(":nm", s(name));
        }
        if let Some(e) = edit.expires_at {
            sets.push("expires_at = :ex");
            // Usage already drew on the grant up to last_used_at: the expiry stays after it.
            update = update.expression_attribute_values(":ex", ts(e)).condition_expression(
                "attribute_exists(PK) AND (attribute_not_exists(last_used_at) OR last_used_at < :ex)",
            );
        }
        if let Some(t) = &edit.credit_grant_type {
            sets.push("credit_grant_type = :cgt");
            update = update.expression_attribute_values(":cgt", s(t));
        }
        let expression = if sets.is_empty() {
            "ADD gv :one".to_owned()
        } else {
            format!("SET {} ADD gv :one", sets.join(", "))
        };
        match update.update_expression(expression).send().await {
            Ok(out) => match out.attributes.as_ref().map(grant_from).transpose()? {
                Some(g) => Ok(EditOutcome::Edited(Box::new(g))),
                None => Ok(EditOutcome::Missing),
            },
            Err(SdkError::ServiceError(ctx)) => match ctx.into_err() {
                UpdateItemError::ConditionalCheckFailedException(c) => {
                    match c.item.as_ref().map(grant_from).transpose()? {
                        Some(g) => Ok(g
                            .last_used_at
                            .map_or(EditOutcome::Missing, EditOutcome::UsedAfterExpiry)),
                        None => Ok(EditOutcome::Missing),
                    }
                }
                other => Err(service_failure(other)),
            },
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn release_claim(
        &self,
        tenant: &TenantId,
        entitlement: &EntitlementId,
        scope: &str,
        key: &str,
    ) -> Result<(), StoreError> {
        self.client()
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(entitlement_pk(tenant.as_str(), entitlement.as_str())))
            .key(SK, s(claim_sk(scope, key)))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn get_grant(
        &self,
        tenant: &TenantId,
        entitlement: &EntitlementId,
        id: &GrantId,
    ) -> Result<Option<Grant>, StoreError> {
        self.get(
            entitlement_pk(tenant.as_str(), entitlement.as_str()),
            &grant_sk(id.as_str()),
        )
        .await?
        .as_ref()
        .map(grant_from)
        .transpose()
    }

    async fn list_grants(&self, tenant: &TenantId, entitlement: &EntitlementId) -> Result<Vec<Grant>, StoreError> {
        let items = self
            .query_all(
                None,
                "PK = :pk AND begins_with(SK, :g)",
                &[],
                vec![
                    (":pk", s(entitlement_pk(tenant.as_str(), entitlement.as_str()))),
                    (":g", s(GRANT_SK_PREFIX)),
                ],
            )
            .await?;
        items.iter().map(grant_from).collect()
    }

    async fn void_grant(
        &self,
        tenant: &TenantId,
        entitlement: &EntitlementId,
        id: &GrantId,
        at: Timestamp,
    ) -> Result<Option<Grant>, StoreError> {
        // The grant is read, then replaced at the version read together with its
        // `grant.voided.v0` message (so the message carries what was left of it).
        let pk = entitlement_pk(tenant.as_str(), entitlement.as_str());
        for _ in 0..VOID_RETRIES {
            let Some(item) = self.get(pk.clone(), &grant_sk(id.as_str())).await? else {
                return Ok(None);
            };
            let grant = grant_from(&item)?;
            if grant.voided_at.is_some() {
                return Ok(Some(grant));
            }
            let mut voided = grant.clone();
            voided.voided_at = Some(at);
            voided.version += 1;
            let items = vec![
                versioned_grant_put(&self.table, &voided, grant.version)?,
                message_put(&self.table, &webhook_messages::grant_voided(&voided))?,
            ];
            if self.transact_versioned(items).await? {
                return Ok(Some(voided));
            }
        }
        Err(StoreError::Contention)
    }
}
