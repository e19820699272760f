//! Group commit of usage on a busy entitlement (issue 16, item 2).
//!
//! A usage event is first written on its own ([`crate::usage::record_usage`]: one conditional
//! transaction). When that transaction loses a race with another writer, or another writer is
//! already applying a batch, the event joins the entitlement's **queue** instead (one `PutItem`),
//! and one writer at a time, the holder of the entitlement's **lease**, applies every queued event
//! in one transaction per batch ([`plan_batch`]: as many as fit in DynamoDB's 100 items), in the
//! order they were queued, while the others wait for their event's record to appear. So under
//! contention one transaction commits many events, instead of every writer retrying its own.
//!
//! - **Exactly once**: a batch creates each record conditionally (its event id is the key), in
//!   the same transaction as the grants and the log; the queued requests are deleted after it. A
//!   request applied but not yet deleted (the holder died in between) is found recorded by the
//!   next batch and only deleted.
//! - **The same result as one at a time**: a batch allocates its events in order, each against the
//!   grants as the previous one left them, with the same [`ledger::allocate`] and [`ledger::apply`].
//! - **Crash safety**: a batch is one transaction, so it is all or nothing. The lease expires
//!   [`LEASE_SECONDS`] after it was last renewed; a waiting writer then takes it over and applies
//!   what is still queued.
//! - **When an event is applied**: when its record exists. The waiting writer answers then, with
//!   the same 201 and deductions as the fast path. A writer that waited [`WAIT_SECONDS`] withdraws
//!   its request (if it is still queued) and answers 503; a batch that read the request just
//!   before may still apply it, and the event's retry then answers with that record (its event id
//!   is what makes it applied once).
//! - A request the lease holder cannot apply for good (the entitlement is no longer active, or
//!   pending usage would hold more grants than one transaction can settle) is taken off the queue
//!   unapplied; its writer then tries it on its own and gets the error. An event that draws on more
//!   grants than one transaction holds is applied on its own, in steps ([`Application`]).
//! - The writer that holds the lease applies batches for at most [`HOLD_SECONDS`], then gives the
//!   lease up (another waiter takes it), so its own request is answered in bounded time.
use crate::entitlement_store::EntitlementStore;
use crate::kernel::StoreError;
use crate::ledger::{self, Effect, LogAppend, UsageStatus};
use crate::model::{Entitlement, Grant};
use crate::usage::{CounterDelta, UsageRecord, UsageStore, MAX_GRANTS_PER_EVENT};
use crate::{Clock, EntitlementId, GrantId, TenantId, Timestamp};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

/// DynamoDB's limit on the items of one transaction: what bounds a batch.
pub const MAX_BATCH_ITEMS: usize = 100;

/// How long a lease lasts after it was taken or last renewed (each batch renews it).
pub const LEASE_SECONDS: i64 = 5;

/// How long a queued writer waits for its event to be applied before it withdraws it.
pub const WAIT_SECONDS: u64 = 25;

/// How many queued requests a lease holder reads for one batch.
pub const QUEUE_READ: usize = 48;

/// How long one writer applies batches before it gives the lease up (its own request waits that
/// long at most for the others').
pub const HOLD_SECONDS: u64 = 1;

/// How often, and how long apart, a lease holder reads an empty queue again before it gives the
/// lease up.
const LINGER_READS: u32 = 2;
const LINGER: Duration = Duration::from_millis(15);

/// Grants one step of a multi-step application changes: the rest of its 100 items are the
/// entitlement, the application's progress and (first step) the check that the event is not
/// recorded already.
pub const GRANTS_PER_STEP: usize = 97;

/// Items of the last step of a multi-step application besides its grants and its day items: the
/// record, the entitlement, the progress (deleted), a hold, the log item, a late copy, a checkpoint.
const LAST_STEP_ITEMS: usize = 7;

/// A usage event applied over several transactions because it draws on more grants than one
/// transaction holds ([`MAX_GRANTS_PER_EVENT`]), by the lease holder, resumable after a crash at
/// any point: each step is one transaction that also records the step done.
#[derive(Debug, Clone, PartialEq)]
pub struct Application {
    /// The event, allocated: every deduction, in burn-down order.
    pub record: UsageRecord,
    /// How many steps are done (each changes the grants of one part of the deductions).
    pub done: usize,
}

