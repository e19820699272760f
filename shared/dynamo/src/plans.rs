//! [`PlanStore`] on DynamoDB: Credit plans and their progress per entitlement.

use crate::prelude::*;

// ---- credit plans ---------------------------------------------------------------------------

pub(crate) fn credit_plan_item(p: &CreditPlan) -> Item {
    let t = p.tenant.as_str();
    let mut item: Item = HashMap::from([
        (PK.to_owned(), s(credit_plan_pk(t, &p.id))),
        (SK.to_owned(), s(CREDIT_PLAN_SK)),
        ("GSI1PK".to_owned(), s(tenant_credit_plans(t))),
        ("GSI1SK".to_owned(), s(&p.id)),
        ("type".to_owned(), s("credit_plan")),
        ("id".to_owned(), s(&p.id)),
        ("tenant".to_owned(), s(t)),
        ("name".to_owned(), s(&p.name)),
        ("scope".to_owned(), s(p.scope.as_str())),
        ("scope_id".to_owned(), s(&p.scope_id)),
        ("credits".to_owned(), n(p.credits.value())),
        ("metadata".to_owned(), map_ss(&p.metadata)),
        ("status".to_owned(), s(p.status.as_str())),
        ("start_date".to_owned(), ts(p.start_date)),
        ("created_at".to_owned(), ts(p.created_at)),
        ("updated_at".to_owned(), ts(p.updated_at)),
        ("version".to_owned(), AttributeValue::N(p.version.to_string())),
    ]);
    if p.status == PlanStatus::Published {
        item.insert("GSI2PK".to_owned(), s(ACTIVE_CREDIT_PLANS));
        item.insert("GSI2SK".to_owned(), s(format!("{t}#{}", p.id)));
    }
    match p.recurrence {
        Recurrence::Once => {}
        Recurrence::Every(period, count) => {
            item.insert("period".to_owned(), s(period.as_str()));
            item.insert("period_count".to_owned(), AttributeValue::N(count.to_string()));
        }
    }
    match p.expiration {
        Expiration::Never => {}
        Expiration::BillingCycle => {
            item.insert("expiration".to_owned(), s(ExpirationType::BillingCycle.as_str()));
        }
        Expiration::After(d, unit) => {
            item.insert("expiration".to_owned(), s(ExpirationType::Duration.as_str()));
            item.insert("expiration_duration".to_owned(), AttributeValue::N(d.to_string()));
            item.insert("expiration_unit".to_owned(), s(unit.as_str()));
        }
    }
    let mut opt = |k: &str, v: Option<AttributeValue>| {
        if let Some(v) = v {
            item.insert(k.to_owned(), v);
        }
    };
    opt("currency", p.currency.clone().map(s));
    opt("priority", p.priority.map(|v| AttributeValue::N(v.to_string())));
    opt("end_date", p.end_date.map(ts));
    opt("conversion_rate", p.conversion_rate.clone().map(s));
    item
}

pub(crate) fn credit_plan_from(item: &Item) -> Result<CreditPlan, StoreError> {
    let r = Reader(item);
    let bad = |what: &str| StoreError::Corrupt(format!("credit plan {what}"));
    let small = |k: &str| -> Result<u32, StoreError> { u32::try_from(r.dec(k)?).map_err(|_| bad(k)) };
    let recurrence = match r.opt_s("period") {
        None => Recurrence::Once,
        Some(p) => Recurrence::Every(Period::parse(p).ok_or_else(|| bad("period"))?, small("period_count")?),
    };
    let expiration = match r.opt_s("expiration").map(ExpirationType::parse) {
        None => Expiration::Never,
        Some(Some(ExpirationType::Never)) => Expiration::Never,
        Some(Some(ExpirationType::BillingCycle)) => Expiration::BillingCycle,
        Some(Some(ExpirationType::Duration)) => Expiration::After(
            small("expiration_duration")?,
            DurationUnit::parse(r.s("expiration_unit")?).ok_or_else(|| bad("unit"))?,
        ),
        Some(None) => return Err(bad("expiration")),
    };
    Ok(CreditPlan {
        id: r.s("id")?.to_owned(),
        tenant: TenantId::parse(r.s("tenant")?).map_err(corrupt("tenant"))?,
        name: r.s("name")?.to_owned(),
        scope: PlanScope::parse(r.s("scope")?).ok_or_else(|| bad("scope"))?,
        scope_id: r.s("scope_id")?.to_owned(),
        credits: CreditAmount::new(r.dec("credits")?).map_err(corrupt("credits"))?,
        currency: r.opt_s("currency").map(str::to_owned),
        recurrence,
        expiration,
        priority: r
            .opt_dec("priority")?
            .map(|d| i64::try_from(d).map_err(|_| bad("priority")))
            .transpose()?,
        metadata: r.map_ss("metadata"),
        status: PlanStatus::parse(r.s("status")?).ok_or_else(|| bad("status"))?,
        start_date: r.ts("start_date")?,
        end_date: r.opt_ts("end_date")?,
        conversion_rate: r.opt_s("conversion_rate").map(str::to_owned),
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
        version: r.version("version")?,
    })
}

