//! The contract of the bounded reads ([`crate::balances::LedgerStore`]): what a store's log,
//! checkpoints, late entries, holds and usage days give back equals what every usage record sums to.
use super::{stored_entitlement, stored_grant, tenant, ts};
use crate::balances::{self, present_with_days};
use crate::ledger::{self, Posting, CHECKPOINT_EVERY};
use crate::model::Entitlement;
use crate::ports::Store;
use crate::usage::{self, NewUsage, Settle, UsageRecord};
use crate::{Clock, CreditAmount, TenantId, Timestamp};
use std::sync::Mutex;

/// A clock the check moves.
struct StepClock(Mutex<Timestamp>);

impl StepClock {
    fn advance(&self, seconds: i64) {
        let mut t = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *t = t.plus_seconds(seconds).expect("in range");
    }
}

impl Clock for StepClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn label(s: &str) -> crate::kernel::Label {
    crate::kernel::Label::parse(s).expect("label")
}

/// `events` usage events on `e`, a minute apart: every 7th backdated by two days (late, once a
/// checkpoint exists), every 5th pending, and every other pending one settled two events later
/// (committed, or released). Returns the instants the events occurred at.
async fn history(store: &dyn Store, clock: &StepClock, e: &Entitlement, events: usize) -> Vec<Timestamp> {
    let mut instants = Vec::new();
    let mut pending: Vec<String> = Vec::new();
    for i in 0..events {
        clock.advance(60);
        let now = clock.now();
        let occurred = if i % 7 == 3 {
            now.plus_seconds(-2 * 86_400).expect("in range")
        } else {
            now
        };
        let id = format!("evt-{i}");
        let req = NewUsage {
            entitlement_id: e.id.clone(),
            event_id: label(&id),
            amount: CreditAmount::parse(&format!("{}", 1 + i % 4)).expect("amount"),
            occurred_at: Some(occurred),
            pending: i % 5 == 0,
        };
        usage::record_usage(store, clock, &e.tenant, req)
            .await
            .expect("record_usage");
        if i % 5 == 0 {
            pending.push(id);
        }
        if i % 10 == 2 && pending.len() > 1 {
            let settled = pending.remove(0);
            let how = if i % 20 == 2 { Settle::Commit } else { Settle::Release };
            usage::settle_usage(store, clock, &e.tenant, &e.id, &label(&settled), how)
                .await
                .expect("settle_usage");
        }
        instants.push(occurred);
    }
    instants
}

/// Every balance the log gives (now, and at instants before, inside and after the history) equals
/// the balance summed from every usage record; the usage days equal the records summed by day.
async fn reads_equal_every_record(
    store: &dyn Store,
    t: &TenantId,
    e: &Entitlement,
    clock: &StepClock,
    at: &[Timestamp],
) {
    let (ent, grants, usage) = store.load_ledger(t, &e.id).await.expect("load").expect("stored");
    let postings: Vec<Posting> = usage.iter().map(UsageRecord::posting).collect();
    let since = ent.current_period_start;
    let mut probes: Vec<Option<Timestamp>> = vec![None];
    probes.extend(at.iter().copied().map(Some));
    for probe in probes {
        let (_, got) = balances::balance(store, clock, t, &e.id, probe)
            .await
            .expect("balance")
            .expect("exists");
        let want = ledger::balance_at(&grants, &postings, probe.unwrap_or_else(|| clock.now()), since);
        assert_eq!(got, want, "balance at {probe:?}");
    }
    let (present, mut days) = present_with_days(store, t, &e.id).await.expect("read").expect("exists");
    let mut holds: Vec<String> = present.holds.iter().map(|h| h.event_id.clone()).collect();
    let mut pending: Vec<String> = usage
        .iter()
        .filter(|u| u.status == ledger::UsageStatus::Pending)
        .map(|u| u.event_id.clone())
        .collect();
    holds.sort();
    pending.sort();
    assert_eq!(holds, pending, "the holds are the pending records");
    let mut want = ledger::days_of(&postings);
    for d in days.iter_mut().chain(want.iter_mut()) {
        d.usage.retain(|_, v| !v.is_zero());
        d.rollover.retain(|_, v| !v.is_zero());
    }
    days.retain(|d| !d.usage.is_empty() || !d.rollover.is_empty());
    want.retain(|d| !d.usage.is_empty() || !d.rollover.is_empty());
    assert_eq!(days, want, "usage days");
}