impl Application {
    /// The parts of the deductions, one per step: [`GRANTS_PER_STEP`] each while more remain than
    /// the last step holds (what 100 items leave beside its record, log and the day's items for
    /// every deduction), then the rest (the last step).
    pub fn steps(&self) -> Vec<std::ops::Range<usize>> {
        let n = self.record.deductions.len();
        let last = MAX_BATCH_ITEMS.saturating_sub(LAST_STEP_ITEMS + ledger::day_items(n));
        let mut out = Vec::new();
        let mut start = 0;
        while n - start > last {
            // Never past what the last step must still take.
            let k = GRANTS_PER_STEP.min(n - start - last);
            out.push(start..start + k);
            start += k;
        }
        out.push(start..n);
        out
    }
}

/// One step of an [`Application`] but the last: the grants of its part, and the step done.
#[derive(Debug, Clone)]
pub struct Step {
    pub owner: String,
    pub lease_until: Timestamp,
    /// The application as it stands before this step (`done` steps done).
    pub application: Application,
    /// The grants this step changes (new state, version read).
    pub grants: Vec<(Grant, u64)>,
}

/// What one batch writes, decided by [`plan_batch`].
#[derive(Debug, Clone)]
pub struct Batch {
    pub tenant: TenantId,
    pub entitlement_id: EntitlementId,
    /// The lease holder writing it: the write is conditional on still holding the lease.
    pub owner: String,
    /// The lease, renewed by the write.
    pub lease_until: Timestamp,
    /// The new usage records, allocated, in the order applied.
    pub records: Vec<UsageRecord>,
    /// The queued requests the batch takes off the queue (`(event id, queued at)`): those it
    /// applies and those it drops. They are deleted once the transaction committed (not in it:
    /// a record's conditional put is what makes an event applied once).
    pub dequeued: Vec<(String, Timestamp)>,
    /// The grants changed (new state, version read).
    pub grants: Vec<(Grant, u64)>,
    /// What committed usage adds to the entitlement's counters.
    pub delta: CounterDelta,
    /// What the batch appends to the entitlement's log (None: the entitlement has none).
    pub log: Option<LogAppend>,
    /// The multi-step application this batch completes (its last step: `records` is its event).
    pub finishing: Option<String>,
    /// The first queued request to apply draws on more grants than one transaction holds: it is
    /// not in this batch, and is applied on its own next ([`Application`]), allocated as here.
    pub large: Option<UsageRecord>,
}

/// What happened to a batch write. Nothing is written unless `Written`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchWrite {
    Written,
    /// A record with this event id exists already.
    Exists(String),
    /// The lease is not held by the writer any more.
    LeaseLost,
    /// A grant, the log or the entitlement moved since they were read.
    Stale,
}

/// What a queued writer sees when it looks for its event.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueState {
    /// The event's record, once it exists.
    pub record: Option<UsageRecord>,
    /// The request is still queued.
    pub queued: bool,
    /// Nobody holds a live lease on the entitlement at `now`.
    pub lease_free: bool,
    /// How many events the batch that applied the record applied (1: on its own).
    pub batch_of: usize,
}

/// How long after this process last saw a large batch on an entitlement its next event goes
/// straight to the queue.
pub const BUSY_MILLIS: u64 = 1000;

/// A batch of at least this many events marks its entitlement busy: below it, writers do better
/// trying their own transaction first (measured with 8 writers on DynamoDB Local: half of one
/// writer's events/s when every event went to the queue).
pub const BUSY_BATCH: usize = 16;

