//! [`MemoryStore`] as the grants port ([`GrantStore`]).
use super::{ent_key, grant_key, query_limit, MemoryStore, Partition};
use crate::grants::{GrantEdit, GrantStore};
use crate::model::{Claim, Grant};
use crate::ports::{EditOutcome, InsertOutcome, StoreError};
use crate::webhook_messages;
use crate::{EntitlementId, GrantId, TenantId, Timestamp};
use async_trait::async_trait;

#[async_trait]
impl GrantStore for MemoryStore {
    async fn insert_grant(
        &self,
        grant: &Grant,
        claim: Option<&Claim>,
        period_start: Option<Timestamp>,
    ) -> Result<InsertOutcome, StoreError> {
        let mut st = self.state();
        let exists = st.grant_exists(grant);
        if let Some(outcome) = st.claim_under_entitlement(&grant_key(grant), claim, period_start, exists)? {
            return Ok(outcome);
        }
        st.put_grant(grant);
        st.outbox.push(webhook_messages::grant_created(grant));
        Ok(InsertOutcome::Inserted)
    }

    async fn find_grant(&self, tenant: &TenantId, id: &GrantId) -> Result<Option<Grant>, StoreError> {
        Ok(self
            .state()
            .grants
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .find_map(|(_, m)| m.get(id).cloned()))
    }

    async fn grants_after(
        &self,
        tenant: &TenantId,
        customer_id: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Grant>, bool), StoreError> {
        let limit = query_limit(limit)?;
        let st = self.state();
        let mut matching: Vec<&Grant> = st
            .grants
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .flat_map(|(_, m)| m.values())
            .filter(|g| customer_id.is_none_or(|c| g.customer_id == c))
            .filter(|g| match (customer_id, after) {
                (_, None) => true,
                // The tenant index reads ids after the cursor.
                (None, Some(a)) => g.id.as_str() > a,
                // The customer index reads from the cursor itself (BETWEEN), so the cursor's own
                // grant counts toward the limit and is dropped afterwards.
                (Some(_), Some(a)) => g.id.as_str() >= a,
            })
            .collect();
        matching.sort_by(|a, b| a.id.cmp(&b.id));
        matching.truncate(limit);
        // DynamoDB says "more" (a LastEvaluatedKey) whenever a read stops at its limit.
        let exhausted = matching.len() < limit;
        let grants = matching
            .into_iter()
            .filter(|g| after.is_none_or(|a| g.id.as_str() != a))
            .cloned()
            .collect();
        Ok((grants, exhausted))
    }

    async fn edit_grant(&self, tenant: &TenantId, edit: &GrantEdit) -> Result<EditOutcome, StoreError> {
        let mut st = self.state();
        let Some(g) = st
            .grants
            .get_mut(&ent_key(tenant, &edit.entitlement_id))
            .and_then(|m| m.get_mut(&edit.id))
        else {
            return Ok(EditOutcome::Missing);
        };
        if let Some(expires) = edit.expires_at {
            if let Some(used) = g.last_used_at.filter(|used| *used >= expires) {
                return Ok(EditOutcome::UsedAfterExpiry(used));
            }
        }
        if let Some(name) = &edit.name {
            g.details.name = Some(name.clone());
        }
        if let Some(expires) = edit.expires_at {
            g.expires_at = Some(expires);
        }
        if let Some(t) = &edit.credit_grant_type {
            g.details.credit_grant_type = Some(t.clone());
        }
        g.version += 1;
        Ok(EditOutcome::Edited(Box::new(g.clone())))
    }

    async fn release_claim(
        &self,
        tenant: &TenantId,
        entitlement: &EntitlementId,
        scope: &str,
        key: &str,
    ) -> Result<(), StoreError> {
        let partition = Partition::Entitlement(ent_key(tenant, entitlement));
        self.state()
            .claims
            .remove(&(partition, scope.to_owned(), key.to_owned()));
        Ok(())
    }

    async fn get_grant(
        &self,
        tenant: &TenantId,
        entitlement: &EntitlementId,
        id: &GrantId,
    ) -> Result<Option<Grant>, StoreError> {
        Ok(self.state().grant(&ent_key(tenant, entitlement), id).cloned())
    }

    async fn list_grants(&self, tenant: &TenantId, entitlement: &EntitlementId) -> Result<Vec<Grant>, StoreError> {
        Ok(self
            .state()
            .grants
            .get(&ent_key(tenant, entitlement))
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn void_grant(
        &self,
        tenant: &TenantId,
        entitlement: &EntitlementId,
        id: &GrantId,
        at: Timestamp,
    ) -> Result<Option<Grant>, StoreError> {
        let mut st = self.state();
        let Some(g) = st
            .grants
            .get_mut(&ent_key(tenant, entitlement))
            .and_then(|m| m.get_mut(id))
        else {
            return Ok(None);
        };
        if g.voided_at.is_some() {
            return Ok(Some(g.clone()));
        }
        g.voided_at = Some(at);
        g.version += 1;
        let voided = g.clone();
        st.outbox.push(webhook_messages::grant_voided(&voided));
        Ok(Some(voided))
    }
}
