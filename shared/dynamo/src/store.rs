//! [`Store`] on DynamoDB: one table, conditional writes and transactions for every invariant.
use crate::schema::*;
use async_trait::async_trait;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Put, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use grants_domain::capacity::{CapacityGrant, ExactPrice};
use grants_domain::credits::{CreditType, GrantEdit};
use grants_domain::ledger::{Deduction, UsageStatus};
use grants_domain::model::{ApiKeyRecord, Claim, Entitlement, EntitlementStatus, Grant, GrantDetails, Role};
use grants_domain::money::{Currency, Price};
use grants_domain::payments::PaymentSession;
use grants_domain::periods::Reset;
use grants_domain::plans::{
    CreditPlan, DurationUnit, Expiration, ExpirationType, Period, PlanScope, PlanStatus, Recurrence,
};
use grants_domain::ports::{EditOutcome, InsertOutcome, PlanApply, Store, StoreError, UsageWrite};
use grants_domain::purchases::{Invoice, InvoiceStatus};
use grants_domain::tenants::TenantSettings;
use grants_domain::usage::{CounterDelta, UsageRecord};
use grants_domain::{
    CapacityGrantId, CreditAmount, EntitlementId, GrantId, InvoiceId, NonNegative, Priority, SessionId, TenantId,
    Timestamp,
};
use rust_decimal::Decimal;
use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::time::Duration;

type Item = HashMap<String, AttributeValue>;

/// How many times a transaction that lost a race (TransactionConflict) is tried again.
const CONFLICT_RETRIES: u32 = 12;

#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
    /// The store for `table`, with a DynamoDB client of this SDK configuration.
    pub fn from_config(config: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self::new(Client::new(config), table)
    }
    pub fn client(&self) -> &Client {
        &self.client
    }
    pub fn table(&self) -> &str {
        &self.table
    }

    async fn query_all(
        &self,
        index: Option<&str>,
        key_condition: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(key_condition)
                .set_exclusive_start_key(start.take());
            q = match index {
                Some(i) => q.index_name(i),
                None => q.consistent_read(true),
            };
            for (k, v) in names {
                q = q.expression_attribute_names(*k, *v);
            }
            for (k, v) in &values {
                q = q.expression_attribute_values(*k, v.clone());
            }
            let out = q.send().await.map_err(unavailable)?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(items),
            }
        }
    }

    /// One transaction: the entitlement (partition `pk`) is active, the claim (if any) is new, and
    /// `objects` are written. Retries transaction conflicts; reports a failed condition as an outcome.
    async fn insert_claimed(
        &self,
        pk: String,
        claim: Option<&Claim>,
        objects: Vec<TransactWriteItem>,
        period_start: Option<Timestamp>,
    ) -> Result<InsertOutcome, StoreError> {
        let mut check = ConditionCheck::builder()
            .table_name(&self.table)
            .key(PK, s(pk.clone()))
            .key(SK, s(ENTITLEMENT_SK))
            .condition_expression("#st = :active")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":active", s(EntitlementStatus::Active.as_str()));
        if let Some(start) = period_start {
            check = check
                .condition_expression("#st = :active AND current_period_start = :start")
                .expression_attribute_values(":start", ts(start));
        }
        let check = check.build().map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut items = vec![TransactWriteItem::builder().condition_check(check).build()];
        if let Some(claim) = claim {
            items.push(put(
                &self.table,
                claim_item(pk.clone(), claim),
                "attribute_not_exists(PK)",
            )?);
        }
        items.extend(objects);
        for attempt in 0..CONFLICT_RETRIES {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(InsertOutcome::Inserted),
                Err(e) => e,
            };
            match cancellation(err)? {
                Cancelled::Conflict => conflict_pause(attempt).await,
                Cancelled::Conditions(failed) => {
                    // The claim decides first: a replay is answered even if the entitlement has
                    // since been cancelled.
                    if let (Some(claim), Some((_, old))) = (claim, failed.iter().find(|(i, _)| *i == 1)) {
                        let stored = match old {
                            Some(old) => old.clone(),
                            None => self
                                .get(pk, &claim_sk(&claim.scope, &claim.key))
                                .await?
                                .ok_or_else(|| StoreError::Corrupt("claim vanished".to_owned()))?,
                        };
                        return Ok(InsertOutcome::ClaimExists(claim_from(&stored)?));
                    }
                    if failed.iter().any(|(i, _)| *i == 0) {
                        return Ok(InsertOutcome::ParentUnavailable);
                    }
                    return Err(StoreError::Corrupt("id collision".to_owned()));
                }
            }
        }
        Err(StoreError::Contention)
    }

    /// Writes a new tenant-level object and, when given, the claim of its idempotency key (in the
    /// tenant's partition) in one transaction.
    async fn insert_tenant_claimed(
        &self,
        tenant: &TenantId,
        object: Item,
        claim: Option<&Claim>,
    ) -> Result<InsertOutcome, StoreError> {
        let pk = tenant_pk(tenant.as_str());
        let mut items = vec![put(&self.table, object, "attribute_not_exists(PK)")?];
        if let Some(c) = claim {
            items.push(put(&self.table, claim_item(pk.clone(), c), "attribute_not_exists(PK)")?);
        }
        for attempt in 0..CONFLICT_RETRIES {
            match self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await
            {
                Ok(_) => return Ok(InsertOutcome::Inserted),
                Err(e) => match cancellation(e)? {
                    Cancelled::Conflict => conflict_pause(attempt).await,
                    Cancelled::Conditions(failed) => {
                        let Some(c) = claim else {
                            return Err(StoreError::Corrupt("id collision".to_owned()));
                        };
                        let stored = match failed.into_iter().find(|(i, _)| *i == 1).and_then(|(_, old)| old) {
                            Some(old) => old,
                            None => self
                                .get(pk.clone(), &claim_sk(&c.scope, &c.key))
                                .await?
                                .ok_or_else(|| StoreError::Corrupt("id collision".to_owned()))?,
                        };
                        return Ok(InsertOutcome::ClaimExists(claim_from(&stored)?));
                    }
                },
            }
        }
        Err(StoreError::Contention)
    }

    /// Replaces an item if its stored `version` is still `expected`; false when it moved.
    async fn put_at_version(&self, item: Item, expected: u64) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", AttributeValue::N(expected.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(ctx))
                if matches!(ctx.err(), PutItemError::ConditionalCheckFailedException(_)) =>
            {
                Ok(false)
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Sets a timestamp attribute once (bumping the item's version counter): the item as it now
    /// is, unchanged when the attribute was already set; None when the item does not exist.
    async fn set_once(
        &self,
        pk: String,
        sk: &str,
        attribute: &str,
        version: &str,
        at: Timestamp,
    ) -> Result<Option<Item>, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(pk))
            .key(SK, s(sk))
            .condition_expression("attribute_exists(PK) AND attribute_not_exists(#at)")
            .update_expression("SET #at = :at ADD #v :one")
            .expression_attribute_names("#at", attribute)
            .expression_attribute_names("#v", version)
            .expression_attribute_values(":at", ts(at))
            .expression_attribute_values(":one", AttributeValue::N("1".to_owned()))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => Ok(out.attributes),
            Err(SdkError::ServiceError(ctx)) => match ctx.into_err() {
                // Already set: the item unchanged. Missing: no item comes back.
                UpdateItemError::ConditionalCheckFailedException(c) => Ok(c.item),
                other => Err(service_failure(other)),
            },
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Runs a transaction whose only conditions are version checks: true when written, false
    /// when a condition failed. Transaction conflicts are retried.
    async fn transact_versioned(&self, items: Vec<TransactWriteItem>) -> Result<bool, StoreError> {
        for attempt in 0..CONFLICT_RETRIES {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            match result {
                Ok(_) => return Ok(true),
                Err(e) => match cancellation(e)? {
                    Cancelled::Conflict => conflict_pause(attempt).await,
                    Cancelled::Conditions(_) => return Ok(false),
                },
            }
        }
        Err(StoreError::Contention)
    }

    /// An UpdateItem of the item at `pk`/`sk` (the caller adds its expressions).
    fn update_at(
        &self,
        pk: String,
        sk: &str,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(pk))
            .key(SK, s(sk))
    }

    async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(pk))
            .key(SK, s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out.item)
    }
}

