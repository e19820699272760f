//! The contract of the periods port ([`crate::periods::PeriodStore`]).
use super::{
    after, cancel, dec, delta, entitlement, grant, micros_after, schedule_base, stored_entitlement, tenant, ts, usage,
    write,
};
use crate::model::{Entitlement, EntitlementStatus, Grant};
use crate::periods::Reset;
use crate::ports::{InsertOutcome, Store, UsageWrite};
use crate::{EntitlementId, NonNegative, TenantId, Timestamp};
use rust_decimal::Decimal;
use std::collections::BTreeMap;

/// The reset schedule: active entitlements whose period ended by `now`, by period end; a smaller
/// limit gives a prefix. Cancelled and blocked ones leave it (and a cancelled one made active again
/// does not come back: the status change does not restore its schedule keys).
pub async fn due_for_reset_by_period_end(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let base = schedule_base();
    let at = |micros: i64| micros_after(base, micros);
    let make = |end: Timestamp| {
        let mut e = entitlement(&t, "c");
        e.current_period_end = end;
        e.current_period_start = after(end, -3600);
        e.period_anchor = e.current_period_start;
        e.period_months = None;
        e
    };
    let (first, second, third) = (make(at(2)), make(at(1)), make(at(3)));
    let (canceled, blocked, revived, later) = (make(at(1)), make(at(1)), make(at(2)), make(at(10)));
    for e in [&first, &second, &third, &canceled, &blocked, &revived, &later] {
        store.put_entitlement(e).await.expect("put");
    }
    cancel(store, &canceled).await;
    store
        .block_period_reset(&t, &blocked.id, "bad period")
        .await
        .expect("block");
    cancel(store, &revived).await;
    store
        .set_entitlement_status(&t, &revived.id, EntitlementStatus::Active, at(2))
        .await
        .expect("set")
        .expect("exists");
    store
        .block_period_reset(&t, &EntitlementId::generate(), "missing")
        .await
        .expect("blocking a missing entitlement is fine");
    let mine = |due: Vec<(TenantId, crate::EntitlementId)>| -> Vec<EntitlementId> {
        due.into_iter().filter(|(x, _)| *x == t).map(|(_, id)| id).collect()
    };
    let now = at(3);
    let full = store.entitlements_due_for_reset(now, 1000).await.expect("due");
    assert_eq!(
        mine(full.clone()),
        vec![second.id.clone(), first.id.clone(), third.id.clone()]
    );
    for limit in 1..=3 {
        let some = store.entitlements_due_for_reset(now, limit).await.expect("due");
        assert_eq!(some, full[..limit.min(full.len())].to_vec(), "limit {limit}: a prefix");
    }
    assert_eq!(
        mine(store.entitlements_due_for_reset(at(1), 1000).await.expect("due")),
        vec![second.id.clone()],
        "an end at now is due"
    );
    assert!(mine(store.entitlements_due_for_reset(at(0), 1000).await.expect("due")).is_empty());
    // A reset moves the entitlement in the schedule to its new period end.
    let reset = Reset {
        old_end: second.current_period_end,
        start: second.current_period_end,
        end: at(100),
        grants: Vec::new(),
        record: None,
        log: None,
    };
    assert!(store.reset_period(&second, &reset).await.expect("reset"));
    assert_eq!(
        mine(store.entitlements_due_for_reset(now, 1000).await.expect("due")),
        vec![first.id.clone(), third.id.clone()]
    );
    assert_eq!(
        mine(store.entitlements_due_for_reset(at(100), 1000).await.expect("due")),
        vec![first.id.clone(), third.id.clone(), later.id.clone(), second.id.clone()]
    );
}

/// An entitlement with counters and a grant whose rest a reset clamps (8 to 5).
async fn reset_setup(store: &dyn Store, t: &TenantId) -> (Entitlement, Grant) {
    let mut e = entitlement(t, "c");
    e.usage_in_period = dec("5");
    e.overage = dec("1");
    store.put_entitlement(&e).await.expect("put");
    let mut g = grant(&e, "10");
    g.remaining = dec("8");
    g.reset_max_rollover = Some(NonNegative::new(dec("5")).expect("bound"));
    assert!(matches!(
        store.insert_grant(&g, None, None).await.expect("insert"),
        InsertOutcome::Inserted
    ));
    (e, g)
}

