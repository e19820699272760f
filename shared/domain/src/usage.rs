//! Usage against an entitlement: recorded (idempotent by event id), reserved when pending, then
//! committed or released; and the balance at any instant. The arithmetic is in [`super::ledger`];
//! this module turns it into conditional writes and retries them when another writer got there first.
use crate::combining::{Entry, Line, Turn, Waiting};
use crate::entitlement_store::EntitlementStore;
use crate::group_commit;
use crate::kernel::{Created, StoreError};
use crate::ledger::{self, Deduction, Effect, LogAppend, Posting, UsageStatus};
use crate::model::{Entitlement, Grant};
use crate::{Clock, CreditAmount, EntitlementId, TenantId, Timestamp};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::time::Duration;

/// DynamoDB takes at most 100 items per transaction: the usage record, the entitlement, its pending
/// hold, its log entry, that entry's late copy, a checkpoint, the day's usage, and up to this many
/// grants. An event that draws on more is applied over several transactions by the entitlement's
/// lease holder ([`group_commit::Application`]).
pub const MAX_GRANTS_PER_EVENT: usize = 93;

/// How many times a usage write that lost a race with another writer is recomputed and retried.
const STALE_RETRIES: u32 = 40;

/// A client's usage event id: 1..=255 characters, not blank, no control characters.
pub type UsageEventId = crate::kernel::Label;

/// The prefixes of the event ids the service writes itself on an entitlement's ledger (period
/// resets' rollover clamps, refunds' take-backs): a client's usage may not take them.
pub const RESERVED_EVENT_ID_PREFIXES: [&str; 2] = ["rollover:", "refund:"];

/// A new usage event's id as a client sends it: a [`UsageEventId`] that does not start with one of
/// [`RESERVED_EVENT_ID_PREFIXES`].
pub fn client_event_id(s: &str) -> Result<UsageEventId, String> {
    let id = UsageEventId::parse(s).map_err(|e| e.to_string())?;
    match RESERVED_EVENT_ID_PREFIXES.iter().find(|p| id.as_str().starts_with(*p)) {
        Some(p) => Err(format!(
            "must not start with {p:?} (reserved for the service's own ledger records)"
        )),
        None => Ok(id),
    }
}

/// A recorded usage event: what it drew from which grant, and what no grant covered.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageRecord {
    /// A period-reset rollover adjustment (see [`super::periods`]), not client usage.
    pub rollover: bool,
    pub tenant: TenantId,
    pub entitlement_id: EntitlementId,
    pub event_id: String,
    pub amount: Decimal,
    pub occurred_at: Timestamp,
    pub recorded_at: Timestamp,
    pub status: UsageStatus,
    pub deductions: Vec<Deduction>,
    pub overage: Decimal,
    /// When it was committed or released (pending events only).
    pub settled_at: Option<Timestamp>,
    /// The request's parameters as sent, for replay comparison.
    pub fingerprint: BTreeMap<String, String>,
}

impl UsageRecord {
    /// A committed ledger adjustment the service makes itself (a period reset's rollover clamp, a
    /// refund's take-back): explicit deductions from grants, no amount of usage, counted in no
    /// period's usage. `event_id` starts with one of [`RESERVED_EVENT_ID_PREFIXES`].
    pub fn adjustment(
        tenant: &TenantId,
        entitlement_id: &EntitlementId,
        event_id: String,
        occurred_at: Timestamp,
        recorded_at: Timestamp,
        deductions: Vec<Deduction>,
    ) -> Self {
        debug_assert!(RESERVED_EVENT_ID_PREFIXES.iter().any(|p| event_id.starts_with(p)));
        Self {
            rollover: true,
            tenant: tenant.clone(),
            entitlement_id: entitlement_id.clone(),
            event_id,
            amount: Decimal::ZERO,
            occurred_at,
            recorded_at,
            status: UsageStatus::Committed,
            deductions,
            overage: Decimal::ZERO,
            settled_at: None,
            fingerprint: Default::default(),
        }
    }

    pub fn posting(&self) -> Posting {
        Posting {
            rollover: self.rollover,
            event_id: self.event_id.clone(),
            occurred_at: self.occurred_at,
            recorded_at: self.recorded_at,
            status: self.status,
            deductions: self.deductions.clone(),
            overage: self.overage,
        }
    }
}