/// A failed request: DynamoDB refusing the request's content (`ValidationException`: a key or
/// value over its limits) is [`StoreError::Rejected`], never reported as unavailable; anything
/// else (network, throttling past retries, 5xx) is [`StoreError::Unavailable`].
fn unavailable<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_dynamodb::error::ProvideErrorMetadata;
    if e.code() == Some("ValidationException") {
        return StoreError::Rejected(DisplayErrorContext(e).to_string());
    }
    StoreError::Unavailable(DisplayErrorContext(e).to_string())
}

/// An update whose condition failing means there is nothing to do.
fn unless_condition_failed<O, R: std::fmt::Debug>(
    result: Result<O, SdkError<UpdateItemError, R>>,
) -> Result<(), StoreError> {
    match result {
        Ok(_) => Ok(()),
        Err(SdkError::ServiceError(ctx))
            if matches!(ctx.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
        {
            Ok(())
        }
        Err(e) => Err(unavailable(e)),
    }
}

/// [`unavailable`] for an operation's own error type.
fn service_failure<E>(e: E) -> StoreError
where
    E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata + 'static,
{
    if e.code() == Some("ValidationException") {
        return StoreError::Rejected(DisplayErrorContext(e).to_string());
    }
    StoreError::Unavailable(DisplayErrorContext(e).to_string())
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
fn n(d: Decimal) -> AttributeValue {
    AttributeValue::N(d.to_string())
}
fn ts(t: Timestamp) -> AttributeValue {
    s(t.to_storage())
}
fn map_ss(m: &BTreeMap<String, String>) -> AttributeValue {
    AttributeValue::M(m.iter().map(|(k, v)| (k.clone(), s(v.clone()))).collect())
}

/// Reads typed attributes out of an item, turning anything unexpected into [`StoreError::Corrupt`].
struct Reader<'a>(&'a Item);

impl Reader<'_> {
    fn opt_s(&self, k: &str) -> Option<&str> {
        self.0.get(k).and_then(|v| v.as_s().ok()).map(String::as_str)
    }
    fn s(&self, k: &str) -> Result<&str, StoreError> {
        self.opt_s(k)
            .ok_or_else(|| StoreError::Corrupt(format!("missing string {k}")))
    }
    fn opt_dec(&self, k: &str) -> Result<Option<Decimal>, StoreError> {
        match self.0.get(k) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::N(v)) => Decimal::from_str(v)
                .map(Some)
                .map_err(|_| StoreError::Corrupt(format!("bad number {k}"))),
            Some(_) => Err(StoreError::Corrupt(format!("{k} is not a number"))),
        }
    }
    fn dec(&self, k: &str) -> Result<Decimal, StoreError> {
        self.opt_dec(k)?
            .ok_or_else(|| StoreError::Corrupt(format!("missing number {k}")))
    }
    fn opt_ts(&self, k: &str) -> Result<Option<Timestamp>, StoreError> {
        self.opt_s(k)
            .map(|v| Timestamp::parse(v).map_err(|_| StoreError::Corrupt(format!("bad time {k}"))))
            .transpose()
    }
    fn ts(&self, k: &str) -> Result<Timestamp, StoreError> {
        self.opt_ts(k)?
            .ok_or_else(|| StoreError::Corrupt(format!("missing time {k}")))
    }
    fn bool(&self, k: &str) -> bool {
        self.0.get(k).and_then(|v| v.as_bool().ok()).copied().unwrap_or(false)
    }
    /// A version counter; absent is 0.
    fn version(&self, k: &str) -> Result<u64, StoreError> {
        match self.opt_dec(k)? {
            None => Ok(0),
            Some(d) => u64::try_from(d).map_err(|_| StoreError::Corrupt(format!("bad version {k}"))),
        }
    }
    fn list_s(&self, k: &str) -> Vec<String> {
        self.0
            .get(k)
            .and_then(|v| v.as_l().ok())
            .map(|l| l.iter().filter_map(|v| v.as_s().ok().cloned()).collect())
            .unwrap_or_default()
    }
    fn map_ss(&self, k: &str) -> BTreeMap<String, String> {
        self.0
            .get(k)
            .and_then(|v| v.as_m().ok())
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_s().ok().map(|v| (k.clone(), v.clone())))
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn corrupt<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> StoreError {
    move |e| StoreError::Corrupt(format!("{what}: {e}"))
}

