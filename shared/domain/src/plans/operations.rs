//! The Flexprice operations on plans: create (idempotent; applies what is due at once), get,
//! update, delete (archive or end) and list.
use super::PlanStore;
use super::{apply_plan, CreditPlan, Expiration, PlanScope, PlanStatus, Recurrence};
use crate::kernel::{insert_claimed, Claim, Created, IdempotencyKey, Label, StoreError};
use crate::{Clock, CreditAmount, TenantId, Timestamp};
use std::collections::BTreeMap;

/// A validated create request.
#[derive(Debug, Clone)]
pub struct NewCreditPlan {
    pub name: Label,
    pub scope: PlanScope,
    pub scope_id: Label,
    pub credits: CreditAmount,
    pub currency: Option<String>,
    pub recurrence: Recurrence,
    pub expiration: Expiration,
    pub priority: Option<i64>,
    pub metadata: BTreeMap<String, String>,
    pub start_date: Option<Timestamp>,
    pub end_date: Option<Timestamp>,
    pub conversion_rate: Option<String>,
    /// The `Idempotency-Key` header: a retry with it returns the plan the first request made.
    pub idempotency_key: Option<IdempotencyKey>,
}

impl NewCreditPlan {
    /// The request's parameters as sent, for replay comparison.
    fn fingerprint(&self) -> BTreeMap<String, String> {
        let mut f = BTreeMap::from([
            ("name".to_owned(), self.name.as_str().to_owned()),
            (
                "scope".to_owned(),
                format!("{}:{}", self.scope.as_str(), self.scope_id.as_str()),
            ),
            ("credits".to_owned(), self.credits.value().to_string()),
            ("recurrence".to_owned(), format!("{:?}", self.recurrence)),
            ("expiration".to_owned(), format!("{:?}", self.expiration)),
            ("priority".to_owned(), format!("{:?}", self.priority)),
        ]);
        let mut opt = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                f.insert(k.to_owned(), v);
            }
        };
        opt("start_date", self.start_date.map(|t| t.to_storage()));
        opt("end_date", self.end_date.map(|t| t.to_storage()));
        opt("currency", self.currency.clone());
        f
    }
}

const PLAN_SCOPE: &str = "creditplan";