#[async_trait]
impl PlanStore for DynamoStore {
    async fn insert_credit_plan(&self, plan: &CreditPlan, claim: Option<&Claim>) -> Result<InsertOutcome, StoreError> {
        self.insert_tenant_claimed(&plan.tenant, credit_plan_item(plan), claim)
            .await
    }

    async fn get_credit_plan(&self, tenant: &TenantId, id: &str) -> Result<Option<CreditPlan>, StoreError> {
        self.get(credit_plan_pk(tenant.as_str(), id), CREDIT_PLAN_SK)
            .await?
            .as_ref()
            .map(credit_plan_from)
            .transpose()
    }

    async fn list_credit_plans(&self, tenant: &TenantId) -> Result<Vec<CreditPlan>, StoreError> {
        let items = self
            .query_all(
                Some(GSI1),
                "GSI1PK = :pk",
                &[],
                vec![(":pk", s(tenant_credit_plans(tenant.as_str())))],
            )
            .await?;
        items.iter().map(credit_plan_from).collect()
    }

    async fn replace_credit_plan(&self, plan: &CreditPlan, expected_version: u64) -> Result<bool, StoreError> {
        self.put_at_version(credit_plan_item(plan), expected_version).await
    }

    async fn active_credit_plans(&self) -> Result<Vec<CreditPlan>, StoreError> {
        let items = self
            .query_all(Some(GSI2), "GSI2PK = :pk", &[], vec![(":pk", s(ACTIVE_CREDIT_PLANS))])
            .await?;
        items.iter().map(credit_plan_from).collect()
    }

    async fn entitlements_in_scope(
        &self,
        tenant: &TenantId,
        scope: PlanScope,
        scope_id: &str,
    ) -> Result<Vec<Entitlement>, StoreError> {
        let (index, key) = match scope {
            PlanScope::Subscription => ("GSI3", subscription_key(tenant.as_str(), scope_id)),
            PlanScope::Plan => ("GSI4", plan_key(tenant.as_str(), scope_id)),
        };
        let condition = format!("{index}PK = :pk");
        let items = self
            .query_all(Some(index), &condition, &[], vec![(":pk", s(key))])
            .await?;
        items.iter().map(entitlement_from).collect()
    }

    async fn plan_progress(
        &self,
        tenant: &TenantId,
        entitlement: &EntitlementId,
        plan_id: &str,
    ) -> Result<u64, StoreError> {
        match self
            .get(
                entitlement_pk(tenant.as_str(), entitlement.as_str()),
                &plan_progress_sk(plan_id),
            )
            .await?
        {
            None => Ok(0),
            Some(item) => Reader(&item).version("next"),
        }
    }

    async fn apply_plan_period(
        &self,
        grant: &Grant,
        plan_id: &str,
        expected: u64,
        next: u64,
    ) -> Result<PlanApply, StoreError> {
        let pk = entitlement_pk(grant.tenant.as_str(), grant.entitlement_id.as_str());
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .key(PK, s(pk.clone()))
            .key(SK, s(ENTITLEMENT_SK))
            .condition_expression("#st = :active")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":active", s(EntitlementStatus::Active.as_str()))
            .build()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let progress_item: Item = HashMap::from([
            (PK.to_owned(), s(pk)),
            (SK.to_owned(), s(plan_progress_sk(plan_id))),
            ("type".to_owned(), s("plan_progress")),
            ("next".to_owned(), AttributeValue::N(next.to_string())),
        ]);
        let mut progress = Put::builder().table_name(&self.table).set_item(Some(progress_item));
        progress = if expected == 0 {
            progress.condition_expression("attribute_not_exists(PK)")
        } else {
            progress
                .condition_expression("#next = :e")
                .expression_attribute_names("#next", "next")
                .expression_attribute_values(":e", AttributeValue::N(expected.to_string()))
        };
        let items = vec![
            TransactWriteItem::builder().condition_check(check).build(),
            TransactWriteItem::builder()
                .put(progress.build().map_err(|e| StoreError::Corrupt(e.to_string()))?)
                .build(),
            put(&self.table, grant_item(grant), "attribute_not_exists(PK)")?,
            message_put(&self.table, &webhook_messages::grant_created(grant))?,
        ];
        Ok(match self.transact(items).await? {
            Transacted::Committed => PlanApply::Applied,
            Transacted::ConditionsFailed(failed) if failed.at(0) => PlanApply::EntitlementInactive,
            Transacted::ConditionsFailed(_) => PlanApply::Moved,
        })
    }
}