/// How long a queued writer that knows a lease holder is applying batches waits before its first
/// look for its record, until this process learnt better for the entitlement (between
/// [`MIN_FIRST_LOOK`] and [`MAX_FIRST_LOOK`]: an eighth shorter each time the first look found
/// the record, 10 ms longer each time it did not), and the wait between later looks. Every look
/// is a request the store serves alongside the batches, so waits leave it room (measured on
/// DynamoDB Local: looks were two thirds of all requests at 64 writers while they were 10 ms
/// apart).
pub const FIRST_LOOK: Duration = Duration::from_millis(60);
const MIN_FIRST_LOOK: Duration = Duration::from_millis(10);
const MAX_FIRST_LOOK: Duration = Duration::from_millis(150);
const NEXT_LOOK: Duration = Duration::from_millis(40);

/// What this process learnt of its entitlements' queues, kept beside the store's client (a warm
/// Lambda instance keeps it between requests, as it keeps API keys):
/// - how long a queued event typically waits for its first look ([`FIRST_LOOK`]);
/// - which entitlements are **busy**: a queued event of this process was applied within
///   [`BUSY_MILLIS`] in a batch of [`BUSY_BATCH`] events or more. The next event on a busy
///   entitlement joins the queue at once, without reading the entitlement or trying a transaction
///   of its own that would only lose the race: one request before the wait (the queue's
///   `PutItem`) instead of three (the entitlement's Query, the losing transaction, the `PutItem`).
///
/// It is only a hint: the lease holder checks every queued request against the entitlement (one
/// it cannot apply is taken off the queue, and its writer then tries it on its own), and a writer
/// whose first look does not find its record looks at the lease at its third, and takes the lease
/// when nobody holds it.
#[derive(Debug, Default)]
pub struct BusyEntitlements(std::sync::Mutex<HashMap<(TenantId, EntitlementId), Learnt>>);

/// What this process learnt of one entitlement's queue.
#[derive(Debug, Clone, Copy)]
struct Learnt {
    /// When this was last updated (what is forgotten first).
    at: std::time::Instant,
    /// Busy until then.
    busy_until: Option<std::time::Instant>,
    first_look: Duration,
}

impl BusyEntitlements {
    /// At most this many entitlements are remembered (the least recently updated are forgotten
    /// first).
    const CAPACITY: usize = 1024;

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<(TenantId, EntitlementId), Learnt>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The entitlement is busy: its next event joins the queue at once.
    pub fn is_busy(&self, tenant: &TenantId, id: &EntitlementId) -> bool {
        self.map()
            .get(&(tenant.clone(), id.clone()))
            .and_then(|l| l.busy_until)
            .is_some_and(|until| until > std::time::Instant::now())
    }

    /// How long a queued event on the entitlement waits before its first look.
    pub fn first_look(&self, tenant: &TenantId, id: &EntitlementId) -> Duration {
        self.map()
            .get(&(tenant.clone(), id.clone()))
            .map_or(FIRST_LOOK, |l| l.first_look)
    }

    /// Usage on the entitlement was just written on its own: it is not busy.
    pub fn idle(&self, tenant: &TenantId, id: &EntitlementId) {
        if let Some(l) = self.map().get_mut(&(tenant.clone(), id.clone())) {
            l.busy_until = None;
        }
    }

    /// A queued event on the entitlement was just applied (`waited`).
    pub fn saw(&self, tenant: &TenantId, id: &EntitlementId, waited: &Waited) {
        let mut map = self.map();
        let now = std::time::Instant::now();
        if map.len() >= Self::CAPACITY {
            let mut ages: Vec<std::time::Instant> = map.values().map(|l| l.at).collect();
            ages.sort_unstable();
            let cut = ages[ages.len() / 2];
            map.retain(|_, l| l.at > cut);
        }
        let l = map.entry((tenant.clone(), id.clone())).or_insert(Learnt {
            at: now,
            busy_until: None,
            first_look: FIRST_LOOK,
        });
        l.at = now;
        l.busy_until = (waited.batch_of >= BUSY_BATCH).then(|| now + Duration::from_millis(BUSY_MILLIS));
        l.first_look = match waited.found_at_first_look {
            Some(true) => (l.first_look * 7 / 8).max(MIN_FIRST_LOOK),
            Some(false) => (l.first_look + Duration::from_millis(10)).min(MAX_FIRST_LOOK),
            None => l.first_look,
        };
    }
}

