//! The contract of the purchases port ([`crate::purchases::PurchaseStore`]).
use super::{
    cancel, claim, grant, ids, invoice, micros_after, next_invoice, schedule_base, stored_entitlement, stored_invoice,
    tenant, ts,
};
use crate::ports::{InsertOutcome, Store};
use crate::purchases::{Invoice, InvoiceStatus};
use crate::{InvoiceId, SessionId};

/// `insert_purchase` writes the invoice, its session lookup and its claim together, conditional on
/// the claim being new (checked first) and the entitlement being active.
pub async fn insert_purchase_claims_and_sessions(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let e = stored_entitlement(store, &t, "c").await;
    let i1 = invoice(&e, ts("2030-01-02T00:00:00Z"));
    let k1 = claim("purchase", "buy", i1.id.as_str(), "100");
    assert!(matches!(
        store.insert_purchase(&i1, &k1).await.expect("insert"),
        InsertOutcome::Inserted
    ));
    assert_eq!(store.get_invoice(&t, &i1.id).await.expect("get"), Some(i1.clone()));
    assert_eq!(
        store.find_session(&i1.session.id).await.expect("session"),
        Some((t.clone(), i1.id.clone()))
    );
    let i2 = invoice(&e, ts("2030-01-02T00:00:00Z"));
    match store
        .insert_purchase(&i2, &claim("purchase", "buy", i2.id.as_str(), "200"))
        .await
        .expect("insert")
    {
        InsertOutcome::ClaimExists(stored) => assert_eq!(stored, k1),
        other => panic!("expected the first claim, got {other:?}"),
    }
    assert_eq!(store.get_invoice(&t, &i2.id).await.expect("get"), None);
    assert_eq!(store.find_session(&i2.session.id).await.expect("session"), None);

    let other = stored_entitlement(store, &t, "c").await;
    cancel(store, &other).await;
    let i3 = invoice(&other, ts("2030-01-02T00:00:00Z"));
    assert!(matches!(
        store
            .insert_purchase(&i3, &claim("purchase", "buy", i3.id.as_str(), "100"))
            .await
            .expect("insert"),
        InsertOutcome::ParentUnavailable
    ));
    assert_eq!(store.get_invoice(&t, &i3.id).await.expect("get"), None);
    assert_eq!(store.find_session(&i3.session.id).await.expect("session"), None);
    // A replay after the entitlement was cancelled is still answered.
    cancel(store, &e).await;
    assert!(matches!(
        store
            .insert_purchase(&i2, &claim("purchase", "buy", i2.id.as_str(), "100"))
            .await
            .expect("insert"),
        InsertOutcome::ClaimExists(_)
    ));
    assert_eq!(store.find_session(&SessionId::generate()).await.expect("session"), None);
    assert_eq!(store.get_invoice(&t, &InvoiceId::generate()).await.expect("get"), None);
}

/// `update_invoice` replaces the invoice only at the version it was read at.
pub async fn update_invoice_checks_the_version(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let e = stored_entitlement(store, &t, "c").await;
    let i = stored_invoice(store, &e, ts("2030-01-02T00:00:00Z")).await;
    let canceled = next_invoice(&i, |i| {
        i.status = InvoiceStatus::Canceled;
        i.canceled_at = Some(ts("2030-01-02T00:00:00Z"));
        i.cancel_reason = Some("payment_session_expired".to_owned());
    });
    assert!(!store.update_invoice(&canceled, 0).await.expect("update"));
    assert_eq!(store.get_invoice(&t, &i.id).await.expect("get"), Some(i.clone()));
    assert!(store.update_invoice(&canceled, 1).await.expect("update"));
    assert_eq!(store.get_invoice(&t, &i.id).await.expect("get"), Some(canceled.clone()));
    assert!(!store.update_invoice(&canceled, 1).await.expect("update"));
    let missing = invoice(&e, ts("2030-01-02T00:00:00Z"));
    assert!(!store.update_invoice(&missing, 1).await.expect("update"));
    assert_eq!(store.get_invoice(&t, &missing.id).await.expect("get"), None);
}