// ---- entitlements ---------------------------------------------------------------------------

fn entitlement_item(e: &Entitlement) -> Item {
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

fn entitlement_from(item: &Item) -> Result<Entitlement, StoreError> {
    let r = Reader(item);
    Ok(Entitlement {
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
    })
}

// ---- grants ---------------------------------------------------------------------------------

fn grant_item(g: &Grant) -> Item {
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

fn grant_from(item: &Item) -> Result<Grant, StoreError> {
    let r = Reader(item);
    Ok(Grant {
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
    })
}

fn claim_item(pk: String, c: &Claim) -> Item {
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

fn claim_from(item: &Item) -> Result<Claim, StoreError> {
    let r = Reader(item);
    Ok(Claim {
        scope: r.s("scope")?.to_owned(),
        key: r.s("key")?.to_owned(),
        object_id: r.s("object_id")?.to_owned(),
        fingerprint: r.map_ss("fingerprint"),
    })
}

// ---- usage ----------------------------------------------------------------------------------

fn usage_item(u: &UsageRecord) -> Item {
    let deductions = u
        .deductions
        .iter()
        .map(|d| {
            AttributeValue::M(HashMap::from([
                ("g".to_owned(), s(d.grant_id.as_str())),
                ("a".to_owned(), n(d.amount)),
            ]))
        })
        .collect();
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
        ("deductions".to_owned(), AttributeValue::L(deductions)),
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

fn usage_from(item: &Item) -> Result<UsageRecord, StoreError> {
    let r = Reader(item);
    let deductions = item
        .get("deductions")
        .and_then(|v| v.as_l().ok())
        .ok_or_else(|| StoreError::Corrupt("usage deductions".to_owned()))?
        .iter()
        .map(|d| {
            let m = d.as_m().map_err(|_| StoreError::Corrupt("deduction".to_owned()))?;
            let r = Reader(m);
            Ok(Deduction {
                grant_id: GrantId::parse(r.s("g")?).map_err(corrupt("grant id"))?,
                amount: r.dec("a")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
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

/// A grant replaced only at the version it was read at.
fn versioned_grant_put(table: &str, grant: &Grant, read_version: u64) -> Result<TransactWriteItem, StoreError> {
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

/// Adds usage and overage to the entitlement's period counters, under `condition`.
fn counters_update(
    table: &str,
    record: &UsageRecord,
    delta: CounterDelta,
    require_active: bool,
) -> Result<TransactWriteItem, StoreError> {
    let mut update = Update::builder()
        .table_name(table)
        .key(
            PK,
            s(entitlement_pk(record.tenant.as_str(), record.entitlement_id.as_str())),
        )
        .key(SK, s(ENTITLEMENT_SK))
        .update_expression("ADD usage_in_period :u, overage :o")
        .expression_attribute_values(":u", n(delta.usage))
        .expression_attribute_values(":o", n(delta.overage));
    update = if require_active {
        update
            .condition_expression("#st = :active")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":active", s(EntitlementStatus::Active.as_str()))
    } else {
        update.condition_expression("attribute_exists(PK)")
    };
    Ok(TransactWriteItem::builder()
        .update(update.build().map_err(|e| StoreError::Corrupt(e.to_string()))?)
        .build())
}

// ---- capacity grants ------------------------------------------------------------------------

fn capacity_item(g: &CapacityGrant) -> Item {
    let t = g.tenant.as_str();
    let mut item: Item = HashMap::from([
        (PK.to_owned(), s(capacity_pk(t, g.fid.as_str()))),
        (SK.to_owned(), s(CAPACITY_SK)),
        ("GSI1PK".to_owned(), s(tenant_capacity(t))),
        ("GSI1SK".to_owned(), s(g.fid.as_str())),
        ("type".to_owned(), s("capacity_grant")),
        ("fid".to_owned(), s(g.fid.as_str())),
        ("tenant".to_owned(), s(t)),
        ("kind".to_owned(), s(&g.kind)),
        ("cluster".to_owned(), s(&g.cluster)),
        ("quantity".to_owned(), AttributeValue::N(g.quantity.to_string())),
        ("starts_at".to_owned(), ts(g.starts_at)),
        ("ends_at".to_owned(), ts(g.ends_at)),
        // Prices as strings: exactly as the client wrote them.
        ("unit_price".to_owned(), s(g.unit_price.as_str())),
        (
            "early_termination_buyback_price".to_owned(),
            s(g.early_termination_buyback_price.as_str()),
        ),
        (
            "flexible_usage_buyback_price".to_owned(),
            s(g.flexible_usage_buyback_price.as_str()),
        ),
        ("created_at".to_owned(), ts(g.created_at)),
        ("version".to_owned(), AttributeValue::N(g.version.to_string())),
    ]);
    let mut opt = |k: &str, v: Option<AttributeValue>| {
        if let Some(v) = v {
            item.insert(k.to_owned(), v);
        }
    };
    opt("deleted_at", g.deleted_at.map(ts));
    opt("resold_from", g.resold_from.as_ref().map(|f| s(f.as_str())));
    opt("resold_to", g.resold_to.as_ref().map(|f| s(f.as_str())));
    item
}

fn capacity_from(item: &Item) -> Result<CapacityGrant, StoreError> {
    let r = Reader(item);
    let price = |k: &str| -> Result<ExactPrice, StoreError> { ExactPrice::parse(r.s(k)?).map_err(corrupt("price")) };
    let fid = |k: &str| -> Result<Option<CapacityGrantId>, StoreError> {
        r.opt_s(k)
            .map(CapacityGrantId::parse)
            .transpose()
            .map_err(corrupt("capacity grant id"))
    };
    Ok(CapacityGrant {
        fid: CapacityGrantId::parse(r.s("fid")?).map_err(corrupt("capacity grant id"))?,
        tenant: TenantId::parse(r.s("tenant")?).map_err(corrupt("tenant"))?,
        kind: r.s("kind")?.to_owned(),
        cluster: r.s("cluster")?.to_owned(),
        quantity: u64::try_from(r.dec("quantity")?).map_err(corrupt("quantity"))?,
        starts_at: r.ts("starts_at")?,
        ends_at: r.ts("ends_at")?,
        unit_price: price("unit_price")?,
        early_termination_buyback_price: price("early_termination_buyback_price")?,
        flexible_usage_buyback_price: price("flexible_usage_buyback_price")?,
        created_at: r.ts("created_at")?,
        deleted_at: r.opt_ts("deleted_at")?,
        resold_from: fid("resold_from")?,
        resold_to: fid("resold_to")?,
        version: r.version("version")?,
    })
}

// ---- credit plans ---------------------------------------------------------------------------

fn credit_plan_item(p: &CreditPlan) -> Item {
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

fn credit_plan_from(item: &Item) -> Result<CreditPlan, StoreError> {
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

// ---- API keys, tenants, invoices, payment sessions -------------------------------------------

fn api_key_from(item: &Item) -> Result<ApiKeyRecord, StoreError> {
    let r = Reader(item);
    let hash = match r.opt_s("key_hash") {
        Some(h) => h.to_owned(),
        None => r.s(PK)?.strip_prefix("APIKEY#").unwrap_or_default().to_owned(),
    };
    Ok(ApiKeyRecord {
        key_hash: hash,
        tenant: TenantId::parse(r.s("tenant")?).map_err(corrupt("tenant"))?,
        role: Role::parse(r.s("role")?).ok_or_else(|| StoreError::Corrupt("role".to_owned()))?,
        created_at: r.ts("created_at")?,
        display_prefix: r.opt_s("display_prefix").unwrap_or_default().to_owned(),
        expires_at: r.opt_ts("expires_at")?,
        last_used_at: r.opt_ts("last_used_at")?,
    })
}

fn tenant_from(item: &Item) -> Result<TenantSettings, StoreError> {
    let r = Reader(item);
    Ok(TenantSettings {
        tenant: TenantId::parse(r.s("tenant")?).map_err(corrupt("tenant"))?,
        currency: Currency::parse(r.s("currency")?).map_err(corrupt("currency"))?,
        members_may_purchase: r.bool("members_may_purchase"),
        min_price_per_credit: r.opt_dec("min_price_per_credit")?,
        allowed_redirect_origins: r.list_s("allowed_redirect_origins"),
        created_at: r.ts("created_at")?,
    })
}

/// The tenant item. (Tables written before the secret store kept a `webhook_secret` attribute
/// here; it is no longer read, and the next write of the settings drops it.)
fn tenant_item(settings: &TenantSettings) -> Item {
    let mut item: Item = HashMap::from([
        (PK.to_owned(), s(tenant_pk(settings.tenant.as_str()))),
        (SK.to_owned(), s(TENANT_SK)),
        ("type".to_owned(), s("tenant")),
        ("tenant".to_owned(), s(settings.tenant.as_str())),
        ("currency".to_owned(), s(settings.currency.code())),
        (
            "members_may_purchase".to_owned(),
            AttributeValue::Bool(settings.members_may_purchase),
        ),
        (
            "allowed_redirect_origins".to_owned(),
            AttributeValue::L(
                settings
                    .allowed_redirect_origins
                    .iter()
                    .map(|o| s(o.as_str()))
                    .collect(),
            ),
        ),
        ("created_at".to_owned(), ts(settings.created_at)),
    ]);
    if let Some(min) = settings.min_price_per_credit {
        item.insert("min_price_per_credit".to_owned(), n(min));
    }
    item
}

fn invoice_item(i: &Invoice) -> Item {
    let t = i.tenant.as_str();
    let mut item: Item = HashMap::from([
        (PK.to_owned(), s(invoice_pk(t, i.id.as_str()))),
        (SK.to_owned(), s(INVOICE_SK)),
        ("type".to_owned(), s("invoice")),
        ("id".to_owned(), s(i.id.as_str())),
        ("tenant".to_owned(), s(t)),
        ("entitlement_id".to_owned(), s(i.entitlement_id.as_str())),
        ("customer_id".to_owned(), s(&i.customer_id)),
        ("grant_amount".to_owned(), n(i.grant_amount.value())),
        ("price".to_owned(), n(i.price.value())),
        ("currency".to_owned(), s(i.price.currency().code())),
        ("grant_effective_at".to_owned(), ts(i.grant_effective_at)),
        ("session_id".to_owned(), s(i.session.id.as_str())),
        ("session_url".to_owned(), s(&i.session.url)),
        ("session_expires_at".to_owned(), ts(i.session.expires_at)),
        (
            "session_amount".to_owned(),
            AttributeValue::N(i.session.amount_minor.to_string()),
        ),
        ("provider".to_owned(), s(&i.provider)),
        ("idempotency_key".to_owned(), s(&i.idempotency_key)),
        ("status".to_owned(), s(i.status.as_str())),
        ("created_at".to_owned(), ts(i.created_at)),
        ("updated_at".to_owned(), ts(i.updated_at)),
        ("paid_late".to_owned(), AttributeValue::Bool(i.paid_late)),
        ("version".to_owned(), AttributeValue::N(i.version.to_string())),
    ]);
    if i.status == InvoiceStatus::Open {
        // Sparse index: only open invoices are in the expiry sweep's partition.
        item.insert("GSI1PK".to_owned(), s(OPEN_INVOICES));
        item.insert(
            "GSI1SK".to_owned(),
            s(open_invoice_sk(&i.session.expires_at.to_storage(), t, i.id.as_str())),
        );
    }
    let mut opt = |k: &str, v: Option<AttributeValue>| {
        if let Some(v) = v {
            item.insert(k.to_owned(), v);
        }
    };
    opt("subscription_id", i.subscription_id.clone().map(s));
    opt("credit_type_id", i.credit_type_id.clone().map(s));
    opt("grant_expires_at", i.grant_expires_at.map(ts));
    opt(
        "grant_reset_max_rollover",
        i.grant_reset_max_rollover.map(|v| n(v.value())),
    );
    opt(
        "grant_reset_min_rollover",
        i.grant_reset_min_rollover.map(|v| n(v.value())),
    );
    opt("success_url", i.success_url.clone().map(s));
    opt("cancel_url", i.cancel_url.clone().map(s));
    opt("paid_at", i.paid_at.map(ts));
    opt("grant_id", i.grant_id.as_ref().map(|g| s(g.as_str())));
    opt("canceled_at", i.canceled_at.map(ts));
    opt("cancel_reason", i.cancel_reason.clone().map(s));
    opt("failure_reason", i.failure_reason.clone().map(s));
    opt("notified_at", i.notified_at.map(ts));
    item
}

fn invoice_from(item: &Item) -> Result<Invoice, StoreError> {
    let r = Reader(item);
    let currency = Currency::parse(r.s("currency")?).map_err(corrupt("currency"))?;
    let whole = |k: &str| -> Result<i64, StoreError> {
        r.dec(k)
            .and_then(|d| i64::try_from(d).map_err(|_| StoreError::Corrupt(format!("{k} is not an integer"))))
    };
    Ok(Invoice {
        id: InvoiceId::parse(r.s("id")?).map_err(corrupt("invoice id"))?,
        tenant: TenantId::parse(r.s("tenant")?).map_err(corrupt("tenant"))?,
        entitlement_id: EntitlementId::parse(r.s("entitlement_id")?).map_err(corrupt("entitlement id"))?,
        customer_id: r.s("customer_id")?.to_owned(),
        subscription_id: r.opt_s("subscription_id").map(str::to_owned),
        credit_type_id: r.opt_s("credit_type_id").map(str::to_owned),
        grant_amount: CreditAmount::new(r.dec("grant_amount")?).map_err(corrupt("grant amount"))?,
        price: Price::new(r.dec("price")?, currency).map_err(corrupt("price"))?,
        grant_effective_at: r.ts("grant_effective_at")?,
        grant_expires_at: r.opt_ts("grant_expires_at")?,
        grant_reset_max_rollover: r
            .opt_dec("grant_reset_max_rollover")?
            .map(NonNegative::new)
            .transpose()
            .map_err(corrupt("rollover"))?,
        grant_reset_min_rollover: r
            .opt_dec("grant_reset_min_rollover")?
            .map(NonNegative::new)
            .transpose()
            .map_err(corrupt("rollover"))?,
        success_url: r.opt_s("success_url").map(str::to_owned),
        cancel_url: r.opt_s("cancel_url").map(str::to_owned),
        session: PaymentSession {
            id: SessionId::parse(r.s("session_id")?).map_err(corrupt("session id"))?,
            url: r.s("session_url")?.to_owned(),
            expires_at: r.ts("session_expires_at")?,
            amount_minor: whole("session_amount")?,
        },
        provider: r.s("provider")?.to_owned(),
        idempotency_key: r.s("idempotency_key")?.to_owned(),
        status: InvoiceStatus::parse(r.s("status")?).ok_or_else(|| StoreError::Corrupt("invoice status".to_owned()))?,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
        paid_at: r.opt_ts("paid_at")?,
        grant_id: r
            .opt_s("grant_id")
            .map(GrantId::parse)
            .transpose()
            .map_err(corrupt("grant id"))?,
        paid_late: r.bool("paid_late"),
        canceled_at: r.opt_ts("canceled_at")?,
        cancel_reason: r.opt_s("cancel_reason").map(str::to_owned),
        failure_reason: r.opt_s("failure_reason").map(str::to_owned),
        notified_at: r.opt_ts("notified_at")?,
        version: u64::try_from(whole("version")?).map_err(corrupt("version"))?,
    })
}

fn session_item(i: &Invoice) -> Item {
    HashMap::from([
        (PK.to_owned(), s(session_pk(i.session.id.as_str()))),
        (SK.to_owned(), s(SESSION_SK)),
        ("type".to_owned(), s("payment_session")),
        ("tenant".to_owned(), s(i.tenant.as_str())),
        ("invoice_id".to_owned(), s(i.id.as_str())),
    ])
}

/// The conditional Put that replaces an invoice only at the version it was read at.
fn versioned_invoice_put(table: &str, invoice: &Invoice, expected_version: u64) -> Result<Put, StoreError> {
    Put::builder()
        .table_name(table)
        .set_item(Some(invoice_item(invoice)))
        .condition_expression("version = :v")
        .expression_attribute_values(":v", AttributeValue::N(expected_version.to_string()))
        .build()
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn put(table: &str, item: Item, condition: &str) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(condition)
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .build()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// Backoff with jitter before retrying a transaction that lost a race.
async fn conflict_pause(attempt: u32) {
    let mut b = [0u8; 2];
    let jitter = if getrandom::fill(&mut b).is_ok() {
        u64::from(u16::from_le_bytes(b)) % 20
    } else {
        7
    };
    let base = 5u64 << attempt.min(5);
    tokio::time::sleep(Duration::from_millis(base + jitter)).await;
}

/// The per-item outcome of a cancelled transaction.
enum Cancelled {
    /// At least one item raced another transaction: safe to retry as is.
    Conflict,
    /// Conditions failed: (index, the item as it was, if DynamoDB returned it).
    Conditions(Vec<(usize, Option<Item>)>),
}

fn cancellation(err: SdkError<TransactWriteItemsError, impl std::fmt::Debug>) -> Result<Cancelled, StoreError> {
    match err {
        SdkError::ServiceError(ctx) => match ctx.into_err() {
            TransactWriteItemsError::TransactionCanceledException(tc) => {
                let reasons = tc.cancellation_reasons.unwrap_or_default();
                let code = |r: &aws_sdk_dynamodb::types::CancellationReason| r.code.clone().unwrap_or_default();
                if reasons.iter().any(|r| code(r) == "ValidationError") {
                    return Err(StoreError::Rejected(format!("transaction item refused: {reasons:?}")));
                }
                if reasons
                    .iter()
                    .any(|r| matches!(code(r).as_str(), "TransactionConflict" | "ThrottlingError"))
                {
                    return Ok(Cancelled::Conflict);
                }
                Ok(Cancelled::Conditions(
                    reasons
                        .into_iter()
                        .enumerate()
                        .filter(|(_, r)| r.code.as_deref() == Some("ConditionalCheckFailed"))
                        .map(|(i, r)| (i, r.item))
                        .collect(),
                ))
            }
            TransactWriteItemsError::TransactionInProgressException(_) => Ok(Cancelled::Conflict),
            other => Err(service_failure(other)),
        },
        other => Err(unavailable(other)),
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.get(api_key_pk(key_hash), API_KEY_SK)
            .await?
            .as_ref()
            .map(api_key_from)
            .transpose()
    }

    async fn put_api_key(&self, record: &ApiKeyRecord) -> Result<(), StoreError> {
        let mut item: Item = HashMap::from([
            (PK.to_owned(), s(api_key_pk(&record.key_hash))),
            (SK.to_owned(), s(API_KEY_SK)),
            ("type".to_owned(), s("api_key")),
            ("key_hash".to_owned(), s(&record.key_hash)),
            ("tenant".to_owned(), s(record.tenant.as_str())),
            ("role".to_owned(), s(record.role.as_str())),
            ("created_at".to_owned(), ts(record.created_at)),
            ("display_prefix".to_owned(), s(&record.display_prefix)),
            ("GSI1PK".to_owned(), s(tenant_keys(record.tenant.as_str()))),
            ("GSI1SK".to_owned(), s(record.key_id())),
        ]);
        if let Some(at) = record.expires_at {
            item.insert("expires_at".to_owned(), ts(at));
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn list_api_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let items = self
            .query_all(
                Some(GSI1),
                "GSI1PK = :pk",
                &[],
                vec![(":pk", s(tenant_keys(tenant.as_str())))],
            )
            .await?;
        items.iter().map(api_key_from).collect()
    }

    async fn expire_api_key(&self, tenant: &TenantId, key_hash: &str, at: Timestamp) -> Result<bool, StoreError> {
        let result = self
            .update_at(api_key_pk(key_hash), API_KEY_SK)
            .condition_expression("tenant = :t AND (attribute_not_exists(expires_at) OR expires_at > :at)")
            .update_expression("SET expires_at = :at")
            .expression_attribute_values(":t", s(tenant.as_str()))
            .expression_attribute_values(":at", ts(at))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(ctx))
                if matches!(ctx.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
            {
                // Either not this tenant's key, or it already stops earlier.
                Ok(self.find_api_key(key_hash).await?.is_some_and(|k| &k.tenant == tenant))
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn touch_api_key(&self, key_hash: &str, now: Timestamp, since: Timestamp) -> Result<(), StoreError> {
        let result = self
            .update_at(api_key_pk(key_hash), API_KEY_SK)
            .condition_expression(
                "attribute_exists(PK) AND (attribute_not_exists(last_used_at) OR last_used_at < :since)",
            )
            .update_expression("SET last_used_at = :now")
            .expression_attribute_values(":now", ts(now))
            .expression_attribute_values(":since", ts(since))
            .send()
            .await;
        unless_condition_failed(result)
    }

    async fn put_entitlement(&self, entitlement: &Entitlement) -> Result<(), StoreError> {
        self.client
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
        match update.send().await {
            Ok(out) => out.attributes.as_ref().map(entitlement_from).transpose(),
            Err(SdkError::ServiceError(ctx))
                if matches!(ctx.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
            {
                Ok(None)
            }
            Err(e) => Err(unavailable(e)),
        }
    }

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
            vec![put(&self.table, grant_item(grant), "attribute_not_exists(PK)")?],
            period_start,
        )
        .await
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
        self.set_once(
            entitlement_pk(tenant.as_str(), entitlement.as_str()),
            &grant_sk(id.as_str()),
            "voided_at",
            "gv",
            at,
        )
        .await?
        .as_ref()
        .map(grant_from)
        .transpose()
    }

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
    ) -> Result<UsageWrite, StoreError> {
        let mut items = vec![
            put(&self.table, usage_item(record), "attribute_not_exists(PK)")?,
            counters_update(&self.table, record, delta, true)?,
        ];
        for (g, read) in grants {
            items.push(versioned_grant_put(&self.table, g, *read)?);
        }
        for attempt in 0..CONFLICT_RETRIES {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(UsageWrite::Written),
                Err(e) => e,
            };
            match cancellation(err)? {
                Cancelled::Conflict => conflict_pause(attempt).await,
                Cancelled::Conditions(failed) => {
                    if let Some((_, old)) = failed.iter().find(|(i, _)| *i == 0) {
                        let old = match old {
                            Some(old) => usage_from(old)?,
                            None => self
                                .get_usage(&record.tenant, &record.entitlement_id, &record.event_id)
                                .await?
                                .ok_or_else(|| StoreError::Corrupt("usage record vanished".to_owned()))?,
                        };
                        return Ok(UsageWrite::Exists(old));
                    }
                    if failed.iter().any(|(i, _)| *i == 1) {
                        return Ok(UsageWrite::EntitlementUnavailable);
                    }
                    return Ok(UsageWrite::Stale);
                }
            }
        }
        Ok(UsageWrite::Stale)
    }

    async fn settle_usage(
        &self,
        record: &UsageRecord,
        delta: CounterDelta,
        grants: &[(Grant, u64)],
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
            counters_update(&self.table, record, delta, false)?,
        ];
        for (g, read) in grants {
            items.push(versioned_grant_put(&self.table, g, *read)?);
        }
        self.transact_versioned(items).await
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
            .client
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
            .client
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
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(entitlement_pk(tenant.as_str(), entitlement.as_str())))
            .key(SK, s(claim_sk(scope, key)))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn list_credit_types(&self, tenant: &TenantId) -> Result<Vec<CreditType>, StoreError> {
        let items = self
            .query_all(
                None,
                "PK = :pk AND begins_with(SK, :ct)",
                &[],
                vec![
                    (":pk", s(tenant_pk(tenant.as_str()))),
                    (":ct", s(CREDIT_TYPE_SK_PREFIX)),
                ],
            )
            .await?;
        items
            .iter()
            .map(|i| {
                let r = Reader(i);
                Ok(CreditType {
                    id: r.s("id")?.to_owned(),
                    name: r.s("name")?.to_owned(),
                })
            })
            .collect()
    }

    async fn insert_credit_type(&self, tenant: &TenantId, ct: &CreditType) -> Result<Option<CreditType>, StoreError> {
        let pk = tenant_pk(tenant.as_str());
        let item = |sk: String| -> Item {
            HashMap::from([
                (PK.to_owned(), s(pk.clone())),
                (SK.to_owned(), s(sk)),
                ("type".to_owned(), s("credit_type")),
                ("id".to_owned(), s(&ct.id)),
                ("name".to_owned(), s(&ct.name)),
            ])
        };
        let items = vec![
            put(
                &self.table,
                item(credit_type_name_sk(&ct.name)),
                "attribute_not_exists(PK)",
            )?,
            put(&self.table, item(credit_type_sk(&ct.id)), "attribute_not_exists(PK)")?,
        ];
        for attempt in 0..CONFLICT_RETRIES {
            match self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await
            {
                Ok(_) => return Ok(None),
                Err(e) => match cancellation(e)? {
                    Cancelled::Conflict => conflict_pause(attempt).await,
                    Cancelled::Conditions(failed) => {
                        let existing = match failed.into_iter().find(|(i, _)| *i == 0).and_then(|(_, old)| old) {
                            Some(old) => old,
                            None => self
                                .get(pk.clone(), &credit_type_name_sk(&ct.name))
                                .await?
                                .ok_or_else(|| StoreError::Corrupt("credit type id collision".to_owned()))?,
                        };
                        let r = Reader(&existing);
                        return Ok(Some(CreditType {
                            id: r.s("id")?.to_owned(),
                            name: r.s("name")?.to_owned(),
                        }));
                    }
                },
            }
        }
        Err(StoreError::Contention)
    }

    async fn insert_capacity_grant(
        &self,
        grant: &CapacityGrant,
        claim: Option<&Claim>,
    ) -> Result<InsertOutcome, StoreError> {
        self.insert_tenant_claimed(&grant.tenant, capacity_item(grant), claim)
            .await
    }

    async fn get_capacity_grant(
        &self,
        tenant: &TenantId,
        fid: &CapacityGrantId,
    ) -> Result<Option<CapacityGrant>, StoreError> {
        self.get(capacity_pk(tenant.as_str(), fid.as_str()), CAPACITY_SK)
            .await?
            .as_ref()
            .map(capacity_from)
            .transpose()
    }

    async fn list_capacity_grants(&self, tenant: &TenantId) -> Result<Vec<CapacityGrant>, StoreError> {
        let items = self
            .query_all(
                Some(GSI1),
                "GSI1PK = :pk",
                &[],
                vec![(":pk", s(tenant_capacity(tenant.as_str())))],
            )
            .await?;
        items.iter().map(capacity_from).collect()
    }

    async fn delete_capacity_grant(
        &self,
        tenant: &TenantId,
        fid: &CapacityGrantId,
        at: Timestamp,
    ) -> Result<Option<CapacityGrant>, StoreError> {
        self.set_once(
            capacity_pk(tenant.as_str(), fid.as_str()),
            CAPACITY_SK,
            "deleted_at",
            "version",
            at,
        )
        .await?
        .as_ref()
        .map(capacity_from)
        .transpose()
    }

    async fn resell_capacity_grant(
        &self,
        old: &CapacityGrant,
        expected_version: u64,
        new: &CapacityGrant,
    ) -> Result<bool, StoreError> {
        let replace_old = Put::builder()
            .table_name(&self.table)
            .set_item(Some(capacity_item(old)))
            .condition_expression("version = :v AND attribute_not_exists(deleted_at)")
            .expression_attribute_values(":v", AttributeValue::N(expected_version.to_string()))
            .build()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let items = vec![
            TransactWriteItem::builder().put(replace_old).build(),
            put(&self.table, capacity_item(new), "attribute_not_exists(PK)")?,
        ];
        self.transact_versioned(items).await
    }

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
        ];
        for attempt in 0..CONFLICT_RETRIES {
            match self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await
            {
                Ok(_) => return Ok(PlanApply::Applied),
                Err(e) => match cancellation(e)? {
                    Cancelled::Conflict => conflict_pause(attempt).await,
                    Cancelled::Conditions(failed) => {
                        return Ok(if failed.iter().any(|(i, _)| *i == 0) {
                            PlanApply::EntitlementInactive
                        } else {
                            PlanApply::Moved
                        })
                    }
                },
            }
        }
        Err(StoreError::Contention)
    }

    async fn entitlements_due_for_reset(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<(TenantId, EntitlementId)>, StoreError> {
        let out = self
            .client
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
        let update = Update::builder()
            .table_name(&self.table)
            .key(PK, s(entitlement_pk(t, entitlement.id.as_str())))
            .key(SK, s(ENTITLEMENT_SK))
            .update_expression("SET current_period_start = :s, current_period_end = :e, usage_in_period = :z, overage = :z, GSI5SK = :k")
            .condition_expression("current_period_end = :old AND #st = :active")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":s", ts(reset.start))
            .expression_attribute_values(":e", ts(reset.end))
            .expression_attribute_values(":z", n(Decimal::ZERO))
            .expression_attribute_values(":k", s(period_end_sk(&reset.end.to_storage(), t, entitlement.id.as_str())))
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
        }
        self.transact_versioned(items).await
    }

    async fn get_tenant(&self, tenant: &TenantId) -> Result<Option<TenantSettings>, StoreError> {
        self.get(tenant_pk(tenant.as_str()), TENANT_SK)
            .await?
            .as_ref()
            .map(tenant_from)
            .transpose()
    }

    async fn put_tenant_if_absent(&self, settings: &TenantSettings) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(tenant_item(settings)))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(ctx))
                if matches!(ctx.err(), PutItemError::ConditionalCheckFailedException(_)) =>
            {
                Ok(false)
            }
            Err(e) => Err(unavailable(e)),
        }
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

    async fn put_tenant(&self, settings: &TenantSettings) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(tenant_item(settings)))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn insert_purchase(&self, invoice: &Invoice, claim: &Claim) -> Result<InsertOutcome, StoreError> {
        let pk = entitlement_pk(invoice.tenant.as_str(), invoice.entitlement_id.as_str());
        let objects = vec![
            put(&self.table, invoice_item(invoice), "attribute_not_exists(PK)")?,
            put(&self.table, session_item(invoice), "attribute_not_exists(PK)")?,
        ];
        self.insert_claimed(pk, Some(claim), objects, None).await
    }

    async fn get_invoice(&self, tenant: &TenantId, id: &InvoiceId) -> Result<Option<Invoice>, StoreError> {
        self.get(invoice_pk(tenant.as_str(), id.as_str()), INVOICE_SK)
            .await?
            .as_ref()
            .map(invoice_from)
            .transpose()
    }

    async fn find_session(&self, id: &SessionId) -> Result<Option<(TenantId, InvoiceId)>, StoreError> {
        let Some(item) = self.get(session_pk(id.as_str()), SESSION_SK).await? else {
            return Ok(None);
        };
        let r = Reader(&item);
        Ok(Some((
            TenantId::parse(r.s("tenant")?).map_err(corrupt("tenant"))?,
            InvoiceId::parse(r.s("invoice_id")?).map_err(corrupt("invoice id"))?,
        )))
    }

    async fn update_invoice(&self, invoice: &Invoice, expected_version: u64) -> Result<bool, StoreError> {
        self.put_at_version(invoice_item(invoice), expected_version).await
    }

    async fn settle_invoice(
        &self,
        invoice: &Invoice,
        expected_version: u64,
        grant: &Grant,
    ) -> Result<bool, StoreError> {
        let items = vec![
            TransactWriteItem::builder()
                .put(versioned_invoice_put(&self.table, invoice, expected_version)?)
                .build(),
            put(&self.table, grant_item(grant), "attribute_not_exists(PK)")?,
        ];
        self.transact_versioned(items).await
    }

    async fn due_open_invoices(&self, now: Timestamp, limit: usize) -> Result<Vec<Invoice>, StoreError> {
        // Sort keys start with the session expiry; every key of an instant <= now sorts below
        // "<now>#~" (ids and tenants use characters below '~').
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .key_condition_expression("GSI1PK = :pk AND GSI1SK < :hi")
            .expression_attribute_values(":pk", s(OPEN_INVOICES))
            .expression_attribute_values(":hi", s(format!("{}#~", now.to_storage())))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(unavailable)?;
        out.items.unwrap_or_default().iter().map(invoice_from).collect()
    }
}
