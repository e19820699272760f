//! [`MemoryStore`] as the purchases port ([`PurchaseStore`]).
use super::{ent_key, query_limit, MemoryStore};
use crate::model::{Claim, Grant};
use crate::ports::{InsertOutcome, StoreError};
use crate::purchases::{Invoice, InvoiceStatus, PurchaseStore};
use crate::webhook_messages;
use crate::{InvoiceId, SessionId, TenantId, Timestamp};
use async_trait::async_trait;

#[async_trait]
impl PurchaseStore for MemoryStore {
    async fn insert_purchase(&self, invoice: &Invoice, claim: &Claim) -> Result<InsertOutcome, StoreError> {
        let mut st = self.state();
        let key = (invoice.tenant.clone(), invoice.id.clone());
        let exists = st.invoices.contains_key(&key) || st.sessions.contains_key(&invoice.session.id);
        let parent = ent_key(&invoice.tenant, &invoice.entitlement_id);
        if let Some(outcome) = st.claim_under_entitlement(&parent, Some(claim), None, exists)? {
            return Ok(outcome);
        }
        st.invoices.insert(key, invoice.clone());
        st.sessions
            .insert(invoice.session.id.clone(), (invoice.tenant.clone(), invoice.id.clone()));
        Ok(InsertOutcome::Inserted)
    }

    async fn get_invoice(&self, tenant: &TenantId, id: &InvoiceId) -> Result<Option<Invoice>, StoreError> {
        Ok(self.state().invoices.get(&(tenant.clone(), id.clone())).cloned())
    }

    async fn find_session(&self, id: &SessionId) -> Result<Option<(TenantId, InvoiceId)>, StoreError> {
        Ok(self.state().sessions.get(id).cloned())
    }

    async fn update_invoice(&self, invoice: &Invoice, expected_version: u64) -> Result<bool, StoreError> {
        let mut st = self.state();
        match st.invoices.get_mut(&(invoice.tenant.clone(), invoice.id.clone())) {
            Some(stored) if stored.version == expected_version => {
                *stored = invoice.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn cancel_invoice(&self, invoice: &Invoice, expected_version: u64) -> Result<bool, StoreError> {
        let mut st = self.state();
        match st.invoices.get_mut(&(invoice.tenant.clone(), invoice.id.clone())) {
            Some(stored) if stored.version == expected_version => {
                *stored = invoice.clone();
                st.outbox.push(webhook_messages::purchase_canceled(invoice));
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn record_refund(
        &self,
        invoice: &Invoice,
        expected_version: u64,
        reduction: &crate::purchases::GrantReduction,
        ledger: Option<&crate::purchases::RefundLedger>,
    ) -> Result<bool, StoreError> {
        let key = ledger
            .map(|l| super::usage::usage_transaction(&l.record, &l.grants, l.log.as_ref(), false))
            .transpose()?;
        let mut st = self.state();
        let invoice_key = (invoice.tenant.clone(), invoice.id.clone());
        if st
            .invoices
            .get(&invoice_key)
            .is_none_or(|i| i.version != expected_version)
        {
            return Ok(false);
        }
        if let (Some(l), Some(key)) = (ledger, &key) {
            let applying = st.entitlement(key).is_some_and(|e| e.applying.is_some());
            if st.usage(key, &l.record.event_id).is_some()
                || !st.is_active(key)
                || applying
                || !st.grants_unmoved(&l.grants)
                || !st.log_unmoved(key, l.log.as_ref())
                || !st.lease_free(key, l.record.recorded_at)
            {
                return Ok(false);
            }
            st.put_usage(&l.record);
            st.append_log(key, l.log.as_ref(), l.record.rollover);
            for (g, _) in &l.grants {
                st.put_grant(g);
            }
        }
        st.invoices.insert(invoice_key, invoice.clone());
        st.outbox.push(webhook_messages::grant_reduced(reduction));
        Ok(true)
    }

    async fn settle_invoice(
        &self,
        invoice: &Invoice,
        expected_version: u64,
        grant: &Grant,
    ) -> Result<bool, StoreError> {
        let mut st = self.state();
        let key = (invoice.tenant.clone(), invoice.id.clone());
        let unmoved = st.invoices.get(&key).is_some_and(|i| i.version == expected_version);
        if !unmoved || st.grant_exists(grant) {
            return Ok(false);
        }
        st.invoices.insert(key, invoice.clone());
        st.put_grant(grant);
        st.outbox.push(webhook_messages::invoice_paid(invoice));
        st.outbox.push(webhook_messages::grant_created(grant));
        Ok(true)
    }

    async fn due_open_invoices(&self, now: Timestamp, limit: usize) -> Result<Vec<Invoice>, StoreError> {
        let limit = query_limit(limit)?;
        let st = self.state();
        let mut due: Vec<(String, &Invoice)> = st
            .invoices
            .values()
            .filter(|i| i.status == InvoiceStatus::Open && i.session.expires_at <= now)
            .map(|i| {
                // The index's sort key: session expiry, tenant, id.
                (
                    format!("{}#{}#{}", i.session.expires_at.to_storage(), i.tenant, i.id),
                    i,
                )
            })
            .collect();
        due.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(due.into_iter().take(limit).map(|(_, i)| i.clone()).collect())
    }
}