/// What committed usage adds to the entitlement's period counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CounterDelta {
    pub usage: Decimal,
    pub overage: Decimal,
}

impl CounterDelta {
    /// Usage counts in the entitlement's period when it occurred at or after the period start.
    pub(crate) fn of(entitlement: &Entitlement, record: &UsageRecord) -> Self {
        debug_assert!(Decimal::ZERO <= record.overage && record.overage <= record.amount);
        if record.occurred_at >= entitlement.current_period_start {
            CounterDelta {
                usage: record.amount,
                overage: record.overage,
            }
        } else {
            CounterDelta::default()
        }
    }
}

/// A validated usage request.
#[derive(Debug, Clone)]
pub struct NewUsage {
    pub entitlement_id: EntitlementId,
    pub event_id: UsageEventId,
    pub amount: CreditAmount,
    pub occurred_at: Option<Timestamp>,
    pub pending: bool,
}

impl NewUsage {
    fn fingerprint(&self) -> BTreeMap<String, String> {
        let mut f = BTreeMap::from([
            ("amount".to_owned(), self.amount.value().to_string()),
            ("pending".to_owned(), self.pending.to_string()),
        ]);
        if let Some(t) = self.occurred_at {
            f.insert("occurredAt".to_owned(), t.to_storage());
        }
        f
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error("entitlement not found")]
    EntitlementNotFound,
    #[error("entitlement is {0}, not active")]
    EntitlementNotActive(&'static str),
    #[error("occurredAt is in the future")]
    OccurredInFuture,
    #[error("pending usage would hold {0} grants; one pending event can hold at most {MAX_GRANTS_PER_EVENT}")]
    TooManyGrantsToHold(usize),
    #[error("eventId reused with different parameters: {}", .0.join(", "))]
    IdempotencyMismatch(Vec<String>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The grants an allocation changes, with their new state (version bumped) and the version read.
pub(crate) fn changed(
    grants: &[Grant],
    deductions: &[Deduction],
    effect: Effect,
    occurred_at: Timestamp,
) -> Vec<(Grant, u64)> {
    let mut after = grants.to_vec();
    let touched = ledger::apply(&mut after, deductions, effect);
    after
        .into_iter()
        .filter(|g| touched.contains(&g.id))
        .map(|mut g| {
            let read = g.version;
            g.version += 1;
            g.last_used_at = g.last_used_at.max(Some(occurred_at));
            (g, read)
        })
        .collect()
}

/// All of an entitlement's grants with `writes` applied: what its log's checkpoint sums.
pub(crate) fn grants_after(grants: &[Grant], writes: &[(Grant, u64)]) -> Vec<Grant> {
    grants
        .iter()
        .map(|g| {
            writes
                .iter()
                .find(|(w, _)| w.id == g.id)
                .map_or_else(|| g.clone(), |(w, _)| w.clone())
        })
        .collect()
}

/// The log append of a committed effect on an entitlement with a log (None without one).
pub(crate) fn log_append(
    entitlement: &Entitlement,
    grants: &[Grant],
    writes: &[(Grant, u64)],
    posting: &Posting,
) -> Option<LogAppend> {
    let head = entitlement.log.as_ref()?;
    Some(ledger::append(
        head,
        &grants_after(grants, writes),
        posting.occurred_at,
        posting.deductions.clone(),
        posting.overage,
    ))
}

/// Records usage: draws on the grants in burn-down order (or holds them, when pending) in one
/// conditional transaction; overage goes on the entitlement. Idempotent by event id. Committed
/// usage that arrives while another request on the same entitlement is being written in this
/// process waits in the entitlement's line and is written with the others in one transaction
/// ([`combining`]). When a transaction of its own loses a race with another process (or a batch is
/// being applied), the event is applied by group commit ([`group_commit`]). Either way this returns
/// once the event is applied: `Created::New` with its record, or `Created::Replayed` with the
/// record first written under its event id.
///
/// Errors: the entitlement is missing or not active, `occurredAt` is in the future, the event id
/// was used with other parameters, pending usage would hold too many grants, or the store failed
/// ([`StoreError::Contention`] when the event could not be applied within the wait budget).
pub async fn record_usage<S>(
    store: &S,
    clock: &dyn Clock,
    tenant: &TenantId,
    req: NewUsage,
) -> Result<Created<UsageRecord>, UsageError>
where
    S: UsageStore + EntitlementStore + group_commit::UsageQueue + ?Sized,
{
    let now = clock.now();
    let at = req.occurred_at.unwrap_or(now);
    if at > now {
        return Err(UsageError::OccurredInFuture);
    }
    let fingerprint = req.fingerprint();
    // The request as queued: the event without its allocation.
    let request = UsageRecord {
        rollover: false,
        tenant: tenant.clone(),
        entitlement_id: req.entitlement_id.clone(),
        event_id: req.event_id.as_str().to_owned(),
        amount: req.amount.value(),
        occurred_at: at,
        recorded_at: now,
        status: if req.pending {
            UsageStatus::Pending
        } else {
            UsageStatus::Committed
        },
        deductions: Vec::new(),
        overage: Decimal::ZERO,
        settled_at: None,
        fingerprint: fingerprint.clone(),
    };
    if req.pending {
        // A hold is written on its own: its answer says what it holds now.
        return record_alone(store, clock, &request, &fingerprint, None).await;
    }
    match store.combiner().enter(&request) {
        Entry::First(line) => lead(store, clock, &request, &fingerprint, line).await,
        Entry::Behind(turn) => match turn.await {
            Ok(Turn::Applied(record)) => answer(record, &request, &fingerprint),
            Ok(Turn::Lead(line)) => lead(store, clock, &request, &fingerprint, line).await,
            // Not written with the others (or the leader went away without an answer).
            Ok(Turn::Alone) | Err(_) => record_alone(store, clock, &request, &fingerprint, None).await,
        },
    }
}

/// How many times the leader of a line tries to take the entitlement's lease before everyone in
/// it goes on alone, and the pause between tries (about a transaction's time on DynamoDB Local,
/// plus up to 10 ms of jitter).
const COMBINED_ATTEMPTS: u32 = 80;
const COMBINED_PAUSE: Duration = Duration::from_millis(8);

/// After this many failed tries for the lease (about 0.1-0.2 s, longer than a lease holder usually
/// keeps it), the leader reads the entitlement once: a missing or inactive one sends the line on
/// alone at once instead of after every try. (A lost race for the lease costs no read.)
const LEASE_TRIES_BEFORE_CHECK: u32 = 10;

/// How many times a leader that holds the lease plans its line's batch again after the write found
/// an event recorded already or the grants moved.
const COMBINED_REPLANS: u32 = 8;

/// The leader of the entitlement's line ([`combining`]): alone when nobody waits behind it, else
/// writes its request with every waiting one.
async fn lead<S>(
    store: &S,
    clock: &dyn Clock,
    own: &UsageRecord,
    fingerprint: &BTreeMap<String, String>,
    mut line: Line,
) -> Result<Created<UsageRecord>, UsageError>
where
    S: UsageStore + EntitlementStore + group_commit::UsageQueue + ?Sized,
{
    let behind = line.take_waiting();
    if behind.is_empty() {
        // Requests that arrive meanwhile wait for this one, and are written together next (the
        // line is handed on if this one has to join the entitlement's queue).
        return record_alone(store, clock, own, fingerprint, Some(line)).await;
    }
    write_together(store, clock, own, fingerprint, behind, line).await
}

/// Writes the leader's request and those waiting behind it in one transaction, as the holder of
/// the entitlement's lease (so writers in other processes take turns with it, instead of racing
/// it): the lease is taken, the batch planned in the order the requests were recorded
/// ([`group_commit::plan_batch`], the same allocation as one at a time), written with
/// [`group_commit::UsageQueue::write_batch`], and the lease given up. Requests that arrive while it
/// waits for the lease join the batch, and so do requests other processes queued on the
/// entitlement (their writers find their records). Each waiter is answered with its record, or told
/// to go on alone (a replay, no room in the transaction, the lease not had within
/// [`COMBINED_ATTEMPTS`] tries), as the leader then does for its own request if it was not written,
/// after handing the line on. Errors: the store's, for the leader's request (its waiters then go on
/// alone); or [`record_usage`]'s, from the leader's own fallback.
async fn write_together<S>(
    store: &S,
    clock: &dyn Clock,
    own: &UsageRecord,
    fingerprint: &BTreeMap<String, String>,
    mut behind: Vec<Waiting>,
    mut line: Line,
) -> Result<Created<UsageRecord>, UsageError>
where
    S: UsageStore + EntitlementStore + group_commit::UsageQueue + ?Sized,
{
    let (tenant, id) = (&own.tenant, &own.entitlement_id);
    let owner = group_commit::lease_owner();
    let mut written = Vec::new();
    for attempt in 0..COMBINED_ATTEMPTS {
        let now = clock.now();
        let until = now.plus_seconds(group_commit::LEASE_SECONDS).unwrap_or(now);
        let taken = store.take_lease(tenant, id, &owner, until, now).await?;
        behind.extend(line.take_waiting());
        if !taken {
            // Another writer holds the lease, or there is no active entitlement to lease (then
            // everyone goes on alone, and gets the error).
            if attempt == LEASE_TRIES_BEFORE_CHECK
                && !store
                    .load_entitlement(tenant, id)
                    .await?
                    .is_some_and(|(e, _)| e.is_active())
            {
                break;
            }
            group_commit::sleep_about(COMBINED_PAUSE).await;
            continue;
        }
        let requests: Vec<UsageRecord> = std::iter::once(own.clone())
            .chain(behind.iter().map(|w| w.request.clone()))
            .collect();
        // Another process held the lease: it may have left requests queued (they join the batch).
        let outcome = write_under_lease(store, clock, &requests, &owner, attempt > 0).await;
        if let Err(error) = store.release_lease(tenant, id, &owner).await {
            // The batch's outcome stands; the lease lapses by itself after LEASE_SECONDS.
            tracing::warn!(%error, "could not give up the entitlement's lease after a combined write");
        }
        written = outcome?;
        break;
    }
    let mut own_record = None;
    for record in written {
        if record.event_id == own.event_id && record.recorded_at == own.recorded_at {
            own_record = Some(record);
        } else if let Some(i) = behind
            .iter()
            .position(|w| w.request.event_id == record.event_id && w.request.recorded_at == record.recorded_at)
        {
            behind.remove(i).answer(Turn::Applied(record));
        }
    }
    for waiter in behind {
        waiter.answer(Turn::Alone);
    }
    match own_record {
        Some(record) => Ok(Created::New(record)),
        None => {
            drop(line);
            record_alone(store, clock, own, fingerprint, None).await
        }
    }
}

/// Plans and writes one batch of `requests` (in the order recorded), with the requests other processes queued on
/// the entitlement when `with_queue` (one more Query), while `owner` holds the lease: the records
/// written (empty when none could be: the entitlement is missing or not active, a multi-step
/// application is under way, the lease was lost, or the grants kept moving).
async fn write_under_lease<S>(
    store: &S,
    clock: &dyn Clock,
    requests: &[UsageRecord],
    owner: &str,
    with_queue: bool,
) -> Result<Vec<UsageRecord>, StoreError>
where
    S: UsageStore + EntitlementStore + group_commit::UsageQueue + ?Sized,
{
    let Some(first) = requests.first() else {
        return Ok(Vec::new());
    };
    // Events found recorded already: taken out of the batch (they go on alone, as replays).
    let mut recorded = std::collections::BTreeSet::new();
    for _ in 0..COMBINED_REPLANS {
        let Some((entitlement, grants)) = store.load_entitlement(&first.tenant, &first.entitlement_id).await? else {
            return Ok(Vec::new());
        };
        if entitlement.applying.is_some() || !entitlement.is_active() {
            return Ok(Vec::new());
        }
        let queued = if with_queue {
            store
                .queued_usage(&first.tenant, &first.entitlement_id, group_commit::QUEUE_READ)
                .await?
        } else {
            Vec::new()
        };
        let in_queue: std::collections::BTreeSet<(String, Timestamp)> =
            queued.iter().map(|q| (q.event_id.clone(), q.recorded_at)).collect();
        let mut all: Vec<UsageRecord> = requests.iter().cloned().chain(queued).collect();
        all.sort_by_key(|r| r.recorded_at);
        let mut batch = group_commit::plan_batch(&entitlement, &grants, &all, &recorded, owner, clock.now());
        if batch.records.is_empty() {
            return Ok(Vec::new());
        }
        // Only the queued requests are taken off the queue (the line's were never on it).
        batch.dequeued.retain(|d| in_queue.contains(d));
        match store.write_batch(&batch).await? {
            group_commit::BatchWrite::Written => return Ok(batch.records),
            // A replay of a recorded event: it goes on alone, and is answered with its record.
            group_commit::BatchWrite::Exists(event) => {
                recorded.insert(event);
            }
            group_commit::BatchWrite::LeaseLost => return Ok(Vec::new()),
            group_commit::BatchWrite::Stale => group_commit::sleep_about(COMBINED_PAUSE).await,
        }
    }
    Ok(Vec::new())
}

/// Records one usage request on its own: its own conditional transaction, or the entitlement's
/// queue when that loses a race or a batch is being applied ([`group_commit`]).
///
/// `line`: the entitlement's line in this process, when this request leads it: kept while the
/// request waits in the queue for at most [`LINE_HELD_IN_QUEUE`].
async fn record_alone<S>(
    store: &S,
    clock: &dyn Clock,
    request: &UsageRecord,
    fingerprint: &BTreeMap<String, String>,
    mut line: Option<Line>,
) -> Result<Created<UsageRecord>, UsageError>
where
    S: UsageStore + EntitlementStore + group_commit::UsageQueue + ?Sized,
{
    let (tenant, entitlement_id) = (&request.tenant, &request.entitlement_id);
    let (at, pending) = (request.occurred_at, request.status == UsageStatus::Pending);
    let now = clock.now();
    let busy = store.busy();
    if busy.is_busy(tenant, entitlement_id) {
        let first_look = busy.first_look(tenant, entitlement_id);
        // Usage on it is being applied in large batches: join the queue at once (the lease holder
        // checks the request against the entitlement; one it cannot apply comes back, and is
        // tried below).
        let waited = queue_holding_line(store, clock, request, Some(first_look), line.take()).await?;
        if let Some(applied) = &waited.record {
            if applied.recorded_at == request.recorded_at {
                // (A replay's record tells nothing of the entitlement now.)
                busy.saw(tenant, entitlement_id, &waited);
            }
            return answer(applied.clone(), request, fingerprint);
        }
    }
    for attempt in 0..STALE_RETRIES {
        let (entitlement, grants) = store
            .load_entitlement(tenant, entitlement_id)
            .await?
            .ok_or(UsageError::EntitlementNotFound)?;
        if !entitlement.is_active() {
            // A replay is still answered after the entitlement was cancelled.
            if let Some(old) = store.get_usage(tenant, entitlement_id, &request.event_id).await? {
                return replay(old, fingerprint);
            }
            return Err(UsageError::EntitlementNotActive(entitlement.status.as_str()));
        }
        let allocation = ledger::allocate(&grants, at, request.amount);
        // More grants than one transaction holds: applied over several by the lease holder. Not
        // for pending usage, whose commit or release must be written in one transaction.
        let large = allocation.deductions.len() > MAX_GRANTS_PER_EVENT;
        if large && pending {
            return Err(UsageError::TooManyGrantsToHold(allocation.deductions.len()));
        }
        let effect = if pending { Effect::Reserve } else { Effect::Consume };
        let grant_writes = changed(&grants, &allocation.deductions, effect, at);
        let record = UsageRecord {
            deductions: allocation.deductions,
            overage: allocation.overage,
            ..request.clone()
        };
        // While a batch is being applied, a transaction of its own would only fail: queue at once.
        let batching = entitlement.lease_until.is_some_and(|until| until >= now);
        if !batching && !large {
            let (delta, log) = if pending {
                (CounterDelta::default(), None)
            } else {
                (
                    CounterDelta::of(&entitlement, &record),
                    log_append(&entitlement, &grants, &grant_writes, &record.posting()),
                )
            };
            match store.write_usage(&record, delta, &grant_writes, log.as_ref()).await? {
                UsageWrite::Written => {
                    busy.idle(tenant, entitlement_id);
                    return Ok(Created::New(record));
                }
                UsageWrite::Exists(old) => return replay(old, fingerprint),
                UsageWrite::EntitlementUnavailable => continue,
                // Another writer got there first, or a batch started: join the queue.
                UsageWrite::Stale => {}
            }
        }
        // A lease holder is applying batches: the first look for the record comes after about
        // a batch's time.
        let first_look = batching.then(|| busy.first_look(tenant, entitlement_id));
        let waited = queue_holding_line(store, clock, request, first_look, line.take()).await?;
        match &waited.record {
            Some(applied) => {
                if applied.recorded_at == request.recorded_at {
                    busy.saw(tenant, entitlement_id, &waited);
                }
                return answer(applied.clone(), request, fingerprint);
            }
            // Taken off the queue unapplied: try again (an error shows then).
            None => pause(attempt).await,
        }
    }
    Err(UsageError::Store(StoreError::Contention))
}

/// How long a line's leader that joined the entitlement's queue keeps its line. Meanwhile the
/// requests that arrive wait behind it, to be written together next, instead of each joining the
/// queue (usually the lease holder applies the queued request within a batch's time); after it,
/// the line is handed on, so that they never wait on the queue for long.
const LINE_HELD_IN_QUEUE: Duration = Duration::from_secs(1);

/// [`group_commit::queue_and_wait`], keeping this process's `line` (when the request leads it)
/// for at most [`LINE_HELD_IN_QUEUE`].
async fn queue_holding_line<S>(
    store: &S,
    clock: &dyn Clock,
    request: &UsageRecord,
    first_look: Option<Duration>,
    line: Option<Line>,
) -> Result<group_commit::Waited, StoreError>
where
    S: UsageStore + EntitlementStore + group_commit::UsageQueue + ?Sized,
{
    let waited = group_commit::queue_and_wait(store, clock, request, first_look);
    let Some(line) = line else {
        return waited.await;
    };
    tokio::pin!(waited);
    tokio::select! {
        outcome = &mut waited => outcome,
        () = tokio::time::sleep(LINE_HELD_IN_QUEUE) => {
            drop(line);
            waited.await
        }
    }
}

/// The answer to a queued request once applied: its own record (queued at its instant), or an
/// earlier one's with its event id (a replay).
fn answer(
    applied: UsageRecord,
    request: &UsageRecord,
    fingerprint: &BTreeMap<String, String>,
) -> Result<Created<UsageRecord>, UsageError> {
    if applied.recorded_at == request.recorded_at {
        Ok(Created::New(applied))
    } else {
        replay(applied, fingerprint)
    }
}

fn replay(old: UsageRecord, fingerprint: &BTreeMap<String, String>) -> Result<Created<UsageRecord>, UsageError> {
    let mut differing: Vec<String> = old
        .fingerprint
        .keys()
        .chain(fingerprint.keys())
        .filter(|k| k.as_str() != "occurredAt" || (old.fingerprint.contains_key(*k) && fingerprint.contains_key(*k)))
        .filter(|k| old.fingerprint.get(*k) != fingerprint.get(*k))
        .cloned()
        .collect();
    differing.sort();
    differing.dedup();
    if differing.is_empty() {
        Ok(Created::Replayed(old))
    } else {
        Err(UsageError::IdempotencyMismatch(differing))
    }
}

/// Backoff with jitter before recomputing against fresher state.
async fn pause(attempt: u32) {
    let mut b = [0u8; 2];
    let jitter = if getrandom::fill(&mut b).is_ok() {
        u64::from(u16::from_le_bytes(b)) % 40
    } else {
        17
    };
    tokio::time::sleep(Duration::from_millis((4u64 << attempt.min(4)) + jitter)).await;
}

/// Settling a pending event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    Commit,
    Release,
}

#[derive(Debug, thiserror::Error)]
pub enum SettleError {
    #[error("entitlement not found")]
    EntitlementNotFound,
    #[error("usage event not found")]
    UsageNotFound,
    #[error("usage event is {0}")]
    WrongState(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Commits (consumes what it holds) or releases (frees what it holds) a pending usage event.
/// Idempotent: committing a committed event, or releasing a released one, returns it unchanged.
pub async fn settle_usage<S>(
    store: &S,
    clock: &dyn Clock,
    tenant: &TenantId,
    entitlement_id: &EntitlementId,
    event_id: &UsageEventId,
    how: Settle,
) -> Result<UsageRecord, SettleError>
where
    S: UsageStore + EntitlementStore + ?Sized,
{
    for attempt in 0..STALE_RETRIES {
        let (entitlement, grants) = store
            .load_entitlement(tenant, entitlement_id)
            .await?
            .ok_or(SettleError::EntitlementNotFound)?;
        let record = store
            .get_usage(tenant, entitlement_id, event_id.as_str())
            .await?
            .ok_or(SettleError::UsageNotFound)?;
        match (record.status, how) {
            (UsageStatus::Committed, Settle::Commit) | (UsageStatus::Released, Settle::Release) => return Ok(record),
            (UsageStatus::Committed | UsageStatus::Released, _) => {
                return Err(SettleError::WrongState(record.status.as_str()))
            }
            (UsageStatus::Pending, _) => {}
        }
        let (effect, status) = match how {
            Settle::Commit => (Effect::Commit, UsageStatus::Committed),
            Settle::Release => (Effect::Release, UsageStatus::Released),
        };
        let grant_writes = changed(&grants, &record.deductions, effect, record.occurred_at);
        let settled = UsageRecord {
            status,
            settled_at: Some(clock.now()),
            ..record
        };
        let (delta, log) = if how == Settle::Commit {
            (
                CounterDelta::of(&entitlement, &settled),
                log_append(&entitlement, &grants, &grant_writes, &settled.posting()),
            )
        } else {
            (CounterDelta::default(), None)
        };
        if store.settle_usage(&settled, delta, &grant_writes, log.as_ref()).await? {
            return Ok(settled);
        }
        pause(attempt).await;
    }
    Err(SettleError::Store(StoreError::Contention))
}

/// What happened to a usage write.
#[derive(Debug)]
pub enum UsageWrite {
    /// The record, the entitlement's counters and the grants were written together.
    Written,
    /// A record with this event id exists: nothing was written. It is returned.
    Exists(UsageRecord),
    /// The entitlement is missing or not active: nothing was written.
    EntitlementUnavailable,
    /// A grant changed since it was read: nothing was written; recompute and retry.
    Stale,
}

/// The storage port of this module: Usage records, written together with the counters and grants they change. Implemented by `grants_dynamo::DynamoStore` and
/// [`crate::memory::MemoryStore`]; the contract tests hold both to the same behaviour.
#[async_trait::async_trait]
pub trait UsageStore: Send + Sync {
    /// The entitlement, its grants and its usage records, in one read.
    async fn load_ledger(
        &self,
        tenant: &crate::TenantId,
        id: &crate::EntitlementId,
    ) -> Result<
        Option<(
            crate::model::Entitlement,
            Vec<crate::model::Grant>,
            Vec<crate::usage::UsageRecord>,
        )>,
        crate::kernel::StoreError,
    >;
    async fn get_usage(
        &self,
        tenant: &crate::TenantId,
        entitlement: &crate::EntitlementId,
        event_id: &str,
    ) -> Result<Option<crate::usage::UsageRecord>, crate::kernel::StoreError>;
    /// In one transaction: creates the usage record (unless its event id exists) and, when it is
    /// pending, its hold; adds `delta` to the entitlement's counters (if it is active and nobody
    /// holds a live lease on it at the record's `recorded_at`, else Stale); replaces
    /// each grant if its version is still the one read (`(new state, version read)`); and appends
    /// `log` to the entitlement's log (if the log is still at `log.read_seq`; else Stale).
    async fn write_usage(
        &self,
        record: &crate::usage::UsageRecord,
        delta: crate::usage::CounterDelta,
        grants: &[(crate::model::Grant, u64)],
        log: Option<&crate::ledger::LogAppend>,
    ) -> Result<crate::usage::UsageWrite, crate::kernel::StoreError>;
    /// In one transaction: replaces a pending usage record with its settled state (if it is still
    /// pending) and deletes its hold, adds `delta` to the entitlement's counters, replaces the
    /// grants at the versions read, and appends `log` (at `log.read_seq`). False when anything
    /// moved (nothing written).
    async fn settle_usage(
        &self,
        record: &crate::usage::UsageRecord,
        delta: crate::usage::CounterDelta,
        grants: &[(crate::model::Grant, u64)],
        log: Option<&crate::ledger::LogAppend>,
    ) -> Result<bool, crate::kernel::StoreError>;
}