/// An entitlement's log, over more than two checkpoints, with backdated (late) entries, holds and
/// settled holds, reads back as every usage record sums to.
pub async fn log_reads_equal_every_record(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let e = stored_entitlement(store, &t, "c").await;
    stored_grant(store, &e, "150").await;
    stored_grant(store, &e, "10000").await;
    let clock = StepClock(Mutex::new(ts("2030-01-10T00:00:00Z")));
    let events = 2 * CHECKPOINT_EVERY as usize + 40;
    let at = history(store, &clock, &e, events).await;
    let head = store
        .get_entitlement(&t, &e.id)
        .await
        .expect("get")
        .expect("stored")
        .log
        .expect("a log");
    assert!(head.checkpoint_seq >= CHECKPOINT_EVERY, "{head:?}");
    let mut probes = vec![ts("2029-12-01T00:00:00Z"), e.current_period_start];
    probes.extend(at.iter().step_by(23).copied());
    probes.extend(at.iter().step_by(31).map(|t| t.plus_seconds(-1).expect("in range")));
    reads_equal_every_record(store, &t, &e, &clock, &probes).await;
}

/// An entitlement written before the log existed (no log head) is read from every usage record,
/// and new usage on it keeps working.
pub async fn entitlements_without_a_log_are_read_from_every_record(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let e = Entitlement {
        log: None,
        ..super::entitlement(&t, "c")
    };
    store.put_entitlement(&e).await.expect("put_entitlement");
    stored_grant(store, &e, "20").await;
    let clock = StepClock(Mutex::new(ts("2030-01-10T00:00:00Z")));
    let at = history(store, &clock, &e, 12).await;
    let stored = store.get_entitlement(&t, &e.id).await.expect("get").expect("stored");
    assert_eq!(stored.log, None, "usage does not start a log on it");
    reads_equal_every_record(store, &t, &e, &clock, &at).await;
}

/// An event drawing on more grants than one transaction holds is applied in steps by the lease
/// holder; when that holder dies after a step, the next writer (once the lease expired) finishes
/// it before anything else, and the event is applied exactly once.
pub async fn multi_step_application_resumes_after_a_crash(store: &dyn Store, prefix: &str) {
    use crate::group_commit::{Application, Step, LEASE_SECONDS};
    let t = tenant(prefix, "a");
    let e = stored_entitlement(store, &t, "c").await;
    for _ in 0..200 {
        stored_grant(store, &e, "1").await;
    }
    let clock = StepClock(Mutex::new(ts("2030-01-10T00:00:00Z")));
    let now = clock.now();
    // A writer takes the lease, writes the first step of "big" (150 grants), and dies.
    let (_, grants) = store.load_entitlement(&t, &e.id).await.expect("load").expect("stored");
    let allocation = ledger::allocate(&grants, now, rust_decimal::Decimal::from(150));
    let record = UsageRecord {
        rollover: false,
        tenant: t.clone(),
        entitlement_id: e.id.clone(),
        event_id: "big".to_owned(),
        amount: rust_decimal::Decimal::from(150),
        occurred_at: now,
        recorded_at: now,
        status: ledger::UsageStatus::Committed,
        deductions: allocation.deductions,
        overage: allocation.overage,
        settled_at: None,
        fingerprint: [("amount", "150"), ("pending", "false")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    };
    let application = Application { record, done: 0 };
    let steps = application.steps();
    assert_eq!(steps.len(), 2, "{steps:?}");
    let first = application.record.deductions.get(steps[0].clone()).expect("part");
    let writes = usage::changed(&grants, first, ledger::Effect::Consume, now);
    let until = now.plus_seconds(LEASE_SECONDS).expect("in range");
    assert!(store.take_lease(&t, &e.id, "dead", until, now).await.expect("lease"));
    let step = Step {
        owner: "dead".to_owned(),
        lease_until: until,
        application,
        grants: writes,
    };
    assert_eq!(
        store.write_step(&step).await.expect("step"),
        crate::group_commit::BatchWrite::Written
    );
    let half = store.get_entitlement(&t, &e.id).await.expect("get").expect("stored");
    assert_eq!(half.applying.as_deref(), Some("big"));
    // After the lease expired, the next event's writer finishes "big", then applies its own.
    clock.advance(LEASE_SECONDS + 1);
    let next = NewUsage {
        entitlement_id: e.id.clone(),
        event_id: label("next"),
        amount: CreditAmount::parse("10").expect("amount"),
        occurred_at: None,
        pending: false,
    };
    let created = usage::record_usage(store, &clock, &t, next)
        .await
        .expect("record_usage");
    assert!(matches!(created, crate::kernel::Created::New(_)));
    let (ent, grants, records) = store.load_ledger(&t, &e.id).await.expect("load").expect("stored");
    assert_eq!(ent.applying, None, "finished");
    assert_eq!(records.len(), 2);
    let big = records.iter().find(|r| r.event_id == "big").expect("big recorded");
    assert_eq!(big.deductions.len(), 150);
    let left: rust_decimal::Decimal = grants.iter().map(|g| g.remaining).sum();
    assert_eq!(left, rust_decimal::Decimal::from(40), "150 + 10 of 200, each once");
    assert!(
        store.load_application(&t, &e.id, "big").await.expect("read").is_none(),
        "its progress is gone"
    );
    reads_equal_every_record(store, &t, &e, &clock, &[now, clock.now()]).await;
}