/// The reset of `e`'s period to one ending at `new_end` that clamps `g` (read at version `read`)
/// from 8 to 5 and writes the rollover record.
fn rollover_reset(e: &Entitlement, g: &Grant, read: u64, new_end: Timestamp) -> Reset {
    let mut clamped = g.clone();
    clamped.remaining = dec("5");
    clamped.version = read + 1;
    let mut record = usage(
        e,
        &format!("rollover:{}", e.current_period_end.to_storage()),
        "0",
        vec![(g, "3")],
    );
    record.rollover = true;
    record.occurred_at = e.current_period_end;
    record.fingerprint = BTreeMap::new();
    Reset {
        old_end: e.current_period_end,
        start: e.current_period_end,
        end: new_end,
        grants: vec![(clamped, read)],
        record: Some(record),
        log: None,
    }
}

/// `reset_period` moves the period and zeroes the counters, writes the clamped grants at their
/// versions and the rollover record, in one transaction conditional on the old period end and the
/// entitlement being active: false, and nothing written, when anything moved.
pub async fn reset_period_is_conditional_and_all_or_nothing(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let new_end = ts("2030-03-01T00:00:00Z");
    let reset_of = |e: &Entitlement, g: &Grant, read: u64| rollover_reset(e, g, read, new_end);

    let (e, g) = reset_setup(store, &t).await;
    let reset = reset_of(&e, &g, 0);
    assert!(store.reset_period(&e, &reset).await.expect("reset"));
    let (ent, grants, records) = store.load_ledger(&t, &e.id).await.expect("load").expect("stored");
    let expected = Entitlement {
        current_period_start: e.current_period_end,
        current_period_end: new_end,
        usage_in_period: Decimal::ZERO,
        overage: Decimal::ZERO,
        ..e.clone()
    };
    assert_eq!(ent, expected);
    assert_eq!(grants, vec![reset.grants[0].0.clone()]);
    assert_eq!(records, reset.record.clone().into_iter().collect::<Vec<_>>());
    // Again: the period end moved.
    assert!(!store.reset_period(&e, &reset).await.expect("reset"));
    assert_eq!(
        store.load_ledger(&t, &e.id).await.expect("load"),
        Some((expected, grants, records))
    );

    reset_period_refused_when_anything_moved(store, &t, new_end).await;

    // A reset without grants or record.
    let e = stored_entitlement(store, &t, "c").await;
    let bare = Reset {
        old_end: e.current_period_end,
        start: e.current_period_end,
        end: new_end,
        grants: Vec::new(),
        record: None,
        log: None,
    };
    assert!(store.reset_period(&e, &bare).await.expect("reset"));
    let ent = store.get_entitlement(&t, &e.id).await.expect("get").expect("stored");
    assert_eq!(
        (ent.current_period_start, ent.current_period_end),
        (e.current_period_end, new_end)
    );
}

/// The refusals of [`reset_period_is_conditional_and_all_or_nothing`]: a grant that moved, a
/// rollover record that exists, an entitlement not active.
async fn reset_period_refused_when_anything_moved(store: &dyn Store, t: &TenantId, new_end: Timestamp) {
    let reset_of = |e: &Entitlement, g: &Grant, read: u64| rollover_reset(e, g, read, new_end);
    // A grant that moved: nothing written.
    let (e, g) = reset_setup(store, t).await;
    assert!(!store.reset_period(&e, &reset_of(&e, &g, 4)).await.expect("reset"));
    let (ent, grants, records) = store.load_ledger(t, &e.id).await.expect("load").expect("stored");
    assert_eq!((ent, grants, records.len()), (e.clone(), vec![g.clone()], 0));

    // The rollover record exists: nothing written.
    let (e, g) = reset_setup(store, t).await;
    let reset = reset_of(&e, &g, 0);
    let existing = reset.record.clone().expect("record");
    assert!(matches!(
        write(store, &existing, delta("0", "0"), &[]).await,
        UsageWrite::Written
    ));
    assert!(!store.reset_period(&e, &reset).await.expect("reset"));
    assert_eq!(store.get_entitlement(t, &e.id).await.expect("get"), Some(e.clone()));
    assert_eq!(store.get_grant(t, &e.id, &g.id).await.expect("get"), Some(g.clone()));

    // Not active: nothing written.
    let (e, g) = reset_setup(store, t).await;
    cancel(store, &e).await;
    assert!(!store.reset_period(&e, &reset_of(&e, &g, 0)).await.expect("reset"));
    let ent = store.get_entitlement(t, &e.id).await.expect("get").expect("stored");
    assert_eq!(ent.current_period_end, e.current_period_end);
    assert_eq!(store.get_grant(t, &e.id, &g.id).await.expect("get"), Some(g));
}
