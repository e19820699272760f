//! [`MemoryStore`] as the credit plans port ([`PlanStore`]).
use super::{ent_key, grant_key, MemoryStore};
use crate::model::{Claim, Entitlement, Grant};
use crate::plans::{CreditPlan, PlanScope, PlanStatus, PlanStore};
use crate::ports::{InsertOutcome, PlanApply, StoreError};
use crate::{EntitlementId, TenantId};
use async_trait::async_trait;

#[async_trait]
impl PlanStore for MemoryStore {
    async fn insert_credit_plan(&self, plan: &CreditPlan, claim: Option<&Claim>) -> Result<InsertOutcome, StoreError> {
        let mut st = self.state();
        let key = (plan.tenant.clone(), plan.id.clone());
        let exists = st.plans.contains_key(&key);
        if let Some(outcome) = st.claim_under_tenant(&plan.tenant, claim, exists)? {
            return Ok(outcome);
        }
        st.plans.insert(key, plan.clone());
        Ok(InsertOutcome::Inserted)
    }

    async fn get_credit_plan(&self, tenant: &TenantId, id: &str) -> Result<Option<CreditPlan>, StoreError> {
        Ok(self.state().plans.get(&(tenant.clone(), id.to_owned())).cloned())
    }

    async fn list_credit_plans(&self, tenant: &TenantId) -> Result<Vec<CreditPlan>, StoreError> {
        Ok(self
            .state()
            .plans
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|(_, p)| p.clone())
            .collect())
    }

    async fn replace_credit_plan(&self, plan: &CreditPlan, expected_version: u64) -> Result<bool, StoreError> {
        let mut st = self.state();
        let key = (plan.tenant.clone(), plan.id.clone());
        match st.plans.get_mut(&key) {
            Some(stored) if stored.version == expected_version => {
                *stored = plan.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn active_credit_plans(&self) -> Result<Vec<CreditPlan>, StoreError> {
        let st = self.state();
        let mut plans: Vec<(String, &CreditPlan)> = st
            .plans
            .values()
            .filter(|p| p.status == PlanStatus::Published)
            .map(|p| (format!("{}#{}", p.tenant, p.id), p))
            .collect();
        plans.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(plans.into_iter().map(|(_, p)| p.clone()).collect())
    }

    async fn entitlements_in_scope(
        &self,
        tenant: &TenantId,
        scope: PlanScope,
        scope_id: &str,
    ) -> Result<Vec<Entitlement>, StoreError> {
        Ok(self
            .state()
            .entitlements
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|(_, s)| &s.entitlement)
            .filter(|e| match scope {
                PlanScope::Subscription => e.subscription_id.as_deref() == Some(scope_id),
                PlanScope::Plan => e.plan_id.as_deref() == Some(scope_id),
            })
            .cloned()
            .collect())
    }

    async fn plan_progress(
        &self,
        tenant: &TenantId,
        entitlement: &EntitlementId,
        plan_id: &str,
    ) -> Result<u64, StoreError> {
        Ok(self
            .state()
            .plan_progress
            .get(&(ent_key(tenant, entitlement), plan_id.to_owned()))
            .copied()
            .unwrap_or(0))
    }

    async fn apply_plan_period(
        &self,
        grant: &Grant,
        plan_id: &str,
        expected: u64,
        next: u64,
    ) -> Result<PlanApply, StoreError> {
        let key = grant_key(grant);
        let mut st = self.state();
        if !st.is_active(&key) {
            return Ok(PlanApply::EntitlementInactive);
        }
        let progress_key = (key, plan_id.to_owned());
        let at_expected = match st.plan_progress.get(&progress_key) {
            None => expected == 0,
            Some(stored) => expected != 0 && *stored == expected,
        };
        if !at_expected || st.grant_exists(grant) {
            return Ok(PlanApply::Moved);
        }
        st.plan_progress.insert(progress_key, next);
        st.put_grant(grant);
        st.outbox.push(crate::webhook_messages::grant_created(grant));
        Ok(PlanApply::Applied)
    }
}