/// `settle_invoice` replaces the invoice at the version read and creates its grant, together; it
/// needs no active entitlement (money taken is never lost).
pub async fn settle_invoice_creates_the_grant_once(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let e = stored_entitlement(store, &t, "c").await;
    let i = stored_invoice(store, &e, ts("2030-01-02T00:00:00Z")).await;
    let g = grant(&e, "100");
    let paid = next_invoice(&i, |i| {
        i.status = InvoiceStatus::Paid;
        i.paid_at = Some(ts("2030-01-01T12:00:00Z"));
        i.grant_id = Some(g.id.clone());
    });
    assert!(!store.settle_invoice(&paid, 2, &g).await.expect("settle"));
    assert_eq!(store.get_grant(&t, &e.id, &g.id).await.expect("get"), None);
    assert_eq!(store.get_invoice(&t, &i.id).await.expect("get"), Some(i.clone()));
    assert!(store.settle_invoice(&paid, 1, &g).await.expect("settle"));
    assert_eq!(store.get_invoice(&t, &i.id).await.expect("get"), Some(paid.clone()));
    assert_eq!(store.get_grant(&t, &e.id, &g.id).await.expect("get"), Some(g.clone()));
    let g2 = grant(&e, "100");
    let twice = next_invoice(&paid, |i| i.grant_id = Some(g2.id.clone()));
    assert!(!store.settle_invoice(&twice, 1, &g2).await.expect("settle"));
    assert_eq!(store.get_grant(&t, &e.id, &g2.id).await.expect("get"), None);
    // The grant's id exists: nothing written.
    let i3 = stored_invoice(store, &e, ts("2030-01-02T00:00:00Z")).await;
    let dup = next_invoice(&i3, |i| i.status = InvoiceStatus::Paid);
    assert!(!store.settle_invoice(&dup, 1, &g).await.expect("settle"));
    assert_eq!(store.get_invoice(&t, &i3.id).await.expect("get"), Some(i3));
    // Paid after the entitlement was cancelled: still fulfilled.
    let late = stored_invoice(store, &e, ts("2030-01-02T00:00:00Z")).await;
    cancel(store, &e).await;
    let g4 = grant(&e, "100");
    let paid_late = next_invoice(&late, |i| {
        i.status = InvoiceStatus::Paid;
        i.paid_late = true;
        i.grant_id = Some(g4.id.clone());
    });
    assert!(store.settle_invoice(&paid_late, 1, &g4).await.expect("settle"));
    assert_eq!(store.get_grant(&t, &e.id, &g4.id).await.expect("get"), Some(g4));
}

