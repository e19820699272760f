//! The DynamoDB machinery every port shares: the store, its queries, conditional writes,
//! transactions with retries on conflicts, and the mapping of SDK errors to [`StoreError`].

use crate::prelude::*;
use std::sync::OnceLock;

pub(crate) type Item = HashMap<String, AttributeValue>;

/// How many times a transaction that lost a race (TransactionConflict) is tried again.
const CONFLICT_RETRIES: u32 = 12;

/// The DynamoDB store: one table, one client. The client is built when the store is made
/// ([`DynamoStore::new`], [`DynamoStore::from_config`]), except for a function that declares it
/// does not use the table ([`DynamoStore::unused`]): its client is built only if a call reaches it.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: OnceLock<Client>,
    config: Option<aws_config::SdkConfig>,
    pub(crate) table: String,
    pub(crate) busy: std::sync::Arc<grants_domain::group_commit::BusyEntitlements>,
    /// This process's lines of usage requests (cloning the store shares them).
    pub(crate) combiner: grants_domain::combining::Combiner,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client: OnceLock::from(client),
            config: None,
            table: table.into(),
            busy: Default::default(),
            combiner: Default::default(),
        }
    }
    /// The store for `table`, with a DynamoDB client of this SDK configuration.
    pub fn from_config(config: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self::new(Client::new(config), table)
    }
    /// The store of a function whose route never calls DynamoDB (the payment webhook): no client
    /// is built at start-up; one is built from `config` on the first call, should one come.
    pub fn unused(config: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self {
            client: OnceLock::new(),
            config: Some(config.clone()),
            table: table.into(),
            busy: Default::default(),
            combiner: Default::default(),
        }
    }
    pub fn client(&self) -> &Client {
        self.client.get_or_init(|| {
            let config = self
                .config
                .as_ref()
                .expect("a store without a client keeps its configuration");
            Client::new(config)
        })
    }
    pub fn table(&self) -> &str {
        &self.table
    }

    pub(crate) async fn query_all(
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
                .client()
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
    pub(crate) async fn insert_claimed(
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
        match self.transact(items).await? {
            Transacted::Committed => Ok(InsertOutcome::Inserted),
            Transacted::ConditionsFailed(failed) => {
                // The claim decides first: a replay is answered even if the entitlement has
                // since been cancelled.
                if let (Some(claim), Some(old)) = (claim, failed.old(1)) {
                    let stored = self
                        .as_it_was(old, pk, &claim_sk(&claim.scope, &claim.key), "claim vanished")
                        .await?;
                    return Ok(InsertOutcome::ClaimExists(claim_from(&stored)?));
                }
                if failed.at(0) {
                    return Ok(InsertOutcome::ParentUnavailable);
                }
                Err(StoreError::Corrupt("id collision".to_owned()))
            }
        }
    }

    /// Writes a new tenant-level object and, when given, the claim of its idempotency key (in the
    /// tenant's partition) in one transaction.
    pub(crate) async fn insert_tenant_claimed(
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
        match self.transact(items).await? {
            Transacted::Committed => Ok(InsertOutcome::Inserted),
            Transacted::ConditionsFailed(failed) => {
                let Some(c) = claim else {
                    return Err(StoreError::Corrupt("id collision".to_owned()));
                };
                let stored = self
                    .as_it_was(failed.old(1).flatten(), pk, &claim_sk(&c.scope, &c.key), "id collision")
                    .await?;
                Ok(InsertOutcome::ClaimExists(claim_from(&stored)?))
            }
        }
    }

    /// Writes an object's item and the item that holds one of its values unique (a credit type's
    /// name, a metric's event type), together, both only if absent; the two carry the same
    /// attributes. None when written; else the holder as it is (from the failed condition's old
    /// image, no second read): the object that already has that value.
    pub(crate) async fn insert_unique(
        &self,
        pk: String,
        holder_sk: String,
        object_sk: String,
        attributes: impl Fn(String) -> Item,
    ) -> Result<Option<Item>, StoreError> {
        let items = vec![
            put(&self.table, attributes(holder_sk.clone()), "attribute_not_exists(PK)")?,
            put(&self.table, attributes(object_sk), "attribute_not_exists(PK)")?,
        ];
        let failed = match self.transact(items).await? {
            Transacted::Committed => return Ok(None),
            Transacted::ConditionsFailed(failed) => failed,
        };
        self.as_it_was(failed.old(0).flatten(), pk, &holder_sk, "id collision")
            .await
            .map(Some)
    }

    /// Replaces an item if its stored `version` is still `expected`; false when it moved.
    pub(crate) async fn put_at_version(&self, item: Item, expected: u64) -> Result<bool, StoreError> {
        let result = self
            .client()
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", AttributeValue::N(expected.to_string()))
            .send()
            .await;
        Ok(written(result)?.is_some())
    }

    /// Sets a timestamp attribute once (bumping the item's version counter): the item as it now
    /// is, unchanged when the attribute was already set; None when the item does not exist.
    pub(crate) async fn set_once(
        &self,
        pk: String,
        sk: &str,
        attribute: &str,
        version: &str,
        at: Timestamp,
    ) -> Result<Option<Item>, StoreError> {
        let result = self
            .client()
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
    pub(crate) async fn transact_versioned(&self, items: Vec<TransactWriteItem>) -> Result<bool, StoreError> {
        Ok(matches!(self.transact(items).await?, Transacted::Committed))
    }

    /// Runs one TransactWriteItems: a transaction that lost a race (TransactionConflict,
    /// throttling, another in progress) is paused and sent again as is, up to
    /// [`CONFLICT_RETRIES`] times, then [`StoreError::Contention`]. Failed conditions are not
    /// retried: they come back for the caller to map to its outcome.
    pub(crate) async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<Transacted, StoreError> {
        for attempt in 0..CONFLICT_RETRIES {
            let result = self
                .client()
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            match result {
                Ok(_) => return Ok(Transacted::Committed),
                Err(e) => match cancellation(e)? {
                    Cancelled::Conflict => conflict_pause(attempt).await,
                    Cancelled::Conditions(failed) => return Ok(Transacted::ConditionsFailed(failed)),
                },
            }
        }
        Err(StoreError::Contention)
    }

    /// The item a failed condition met: the image DynamoDB returned with the cancellation
    /// (`old`), else read back; [`StoreError::Corrupt`] of `missing` when it is gone.
    pub(crate) async fn as_it_was(
        &self,
        old: Option<&Item>,
        pk: String,
        sk: &str,
        missing: &str,
    ) -> Result<Item, StoreError> {
        match old {
            Some(old) => Ok(old.clone()),
            None => self
                .get(pk, sk)
                .await?
                .ok_or_else(|| StoreError::Corrupt(missing.to_owned())),
        }
    }

    /// An UpdateItem of the item at `pk`/`sk` (the caller adds its expressions).
    pub(crate) fn update_at(
        &self,
        pk: String,
        sk: &str,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client()
            .update_item()
            .table_name(&self.table)
            .key(PK, s(pk))
            .key(SK, s(sk))
    }

    pub(crate) async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client()
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
pub(crate) fn unavailable<E, R>(e: SdkError<E, R>) -> StoreError
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

/// A conditional write's outcome: `Some` of its output when written, `None` when its condition
/// failed; any other failure is [`unavailable`].
pub(crate) fn written<O, E, R>(result: Result<O, SdkError<E, R>>) -> Result<Option<O>, StoreError>
where
    E: ConditionFailed + std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(out) => Ok(Some(out)),
        Err(SdkError::ServiceError(ctx)) if ctx.err().condition_failed() => Ok(None),
        Err(e) => Err(unavailable(e)),
    }
}

