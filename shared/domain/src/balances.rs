//! Reads of the ledger whose cost is bounded by the present, not by the length of history: an
//! entitlement's balance now and at any instant, and its usage per day.
//!
//! - **Now**: the grants' stored remainders and the pending holds (one read of the entitlement,
//!   its grants and its holds), plus the committed overage of the period, from the log.
//! - **At a past instant**: the committed usage that occurred by then is read from the log's
//!   checkpoints ([`crate::ledger::history`]): one checkpoint and at most one window of entries
//!   ([`crate::ledger::CHECKPOINT_EVERY`]), plus the backdated ("late") entries that occurred by then.
//! - An entitlement created before the log existed ([`Entitlement::log`] None) is read from every
//!   usage record, as before.
use crate::kernel::StoreError;
use crate::ledger::{self, Balance, Bound, Checkpoint, Day, LogEntry, LogHead, Posting, Start, Totals};
use crate::model::{Entitlement, Grant};
use crate::usage::{UsageRecord, UsageStore};
use crate::{Clock, EntitlementId, TenantId, Timestamp};

/// The ledger as it is now: the entitlement, all its grants, and its pending usage records.
#[derive(Debug, Clone, PartialEq)]
pub struct Present {
    pub entitlement: Entitlement,
    pub grants: Vec<Grant>,
    /// Pending usage (holds), in no particular order.
    pub holds: Vec<UsageRecord>,
}

impl Present {
    pub fn hold_postings(&self) -> Vec<Posting> {
        self.holds.iter().map(UsageRecord::posting).collect()
    }
}

/// The storage port of the bounded reads. Implemented by `grants_dynamo::DynamoStore` and
/// [`crate::memory::MemoryStore`]; the contract tests hold both to the same behaviour.
#[async_trait::async_trait]
pub trait LedgerStore: Send + Sync {
    /// The entitlement, its grants and its pending holds, in one read; None when it does not exist.
    async fn load_present(&self, tenant: &TenantId, id: &EntitlementId) -> Result<Option<Present>, StoreError>;
    /// The first checkpoint made after `bound` (its instant after `t` for `Through(t)`, at or
    /// after `t` for `Before(t)`), if any: read side by side with the entitlement, before its log
    /// head is known.
    async fn checkpoint_after(
        &self,
        tenant: &TenantId,
        id: &EntitlementId,
        bound: Bound,
    ) -> Result<Option<Checkpoint>, StoreError>;
    /// Where a read of the log for `bound` starts, and the entries after that start it needs (see
    /// [`ledger::start_for`]): with [`Start::Last`], the log's tail after that checkpoint up to
    /// `head.seq`; with [`Start::After`], the late entries written after the checkpoint that
    /// occurred within the bound. Entries beyond `head.seq` are never returned. `after` is what
    /// [`LedgerStore::checkpoint_after`] found for the bound (the store may read it itself when
    /// None).
    async fn read_log(
        &self,
        tenant: &TenantId,
        id: &EntitlementId,
        head: &LogHead,
        bound: Bound,
        after: Option<Checkpoint>,
    ) -> Result<(Start, Vec<LogEntry>), StoreError>;
    /// [`LedgerStore::load_present`] and the entitlement's committed usage per UTC day (oldest
    /// first), in one read.
    async fn load_present_with_days(
        &self,
        tenant: &TenantId,
        id: &EntitlementId,
    ) -> Result<Option<(Present, Vec<Day>)>, StoreError>;
}

/// The committed usage of an entitlement that occurred within `bound` (`after`: see
/// [`LedgerStore::read_log`]).
pub async fn totals_within<S: LedgerStore + ?Sized>(
    store: &S,
    tenant: &TenantId,
    id: &EntitlementId,
    head: &LogHead,
    bound: Bound,
    after: Option<Checkpoint>,
) -> Result<Totals, StoreError> {
    let (start, later) = store.read_log(tenant, id, head, bound, after).await?;
    Ok(ledger::totals_within(bound, &start, &later))
}

/// An entitlement with its balance at `at` (default: now); None when it does not exist.
pub async fn balance<S>(
    store: &S,
    clock: &dyn Clock,
    tenant: &TenantId,
    id: &EntitlementId,
    at: Option<Timestamp>,
) -> Result<Option<(Entitlement, Balance)>, StoreError>
where
    S: LedgerStore + UsageStore + ?Sized,
{
    let now = clock.now();
    let past = at.filter(|t| *t < now);
    let at = at.unwrap_or(now);
    // For a past instant, the first checkpoint after it is looked up beside the entitlement.
    let after = async {
        match past {
            Some(t) => store.checkpoint_after(tenant, id, Bound::Through(t)).await,
            None => Ok(None),
        }
    };
    let (present, after) = futures::try_join!(store.load_present(tenant, id), after)?;
    let Some(present) = present else {
        return Ok(None);
    };
    let since = present.entitlement.current_period_start;
    let Some(head) = present.entitlement.log.clone() else {
        return legacy_balance(store, tenant, id, at).await;
    };
    let holds = present.hold_postings();
    // Every logged entry occurred by now: at (or after) now, the totals are the remainders.
    let through = async {
        if at >= now {
            Ok(Totals::from_remainders(&present.grants, head.overage_total))
        } else {
            totals_within(store, tenant, id, &head, Bound::Through(at), after).await
        }
    };
    let before_since = async {
        if since > at {
            Ok(None)
        } else if head.overage_total.is_zero() {
            // No overage was ever logged: nothing to take away, and nothing to read.
            Ok(Some(Totals::default()))
        } else {
            totals_within(store, tenant, id, &head, Bound::Before(since), None)
                .await
                .map(Some)
        }
    };
    let (through, before_since) = futures::try_join!(through, before_since)?;
    let balance = ledger::balance_from(&present.grants, &through, before_since.as_ref(), &holds, at, since);
    Ok(Some((present.entitlement, balance)))
}

/// The balance of an entitlement without a log, from every usage record.
async fn legacy_balance<S>(
    store: &S,
    tenant: &TenantId,
    id: &EntitlementId,
    at: Timestamp,
) -> Result<Option<(Entitlement, Balance)>, StoreError>
where
    S: UsageStore + ?Sized,
{
    let Some((entitlement, grants, usage)) = store.load_ledger(tenant, id).await? else {
        return Ok(None);
    };
    let postings: Vec<Posting> = usage.iter().map(UsageRecord::posting).collect();
    let balance = ledger::balance_at(&grants, &postings, at, entitlement.current_period_start);
    Ok(Some((entitlement, balance)))
}

/// The ledger of an entitlement for listings: now, and its usage per day. None when it does not
/// exist.
pub async fn present_with_days<S>(
    store: &S,
    tenant: &TenantId,
    id: &EntitlementId,
) -> Result<Option<(Present, Vec<Day>)>, StoreError>
where
    S: LedgerStore + UsageStore + ?Sized,
{
    let Some((mut present, days)) = store.load_present_with_days(tenant, id).await? else {
        return Ok(None);
    };
    if present.entitlement.log.is_some() {
        return Ok(Some((present, days)));
    }
    // Written before the log: its days are summed from every usage record, and its pending
    // records may predate their holds.
    let Some((_, _, usage)) = store.load_ledger(tenant, id).await? else {
        return Ok(None);
    };
    let postings: Vec<Posting> = usage.iter().map(UsageRecord::posting).collect();
    present.holds = usage
        .into_iter()
        .filter(|u| u.status == ledger::UsageStatus::Pending)
        .collect();
    Ok(Some((present, ledger::days_of(&postings))))
}