/// `record_refund` replaces the invoice at the version read (its refund fields and a provider's
/// checkout keys round-trip) and records `grant.reduced.v0` with it, or writes nothing.
pub async fn record_refund_is_versioned_and_records_its_message(store: &dyn Store, prefix: &str) {
    use crate::payments::CheckoutKeys;
    use crate::purchases::GrantReduction;
    use crate::webhook_messages::{grant_reduced, GRANT_REDUCED};
    let t = tenant(prefix, "a");
    let e = stored_entitlement(store, &t, "c").await;
    let mut i = invoice(&e, ts("2030-01-02T00:00:00Z"));
    i.session.checkout = Some(CheckoutKeys {
        client_secret: "pi_1_secret_x".to_owned(),
        publishable_key: "pk_test_x".to_owned(),
    });
    let k = claim("purchase", "refund", i.id.as_str(), "100");
    assert!(matches!(
        store.insert_purchase(&i, &k).await.expect("insert"),
        InsertOutcome::Inserted
    ));
    assert_eq!(store.get_invoice(&t, &i.id).await.expect("get"), Some(i.clone()));
    let g = grant(&e, "100");
    let refunded = next_invoice(&i, |i| {
        i.refunded_minor = 250;
        i.credits_reclaimed = "40.5".parse().expect("decimal");
        i.refunded_at = Some(ts("2030-01-03T00:00:00Z"));
    });
    let reduction = GrantReduction {
        tenant: t.clone(),
        grant_id: g.id.clone(),
        entitlement_id: e.id.clone(),
        customer_id: e.customer_id.clone(),
        invoice_id: i.id.clone(),
        reduced_by: "40.5".parse().expect("decimal"),
        not_reclaimed: "9.5".parse().expect("decimal"),
        remaining: "10".parse().expect("decimal"),
        refunded_minor: 250,
        currency: "usd".to_owned(),
        at: ts("2030-01-03T00:00:00Z"),
    };
    let message = grant_reduced(&reduction);
    assert!(!store
        .record_refund(&refunded, 2, &reduction, None)
        .await
        .expect("refund"));
    assert_eq!(
        store.get_message(&t, &message.id).await.expect("get"),
        None,
        "nothing written"
    );
    assert!(store
        .record_refund(&refunded, 1, &reduction, None)
        .await
        .expect("refund"));
    assert_eq!(store.get_invoice(&t, &i.id).await.expect("get"), Some(refunded));
    let read = store
        .get_message(&t, &message.id)
        .await
        .expect("get")
        .expect("recorded");
    assert_eq!(read.event_type, GRANT_REDUCED);
    assert_eq!(read.payload, message.payload);
}

/// The expiry sweep's index: open invoices whose session expired by `now`, by expiry; a smaller
/// limit gives a prefix; paid and canceled invoices leave it.
pub async fn due_open_invoices_by_session_expiry(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let e = stored_entitlement(store, &t, "c").await;
    let base = schedule_base();
    let at = |micros: i64| micros_after(base, micros);
    let first = stored_invoice(store, &e, at(2)).await;
    let second = stored_invoice(store, &e, at(1)).await;
    let third = stored_invoice(store, &e, at(3)).await;
    let paid = stored_invoice(store, &e, at(1)).await;
    let canceled = stored_invoice(store, &e, at(1)).await;
    let _later = stored_invoice(store, &e, at(10)).await;
    let g = grant(&e, "100");
    let settled = next_invoice(&paid, |i| {
        i.status = InvoiceStatus::Paid;
        i.grant_id = Some(g.id.clone());
    });
    assert!(store.settle_invoice(&settled, 1, &g).await.expect("settle"));
    let gone = next_invoice(&canceled, |i| i.status = InvoiceStatus::Canceled);
    assert!(store.update_invoice(&gone, 1).await.expect("update"));
    let failed = next_invoice(&first, |i| i.failure_reason = Some("PAYMENT_FAILED".to_owned()));
    assert!(store.update_invoice(&failed, 1).await.expect("update"), "still open");
    let mine =
        |due: &[Invoice]| -> Vec<InvoiceId> { due.iter().filter(|i| i.tenant == t).map(|i| i.id.clone()).collect() };
    let now = at(3);
    let full = store.due_open_invoices(now, 1000).await.expect("due");
    assert_eq!(mine(&full), vec![second.id.clone(), first.id.clone(), third.id.clone()]);
    assert_eq!(full.iter().find(|i| i.id == first.id), Some(&failed), "as stored now");
    for limit in 1..=3 {
        let some = store.due_open_invoices(now, limit).await.expect("due");
        assert_eq!(
            ids(&some, |i| &i.id),
            ids(&full[..limit.min(full.len())], |i| &i.id),
            "limit {limit}: a prefix"
        );
    }
    assert_eq!(
        mine(&store.due_open_invoices(at(1), 1000).await.expect("due")),
        vec![second.id.clone()]
    );
    assert!(mine(&store.due_open_invoices(at(0), 1000).await.expect("due")).is_empty());
}