#[derive(Debug, thiserror::Error)]
pub enum CreatePlanError {
    #[error("end_date must be after start_date")]
    EndNotAfterStart,
    #[error("Idempotency-Key reused with different parameters: {}", .0.join(", "))]
    IdempotencyMismatch(Vec<String>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum PlanLookupError {
    #[error("credit grant not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum UpdatePlanError {
    #[error("credit grant not found")]
    NotFound,
    #[error("end_date must be after start_date")]
    EndNotAfterStart,
    #[error("the credit grant changed at the same time; retry")]
    Concurrent,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum DeletePlanError {
    #[error("credit grant not found")]
    NotFound,
    #[error("the credit grant changed at the same time; retry")]
    Concurrent,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn create(
    store: &dyn PlanStore,
    clock: &dyn Clock,
    tenant: &TenantId,
    req: NewCreditPlan,
) -> Result<Created<CreditPlan>, CreatePlanError> {
    let now = clock.now();
    let fingerprint = req.fingerprint();
    let start_date = req.start_date.unwrap_or(now);
    if req.end_date.is_some_and(|e| e <= start_date) {
        return Err(CreatePlanError::EndNotAfterStart);
    }
    let id = format!("cgrant_{}", ulid::Ulid::generate());
    let claim = req.idempotency_key.as_ref().map(|k| Claim {
        scope: PLAN_SCOPE.to_owned(),
        key: k.as_str().to_owned(),
        object_id: id.clone(),
        fingerprint: fingerprint.clone(),
    });
    let plan = CreditPlan {
        id,
        tenant: tenant.clone(),
        name: req.name.into_string(),
        scope: req.scope,
        scope_id: req.scope_id.into_string(),
        credits: req.credits,
        currency: req.currency,
        recurrence: req.recurrence,
        expiration: req.expiration,
        priority: req.priority,
        metadata: req.metadata,
        status: PlanStatus::Published,
        start_date,
        end_date: req.end_date,
        conversion_rate: req.conversion_rate,
        created_at: now,
        updated_at: now,
        version: 0,
    };
    let claimed = insert_claimed(
        "credit plan",
        store.insert_credit_plan(&plan, claim.as_ref()),
        &fingerprint,
        |id| async move { store.get_credit_plan(tenant, &id).await },
        CreatePlanError::IdempotencyMismatch,
    )
    .await?;
    let plan = claimed
        .into_created(plan)
        .ok_or_else(|| StoreError::Corrupt("no parent to be unavailable".to_owned()))?;
    // Apply what is due at once (a replay too: it finishes what a failed first attempt began), so
    // credits show up without waiting for the schedule. Applications are idempotent per period.
    let (Created::New(p) | Created::Replayed(p)) = &plan;
    apply_plan(store, clock, p).await?;
    Ok(plan)
}

pub async fn get(store: &dyn PlanStore, tenant: &TenantId, id: &str) -> Result<CreditPlan, PlanLookupError> {
    store
        .get_credit_plan(tenant, id)
        .await?
        .ok_or(PlanLookupError::NotFound)
}

/// A change to name, metadata or end date (Flexprice `PUT`).
#[derive(Debug, Clone, Default)]
pub struct PlanUpdate {
    pub name: Option<Label>,
    pub metadata: Option<BTreeMap<String, String>>,
    pub end_date: Option<Timestamp>,
}

pub async fn update(
    store: &dyn PlanStore,
    clock: &dyn Clock,
    tenant: &TenantId,
    id: &str,
    change: PlanUpdate,
) -> Result<CreditPlan, UpdatePlanError> {
    let old = store
        .get_credit_plan(tenant, id)
        .await?
        .ok_or(UpdatePlanError::NotFound)?;
    if change.end_date.is_some_and(|e| e <= old.start_date) {
        return Err(UpdatePlanError::EndNotAfterStart);
    }
    let new = CreditPlan {
        name: change.name.map(Label::into_string).unwrap_or_else(|| old.name.clone()),
        metadata: change.metadata.unwrap_or_else(|| old.metadata.clone()),
        end_date: change.end_date.or(old.end_date),
        updated_at: clock.now(),
        version: old.version + 1,
        ..old.clone()
    };
    if store.replace_credit_plan(&new, old.version).await? {
        Ok(new)
    } else {
        Err(UpdatePlanError::Concurrent)
    }
}

/// Deletes (archives) a plan: no further applications. With `effective_date` (SUBSCRIPTION scope),
/// the plan ends then instead: applications continue until that instant, none after. Grants already
/// applied stay. Idempotent.
pub async fn delete(
    store: &dyn PlanStore,
    clock: &dyn Clock,
    tenant: &TenantId,
    id: &str,
    effective_date: Option<Timestamp>,
) -> Result<CreditPlan, DeletePlanError> {
    let old = store
        .get_credit_plan(tenant, id)
        .await?
        .ok_or(DeletePlanError::NotFound)?;
    let now = clock.now();
    let end = match effective_date {
        Some(e) if old.scope == PlanScope::Subscription && e > now => Some(e.max(old.start_date)),
        _ => None,
    };
    let new = match end {
        Some(e) => CreditPlan {
            end_date: Some(old.end_date.map_or(e, |x| x.min(e))),
            updated_at: now,
            version: old.version + 1,
            ..old.clone()
        },
        None if old.status == PlanStatus::Archived => return Ok(old),
        None => CreditPlan {
            status: PlanStatus::Archived,
            updated_at: now,
            version: old.version + 1,
            ..old.clone()
        },
    };
    if store.replace_credit_plan(&new, old.version).await? {
        Ok(new)
    } else {
        Err(DeletePlanError::Concurrent)
    }
}

/// `GET /v1/creditgrants` filters.
#[derive(Debug, Clone, Default)]
pub struct PlanFilter {
    pub status: Option<PlanStatus>,
    pub scope: Option<PlanScope>,
    pub plan_ids: Vec<String>,
    pub subscription_ids: Vec<String>,
    /// Created at or after.
    pub start_time: Option<Timestamp>,
    /// Created before.
    pub end_time: Option<Timestamp>,
}

impl PlanFilter {
    fn keeps(&self, p: &CreditPlan) -> bool {
        self.status.is_none_or(|s| s == p.status)
            && self.scope.is_none_or(|s| s == p.scope)
            && (self.plan_ids.is_empty() || (p.scope == PlanScope::Plan && self.plan_ids.contains(&p.scope_id)))
            && (self.subscription_ids.is_empty()
                || (p.scope == PlanScope::Subscription && self.subscription_ids.contains(&p.scope_id)))
            && self.start_time.is_none_or(|t| p.created_at >= t)
            && self.end_time.is_none_or(|t| p.created_at < t)
    }
}

pub async fn list(
    store: &dyn PlanStore,
    tenant: &TenantId,
    filter: &PlanFilter,
) -> Result<Vec<CreditPlan>, StoreError> {
    Ok(store
        .list_credit_plans(tenant)
        .await?
        .into_iter()
        .filter(|p| filter.keeps(p))
        .collect())
}