/// An update whose condition failing means there is nothing to do.
pub(crate) fn unless_condition_failed<O, R: std::fmt::Debug>(
    result: Result<O, SdkError<UpdateItemError, R>>,
) -> Result<(), StoreError> {
    written(result).map(drop)
}

/// The error of a single-item conditional write, which tells a failed condition apart.
pub(crate) trait ConditionFailed {
    fn condition_failed(&self) -> bool;
}

impl ConditionFailed for PutItemError {
    fn condition_failed(&self) -> bool {
        matches!(self, PutItemError::ConditionalCheckFailedException(_))
    }
}

impl ConditionFailed for aws_sdk_dynamodb::operation::delete_item::DeleteItemError {
    fn condition_failed(&self) -> bool {
        matches!(
            self,
            aws_sdk_dynamodb::operation::delete_item::DeleteItemError::ConditionalCheckFailedException(_)
        )
    }
}

impl ConditionFailed for UpdateItemError {
    fn condition_failed(&self) -> bool {
        matches!(self, UpdateItemError::ConditionalCheckFailedException(_))
    }
}

/// [`unavailable`] for an operation's own error type.
pub(crate) fn service_failure<E>(e: E) -> StoreError
where
    E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata + 'static,
{
    if e.code() == Some("ValidationException") {
        return StoreError::Rejected(DisplayErrorContext(e).to_string());
    }
    StoreError::Unavailable(DisplayErrorContext(e).to_string())
}

pub(crate) fn put(table: &str, item: Item, condition: &str) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(condition)
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .build()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// What became of a transaction [`DynamoStore::transact`] sent.
pub(crate) enum Transacted {
    Committed,
    /// Cancelled because conditions failed: nothing was written.
    ConditionsFailed(FailedConditions),
}

/// The items of a cancelled transaction whose condition failed: (index in the transaction, the
/// item as it was, if DynamoDB returned it).
pub(crate) struct FailedConditions(Vec<(usize, Option<Item>)>);

impl FailedConditions {
    /// Whether the condition of item `index` failed.
    pub(crate) fn at(&self, index: usize) -> bool {
        self.0.iter().any(|(i, _)| *i == index)
    }

    /// When the condition of item `index` failed: the item as it was, if DynamoDB returned it.
    pub(crate) fn old(&self, index: usize) -> Option<Option<&Item>> {
        self.0.iter().find(|(i, _)| *i == index).map(|(_, old)| old.as_ref())
    }
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
    /// Conditions failed.
    Conditions(FailedConditions),
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
                Ok(Cancelled::Conditions(FailedConditions(
                    reasons
                        .into_iter()
                        .enumerate()
                        .filter(|(_, r)| r.code.as_deref() == Some("ConditionalCheckFailed"))
                        .map(|(i, r)| (i, r.item))
                        .collect(),
                )))
            }
            TransactWriteItemsError::TransactionInProgressException(_) => Ok(Cancelled::Conflict),
            other => Err(service_failure(other)),
        },
        other => Err(unavailable(other)),
    }
}
