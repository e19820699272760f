//! Scheduling: which periods of a plan are due for an entitlement, the grant each application
//! creates, and the runs that apply them.
use super::{Cadence, CreditPlan, Expiration, PlanApply, PlanStatus, PlanStore, Recurrence, Span};
use crate::kernel::StoreError;
use crate::model::{Entitlement, EntitlementStatus, Grant, GrantDetails, NewGrantFields};
use crate::{Clock, Priority, TenantId, Timestamp};
use rust_decimal::Decimal;

/// The most applications of one plan to one entitlement made in one run; the rest come next run.
const MAX_APPLICATIONS_PER_RUN: usize = 50;

impl CreditPlan {
    pub fn cadence(&self) -> Cadence {
        match self.recurrence {
            Recurrence::Once => Cadence::Onetime,
            Recurrence::Every(..) => Cadence::Recurring,
        }
    }

    /// Start of period `k` (0-based); None past the supported range.
    fn period_start(&self, k: u64) -> Option<Timestamp> {
        match self.recurrence {
            Recurrence::Once => (k == 0).then_some(self.start_date),
            Recurrence::Every(p, count) => p.span(count).times(self.start_date, k),
        }
    }

    /// Periods due for an entitlement at `now`, from period `next` on: those that have started,
    /// start before `end_date`, and end after the entitlement was provisioned (an entitlement gets
    /// the period it joined in, not earlier ones). At most [`MAX_APPLICATIONS_PER_RUN`].
    fn due_periods(&self, entitlement: &Entitlement, next: u64, now: Timestamp) -> Vec<(u64, Timestamp)> {
        let mut out = Vec::new();
        let mut k = next;
        while out.len() < MAX_APPLICATIONS_PER_RUN {
            let Some(start) = self.period_start(k) else { break };
            if start > now || self.end_date.is_some_and(|e| start >= e) {
                break;
            }
            let end = self.period_start(k + 1);
            let joined = match (self.recurrence, end) {
                (Recurrence::Once, _) => true,
                (_, Some(end)) => end > entitlement.created_at,
                (_, None) => true,
            };
            if joined {
                out.push((k, start));
            }
            k += 1;
            if self.recurrence == Recurrence::Once {
                break;
            }
        }
        out
    }

    /// The grant that applying period `k` (starting at `start`) to the entitlement creates.
    fn application(&self, entitlement: &Entitlement, k: u64, start: Timestamp, now: Timestamp) -> Grant {
        let expires_at = match self.expiration {
            Expiration::Never => None,
            Expiration::After(n, unit) => unit.span(n).times(start, 1),
            Expiration::BillingCycle => Some(entitlement.current_period_end)
                .filter(|e| *e > start)
                .or_else(|| Span::Months(1).times(start, 1)),
        };
        Grant::new(NewGrantFields {
            tenant: self.tenant.clone(),
            entitlement_id: entitlement.id.clone(),
            customer_id: entitlement.customer_id.clone(),
            amount: self.credits,
            effective_at: start,
            created_at: now,
            credit_type_id: entitlement.pricing_unit_id.clone(),
        })
        .with_expiry(expires_at)
        .with_priority(self.priority.and_then(|p| Priority::new(Decimal::from(p)).ok()))
        .with_recurrence_period(match self.recurrence {
            Recurrence::Once => None,
            Recurrence::Every(p, c) => Some(p.iso(c)),
        })
        .with_idempotency_key(Some(format!("creditgrant:{}:{k}", self.id)))
        .with_details(GrantDetails {
            name: Some(self.name.clone()),
            reason: Some(format!("credit grant {}", self.id)),
            ..GrantDetails::default()
        })
    }
}

/// What one application run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    pub grants: usize,
    pub entitlements: usize,
}

/// Applies every due period of one plan to every entitlement in its scope.
pub(crate) async fn apply_plan(
    store: &dyn PlanStore,
    clock: &dyn Clock,
    plan: &CreditPlan,
) -> Result<Applied, StoreError> {
    let mut done = Applied::default();
    if plan.status != PlanStatus::Published {
        return Ok(done);
    }
    let now = clock.now();
    for entitlement in store
        .entitlements_in_scope(&plan.tenant, plan.scope, &plan.scope_id)
        .await?
    {
        if entitlement.status != EntitlementStatus::Active {
            continue;
        }
        done.entitlements += 1;
        let mut progress = store.plan_progress(&plan.tenant, &entitlement.id, &plan.id).await?;
        for (k, start) in plan.due_periods(&entitlement, progress, now) {
            let grant = plan.application(&entitlement, k, start, now);
            match store.apply_plan_period(&grant, &plan.id, progress, k + 1).await? {
                PlanApply::Applied => {
                    done.grants += 1;
                    progress = k + 1;
                }
                // Another run got there first, or the entitlement was cancelled: next time.
                PlanApply::Moved | PlanApply::EntitlementInactive => break,
            }
        }
    }
    Ok(done)
}

/// The scheduled run: every published plan of every tenant, until `deadline` (the rest is the
/// next run's: progress is kept per plan and entitlement). One plan's failure, whichever tenant's,
/// is logged and skipped; it never stops the others.
pub async fn apply_all(
    store: &dyn PlanStore,
    clock: &dyn Clock,
    deadline: std::time::Instant,
) -> Result<Applied, StoreError> {
    let mut total = Applied::default();
    for plan in store.active_credit_plans().await? {
        if std::time::Instant::now() >= deadline {
            tracing::warn!(
                grants = total.grants,
                "plan applications stopped at the run's time budget; the next run goes on"
            );
            break;
        }
        match apply_plan(store, clock, &plan).await {
            Ok(done) => {
                total.grants += done.grants;
                total.entitlements += done.entitlements;
            }
            Err(e) => {
                tracing::error!(tenant = %plan.tenant, plan = %plan.id, error = %e, "plan application failed; skipped")
            }
        }
    }
    Ok(total)
}

/// Every published plan of one tenant (the per-tenant form of [`apply_all`]).
pub async fn apply_tenant(store: &dyn PlanStore, clock: &dyn Clock, tenant: &TenantId) -> Result<Applied, StoreError> {
    let mut total = Applied::default();
    for plan in store
        .list_credit_plans(tenant)
        .await?
        .into_iter()
        .filter(|p| p.status == PlanStatus::Published)
    {
        let done = apply_plan(store, clock, &plan).await?;
        total.grants += done.grants;
        total.entitlements += done.entitlements;
    }
    Ok(total)
}