/// A queued request's outcome ([`queue_and_wait`]).
#[derive(Debug, Clone)]
pub struct Waited {
    /// Its record, or the record already recorded under its event id; None when it was taken off
    /// the queue unapplied.
    pub record: Option<UsageRecord>,
    /// With a first look after a wait: whether that look found the record.
    pub found_at_first_look: Option<bool>,
    /// How many events the batch that applied the record applied (1: on its own).
    pub batch_of: usize,
}

/// The storage port of the queue and the lease. Implemented by `grants_dynamo::DynamoStore` and
/// [`crate::memory::MemoryStore`].
#[async_trait::async_trait]
pub trait UsageQueue: Send + Sync {
    /// The entitlements this process recently saw busy (kept beside the store's client).
    fn busy(&self) -> &BusyEntitlements;
    /// This process's lines of usage requests, one per entitlement ([`crate::combining`]; kept
    /// beside the store's client).
    fn combiner(&self) -> &crate::combining::Combiner;
    /// Queues a request (a usage record without deductions), keyed by its event id and
    /// `recorded_at`; a request queued twice stays one.
    async fn enqueue_usage(&self, request: &UsageRecord) -> Result<(), StoreError>;
    /// The oldest queued requests of an entitlement, up to `limit`, in the order queued.
    async fn queued_usage(
        &self,
        tenant: &TenantId,
        id: &EntitlementId,
        limit: usize,
    ) -> Result<Vec<UsageRecord>, StoreError>;
    /// The request's record, whether it is still queued, and whether the lease is free at `now`,
    /// in one read.
    async fn queue_state(&self, request: &UsageRecord, now: Timestamp) -> Result<QueueState, StoreError>;
    /// The request's record once it exists, and how many events the batch that applied it applied
    /// (1: on its own): one item read.
    async fn applied_usage(&self, request: &UsageRecord) -> Result<Option<(UsageRecord, usize)>, StoreError>;
    /// Takes the request off the queue unless a batch already did: true when this call took it.
    /// (A batch that read it just before may still apply it; a retry of the event then finds its
    /// record.)
    async fn withdraw_usage(&self, request: &UsageRecord) -> Result<bool, StoreError>;
    /// Takes the entitlement's lease for `owner` until `until`, when nobody holds a live one at
    /// `now`: true when taken.
    async fn take_lease(
        &self,
        tenant: &TenantId,
        id: &EntitlementId,
        owner: &str,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Gives the lease up, if `owner` still holds it.
    async fn release_lease(&self, tenant: &TenantId, id: &EntitlementId, owner: &str) -> Result<(), StoreError>;
    /// In one transaction: creates the records (and holds of pending ones), replaces the grants at
    /// the versions read, adds to the counters, appends the log and renews the lease; conditional
    /// on all of them (see [`BatchWrite`]); with `finishing`, also ends that application (its
    /// progress deleted, the entitlement's mark removed). Then deletes the dequeued requests (when
    /// that fails after the transaction committed, the batch is still `Written`: the next batch
    /// finds those requests recorded and only dequeues them).
    async fn write_batch(&self, batch: &Batch) -> Result<BatchWrite, StoreError>;
    /// In one transaction: the step's grants (at the versions read), the application's progress
    /// (created at the first step, conditional on not existing; then conditional on `done`), the
    /// entitlement marked as applying the event, and the lease renewed (conditional on holding it,
    /// and on no other application being under way). `Exists` when the first step finds the
    /// application begun or the event recorded already.
    async fn write_step(&self, step: &Step) -> Result<BatchWrite, StoreError>;
    /// The application of `event_id` on the entitlement, while it is under way.
    async fn load_application(
        &self,
        tenant: &TenantId,
        id: &EntitlementId,
        event_id: &str,
    ) -> Result<Option<Application>, StoreError>;
}

/// The items one event adds to a batch beyond the grants it touches for the first time: its
/// record, a pending record's hold; for committed usage, a log item when it starts one (the
/// batch's first entry, or the first after a checkpoint), a late copy, a checkpoint, a new day.
fn event_items(pending: bool, log: Option<&LogAppend>, occurred_at: Timestamp, new_day: bool) -> usize {
    let mut n = 1 + usize::from(pending);
    if let (Some(log), false) = (log, pending) {
        let starts_item = match (log.entries.last(), &log.checkpoint) {
            (None, _) => true,
            (Some((last, _)), Some(c)) => last.seq == c.seq,
            (Some(_), None) => false,
        };
        n += usize::from(starts_item);
        n += usize::from(log.head.checkpoint_at.is_some_and(|at| occurred_at < at));
        n += usize::from((log.head.seq + 1).is_multiple_of(ledger::CHECKPOINT_EVERY));
        n += usize::from(new_day);
    }
    n
}

/// The next batch of `queued` requests (in order) on `entitlement` as read with its `grants`:
/// each allocated against the grants as the ones before it left them, as many as fit in one
/// transaction. Requests in `drop` (already recorded, or refused for good) are dequeued without
/// being applied; so is every request when the entitlement is not active. A request that
/// would draw on more than [`MAX_GRANTS_PER_EVENT`] grants stops the batch (see [`Batch::large`]).
/// Pure.
pub fn plan_batch(
    entitlement: &Entitlement,
    grants: &[Grant],
    queued: &[UsageRecord],
    drop: &BTreeSet<String>,
    owner: &str,
    now: Timestamp,
) -> Batch {
    let mut state: Vec<Grant> = grants.to_vec();
    let read: BTreeMap<GrantId, u64> = grants.iter().map(|g| (g.id.clone(), g.version)).collect();
    let mut touched: BTreeSet<GrantId> = BTreeSet::new();
    let mut days: BTreeSet<Timestamp> = BTreeSet::new();
    let mut log = entitlement.log.as_ref().map(LogAppend::at);
    let mut records = Vec::new();
    let mut dequeued = Vec::new();
    let mut delta = CounterDelta::default();
    let mut large = None;
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    // The entitlement's own update.
    let mut items = 1;
    for q in queued {
        // A second request with an event id (a client's retry queued beside the first) is only
        // dequeued: the first one's record answers it.
        let repeat = !seen.insert(q.event_id.as_str());
        if repeat || drop.contains(&q.event_id) || !entitlement.is_active() {
            dequeued.push((q.event_id.clone(), q.recorded_at));
            continue;
        }
        let allocation = ledger::allocate(&state, q.occurred_at, q.amount);
        if allocation.deductions.len() > MAX_GRANTS_PER_EVENT && q.status == UsageStatus::Pending {
            // Its settling could not be written in one transaction: refused (its writer, trying
            // alone, gets the error).
            dequeued.push((q.event_id.clone(), q.recorded_at));
            continue;
        }
        if allocation.deductions.len() > MAX_GRANTS_PER_EVENT {
            // Applied on its own, over several transactions, once the events before it are.
            if records.is_empty() {
                large = Some(UsageRecord {
                    deductions: allocation.deductions,
                    overage: allocation.overage,
                    ..q.clone()
                });
            }
            break;
        }
        let pending = q.status == UsageStatus::Pending;
        let new_grants = allocation
            .deductions
            .iter()
            .filter(|d| !touched.contains(&d.grant_id))
            .count();
        let new_day = !allocation.deductions.is_empty() && !days.contains(&q.occurred_at.day_start());
        let cost = event_items(pending, log.as_ref(), q.occurred_at, new_day) + new_grants;
        if items + cost > MAX_BATCH_ITEMS {
            break;
        }
        items += cost;
        let effect = if pending { Effect::Reserve } else { Effect::Consume };
        for id in ledger::apply(&mut state, &allocation.deductions, effect) {
            if let Some(g) = state.iter_mut().find(|g| g.id == id) {
                g.last_used_at = g.last_used_at.max(Some(q.occurred_at));
            }
            touched.insert(id);
        }
        let record = UsageRecord {
            deductions: allocation.deductions,
            overage: allocation.overage,
            ..q.clone()
        };
        if !pending {
            let d = CounterDelta::of(entitlement, &record);
            delta.usage += d.usage;
            delta.overage += d.overage;
            if let Some(log) = log.as_mut() {
                if !record.deductions.is_empty() {
                    days.insert(record.occurred_at.day_start());
                }
                log.push(&state, record.occurred_at, record.deductions.clone(), record.overage);
            }
        }
        dequeued.push((q.event_id.clone(), q.recorded_at));
        records.push(record);
    }
    let grants = state
        .into_iter()
        .filter(|g| touched.contains(&g.id))
        .map(|mut g| {
            let version = read.get(&g.id).copied().unwrap_or(g.version);
            g.version = version + 1;
            (g, version)
        })
        .collect();
    Batch {
        tenant: entitlement.tenant.clone(),
        entitlement_id: entitlement.id.clone(),
        owner: owner.to_owned(),
        lease_until: now.plus_seconds(LEASE_SECONDS).unwrap_or(now),
        records,
        dequeued,
        grants,
        delta,
        log: log.filter(|l| !l.entries.is_empty()),
        finishing: None,
        large,
    }
}

/// Applies the rest of an application, step by step, then its last step with the record, the log
/// and the counters (a batch of its one event). Before its first step, the event is allocated
/// again against the grants as they are then. False when the lease was lost (another holder goes
/// on from the last step done).
pub async fn continue_application<S>(
    store: &S,
    clock: &dyn Clock,
    mut application: Application,
    owner: &str,
) -> Result<bool, StoreError>
where
    S: UsageQueue + UsageStore + EntitlementStore + ?Sized,
{
    let (tenant, id) = (
        application.record.tenant.clone(),
        application.record.entitlement_id.clone(),
    );
    let effect = if application.record.status == UsageStatus::Pending {
        Effect::Reserve
    } else {
        Effect::Consume
    };
    let mut stale = 0u32;
    while stale <= 20 {
        let Some((entitlement, grants)) = store.load_entitlement(&tenant, &id).await? else {
            return Ok(true);
        };
        let now = clock.now();
        let lease_until = now.plus_seconds(LEASE_SECONDS).unwrap_or(now);
        if application.done == 0 {
            // Nothing is applied yet: allocate against the grants as they are now (a reset or
            // another batch may have moved them since the queue was read).
            let allocation = ledger::allocate(&grants, application.record.occurred_at, application.record.amount);
            application.record.deductions = allocation.deductions;
            application.record.overage = allocation.overage;
        }
        let record = application.record.clone();
        let steps = application.steps();
        let Some(part) = steps.get(application.done).cloned() else {
            return Ok(true);
        };
        let deductions = record.deductions.get(part).unwrap_or_default();
        let writes = crate::usage::changed(&grants, deductions, effect, record.occurred_at);
        let last = application.done + 1 == steps.len();
        let written = if last {
            let batch = last_step(&entitlement, &grants, &record, writes, owner, lease_until);
            store.write_batch(&batch).await?
        } else {
            let step = Step {
                owner: owner.to_owned(),
                lease_until,
                application: application.clone(),
                grants: writes,
            };
            store.write_step(&step).await?
        };
        match written {
            BatchWrite::Written if last => return Ok(true),
            BatchWrite::Written => {
                application.done += 1;
                stale = 0;
            }
            BatchWrite::LeaseLost => return Ok(false),
            // Begun already, or a step moved: go on from the stored progress.
            BatchWrite::Exists(_) | BatchWrite::Stale => {
                stale += 1;
                match store
                    .load_application(&record.tenant, &record.entitlement_id, &record.event_id)
                    .await?
                {
                    Some(stored) => application = stored,
                    // Finished meanwhile (a step of ours committed though its answer was lost), or
                    // recorded already (a replay): nothing more to do.
                    None if application.done > 0 => return Ok(true),
                    None => {
                        if store
                            .get_usage(&record.tenant, &record.entitlement_id, &record.event_id)
                            .await?
                            .is_some()
                        {
                            return Ok(true);
                        }
                    }
                }
                pause_briefly().await;
            }
        }
    }
    Err(StoreError::Contention)
}

/// The last step of an application: its last grants, and its record, counters and log entry
/// (with every deduction), as a batch that finishes it.
fn last_step(
    entitlement: &Entitlement,
    grants: &[Grant],
    record: &UsageRecord,
    writes: Vec<(Grant, u64)>,
    owner: &str,
    lease_until: Timestamp,
) -> Batch {
    let pending = record.status == UsageStatus::Pending;
    let (delta, log) = if pending {
        (CounterDelta::default(), None)
    } else {
        (
            CounterDelta::of(entitlement, record),
            crate::usage::log_append(entitlement, grants, &writes, &record.posting()),
        )
    };
    Batch {
        tenant: entitlement.tenant.clone(),
        entitlement_id: entitlement.id.clone(),
        owner: owner.to_owned(),
        lease_until,
        records: vec![record.clone()],
        dequeued: vec![(record.event_id.clone(), record.recorded_at)],
        grants: writes,
        delta,
        log,
        finishing: Some(record.event_id.clone()),
        large: None,
    }
}

/// A lease holder's id: random, so two writers never share one.
pub fn lease_owner() -> String {
    ulid::Ulid::generate().to_string()
}

/// Applies the entitlement's queue, batch after batch, while `owner` holds the lease; gives the
/// lease up when the queue is empty. Returns when the queue is empty or the lease was lost.
pub async fn apply_queue<S>(
    store: &S,
    clock: &dyn Clock,
    tenant: &TenantId,
    id: &EntitlementId,
    owner: &str,
) -> Result<(), StoreError>
where
    S: UsageQueue + UsageStore + EntitlementStore + ?Sized,
{
    let mut drop: BTreeSet<String> = BTreeSet::new();
    let mut stale = 0u32;
    let mut idle_reads = 0u32;
    // This holder applied a batch of more than one event.
    let mut contended = false;
    let started = std::time::Instant::now();
    loop {
        if started.elapsed() > Duration::from_secs(HOLD_SECONDS) {
            // Long enough: the lease goes to another waiter, and this writer's request is answered.
            return store.release_lease(tenant, id, owner).await;
        }
        let queued = store.queued_usage(tenant, id, QUEUE_READ).await?;
        if queued.is_empty() && contended && idle_reads < LINGER_READS {
            // Writers on a busy entitlement keep coming: a moment's wait keeps the lease with
            // one holder, instead of leaving their requests to wait for a look at the lease. (Not
            // after a lone race: a batch of one event.)
            idle_reads += 1;
            tokio::time::sleep(LINGER).await;
            continue;
        }
        if queued.is_empty() {
            store.release_lease(tenant, id, owner).await?;
            // A request queued between that read and the release would wait for its writer's
            // next look at the lease: look once more, and take the lease back for it.
            if store.queued_usage(tenant, id, 1).await?.is_empty() {
                return Ok(());
            }
            let now = clock.now();
            let until = now.plus_seconds(LEASE_SECONDS).unwrap_or(now);
            if !store.take_lease(tenant, id, owner, until, now).await? {
                return Ok(());
            }
            continue;
        }
        idle_reads = 0;
        let Some((entitlement, grants)) = store.load_entitlement(tenant, id).await? else {
            return store.release_lease(tenant, id, owner).await;
        };
        if let Some(event) = &entitlement.applying {
            // A multi-step application was under way (its holder died, or it was this one's).
            if let Some(application) = store.load_application(tenant, id, event).await? {
                if !continue_application(store, clock, application, owner).await? {
                    return Ok(());
                }
                continue;
            }
        }
        let batch = plan_batch(&entitlement, &grants, &queued, &drop, owner, clock.now());
        contended |= batch.records.len() > 1;
        let large = batch.large.clone();
        let written = if batch.records.is_empty() && batch.dequeued.is_empty() {
            BatchWrite::Written
        } else {
            store.write_batch(&batch).await?
        };
        if let (BatchWrite::Written, Some(record)) = (&written, large) {
            if store.get_usage(tenant, id, &record.event_id).await?.is_some() {
                // A replay of an event applied already: only dequeued.
                drop.insert(record.event_id);
                continue;
            }
            let application = Application { record, done: 0 };
            if !continue_application(store, clock, application, owner).await? {
                return Ok(());
            }
            continue;
        }
        match written {
            BatchWrite::Written => stale = 0,
            BatchWrite::Exists(event) => {
                drop.insert(event);
            }
            BatchWrite::LeaseLost => return Ok(()),
            BatchWrite::Stale => {
                stale += 1;
                if stale > 20 {
                    // Another writer keeps moving the entitlement: let the lease lapse to a waiter.
                    return store.release_lease(tenant, id, owner).await;
                }
                pause_briefly().await;
            }
        }
    }
}

/// Queues `request` and waits until it is applied: by the lease holder, or by this writer when the
/// lease is free. Returns its record (or the record already recorded under its event id), or None
/// when it was taken off the queue unapplied (the caller then tries it on its own).
/// [`StoreError::Contention`] when it waited [`WAIT_SECONDS`] and withdrew it.
///
/// `first_look`: how long to wait before the first look for the record, when the caller knows a
/// lease holder is applying batches (it saw a live lease, or the entitlement is busy); None: look
/// at the lease at once. Most looks read the record alone (one item); the third, and every fourth
/// after it, also read the queue and the lease, and take the lease when nobody holds it.
pub async fn queue_and_wait<S>(
    store: &S,
    clock: &dyn Clock,
    request: &UsageRecord,
    first_look: Option<Duration>,
) -> Result<Waited, StoreError>
where
    S: UsageQueue + UsageStore + EntitlementStore + ?Sized,
{
    store.enqueue_usage(request).await?;
    let waited = |record: Option<UsageRecord>, looks: u32, batch_of: usize| Waited {
        record,
        found_at_first_look: first_look.map(|_| looks == 1),
        batch_of,
    };
    let started = std::time::Instant::now();
    let mut looks = 0u32;
    if let Some(wait) = first_look {
        looks = 1;
        sleep_about(wait).await;
    }
    loop {
        if looks != 0 && looks % 4 != 3 {
            if let Some((record, batch_of)) = store.applied_usage(request).await? {
                if record.recorded_at != request.recorded_at {
                    // Recorded by an earlier request (this one is a replay): take this one off the
                    // queue, so that no batch trips over it.
                    store.withdraw_usage(request).await?;
                }
                return Ok(waited(Some(record), looks, batch_of));
            }
            looks += 1;
            sleep_about(NEXT_LOOK).await;
            continue;
        }
        let state = store.queue_state(request, clock.now()).await?;
        if let Some(record) = state.record {
            if state.queued && record.recorded_at != request.recorded_at {
                // A replay, as above.
                store.withdraw_usage(request).await?;
            }
            return Ok(waited(Some(record), looks, state.batch_of));
        }
        if !state.queued {
            return Ok(waited(None, looks, 0));
        }
        if state.lease_free {
            let owner = lease_owner();
            let now = clock.now();
            let until = now.plus_seconds(LEASE_SECONDS).unwrap_or(now);
            if store
                .take_lease(&request.tenant, &request.entitlement_id, &owner, until, now)
                .await?
            {
                apply_queue(store, clock, &request.tenant, &request.entitlement_id, &owner).await?;
                continue;
            }
        }
        if started.elapsed() > Duration::from_secs(WAIT_SECONDS) {
            if store.withdraw_usage(request).await? {
                return Err(StoreError::Contention);
            }
            // A batch took it meanwhile: its record (or its drop) is there to read.
            continue;
        }
        looks += 1;
        sleep_about(NEXT_LOOK).await;
    }
}

/// Sleeps `wait` and up to 10 ms more (jitter, so that writers' looks spread out).
pub(crate) async fn sleep_about(wait: Duration) {
    let mut b = [0u8; 1];
    let jitter = if getrandom::fill(&mut b).is_ok() {
        u64::from(b[0]) % 10
    } else {
        5
    };
    tokio::time::sleep(wait + Duration::from_millis(jitter)).await;
}

/// The pause before a lease holder tries again after its write lost to another writer: about
/// one look's wait.
async fn pause_briefly() {
    sleep_about(NEXT_LOOK).await;
}
