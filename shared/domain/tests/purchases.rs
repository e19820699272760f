//! Grant purchases on the in-memory store, with a payment provider and an invoice-events queue
//! doubled here: an open invoice and its session, idempotent purchases, who may buy and at what
//! price, and fulfilment by payment events: exactly one grant per invoice whatever the duplicates,
//! late payments honoured, mismatches refused, failures and expiries recorded, and `invoice.paid`
//! published at least once.
#![allow(clippy::unwrap_used)]
mod common;

use async_trait::async_trait;
use common::{bound, credits, err, key, ts, World};
use grants_domain::auth::Principal;
use grants_domain::grants::Created;
use grants_domain::messaging::QueueError;
use grants_domain::model::Role;
use grants_domain::money::Currency;
use grants_domain::payments::{
    PaymentEvent, PaymentEventKind, PaymentProvider, PaymentSession, ProviderError, SessionRequest,
};
use grants_domain::ports::{GrantStore, PurchaseStore, TenantStore};
use grants_domain::purchases::{
    self, Applied, Fulfilment, Invoice, InvoiceEvents, InvoiceStatus, NewPurchase, PurchaseContext, RedirectUrl,
};
use grants_domain::tenants::{self, TenantCache, TenantSettings};
use grants_domain::{Clock, EntitlementId, InvoiceId, SessionId};
use rust_decimal::Decimal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// A provider that opens sessions in memory and verifies no webhook.
struct TestProvider {
    sandbox: bool,
    takes_payments: bool,
}

#[async_trait]
impl PaymentProvider for TestProvider {
    fn name(&self) -> &'static str {
        "test"
    }
    fn takes_payments(&self) -> bool {
        self.takes_payments
    }
    fn is_sandbox(&self) -> bool {
        self.sandbox
    }
    async fn open_session(&self, request: &SessionRequest<'_>) -> Result<PaymentSession, ProviderError> {
        Ok(PaymentSession {
            id: SessionId::generate(),
            url: format!("https://pay.test/{}", request.invoice_id),
            expires_at: request.expires_at,
            amount_minor: request.amount_minor,
            checkout: None,
        })
    }
}

const SANDBOX: TestProvider = TestProvider {
    sandbox: true,
    takes_payments: true,
};

/// The invoice-events queue: records what was published; can fail the next publish.
#[derive(Default)]
struct Published {
    invoices: Mutex<Vec<InvoiceId>>,
    fail_next: AtomicBool,
}

#[async_trait]
impl InvoiceEvents for Published {
    async fn invoice_paid(&self, invoice: &Invoice) -> Result<(), QueueError> {
        if self.fail_next.swap(false, Ordering::SeqCst) {
            return Err(QueueError("queue down".to_owned()));
        }
        self.invoices.lock().unwrap().push(invoice.id.clone());
        Ok(())
    }
}

impl Published {
    fn count(&self) -> usize {
        self.invoices.lock().unwrap().len()
    }
}

fn admin(w: &World) -> Principal {
    Principal {
        tenant: w.tenant.clone(),
        role: Role::Admin,
        key_id: "key_admin".to_owned(),
    }
}

fn buy(e: &EntitlementId, price: &str, k: &str) -> NewPurchase {
    NewPurchase {
        entitlement_id: e.clone(),
        amount: credits("100"),
        price: price.to_owned(),
        idempotency_key: key(k),
        effective_at: None,
        expires_at: None,
        success_url: None,
        cancel_url: None,
        payment_expires_at: None,
        reset_max_rollover: None,
        reset_min_rollover: None,
    }
}

fn tenant_cache() -> TenantCache {
    TenantCache::new(Duration::from_secs(0))
}

async fn purchase_with(
    w: &World,
    provider: &TestProvider,
    who: &Principal,
    req: NewPurchase,
) -> Result<Created<Invoice>, purchases::PurchaseError> {
    let cache = tenant_cache();
    let ctx = PurchaseContext {
        tenant_store: &w.store,
        entitlement_store: &w.store,
        purchase_store: &w.store,
        clock: &w.clock,
        provider,
        tenants: &cache,
        base_url: Some("https://grants.test"),
    };
    purchases::purchase(&ctx, who, req).await
}

async fn attempt(
    w: &World,
    who: &Principal,
    provider: &TestProvider,
    req: NewPurchase,
) -> Result<Invoice, purchases::PurchaseError> {
    purchase_with(w, provider, who, req).await.map(Created::into_inner)
}

async fn open(w: &World, req: NewPurchase) -> Invoice {
    match purchase_with(w, &SANDBOX, &admin(w), req).await.unwrap() {
        Created::New(i) => i,
        Created::Replayed(_) => panic!("expected a new invoice"),
    }
}

fn event(i: &Invoice, kind: PaymentEventKind, w: &World) -> PaymentEvent {
    PaymentEvent {
        id: "evt_test".to_owned(),
        kind,
        tenant: i.tenant.clone(),
        invoice_id: i.id.clone(),
        session_id: i.session.id.clone(),
        amount_minor: i.session.amount_minor,
        currency: i.price.currency(),
        occurred_at: w.clock.now(),
        failure: None,
    }
}

async fn apply(w: &World, published: &Published, e: &PaymentEvent) -> Result<Applied, purchases::FulfilError> {
    let f = Fulfilment {
        store: &w.store,
        clock: &w.clock,
        invoice_events: published,
    };
    purchases::apply_payment_event(&f, e).await
}

async fn invoice(w: &World, id: &InvoiceId) -> Invoice {
    purchases::get_invoice(&w.store, &w.tenant, id).await.unwrap()
}

#[tokio::test]
async fn a_purchase_opens_an_invoice_and_its_payment_makes_exactly_one_grant() {
    let w = World::at("2030-03-14T10:00:00Z");
    let e = w.entitlement("cus_1").await;
    let i = open(&w, buy(&e.id, "5.00", "buy-1")).await;
    assert_eq!(
        (i.status, i.version, i.grant_id.clone()),
        (InvoiceStatus::Open, 1, None)
    );
    assert_eq!((i.price.minor_units(), i.price.currency()), (500, Currency::USD));
    assert_eq!(i.session.expires_at, ts("2030-03-15T10:00:00Z"), "a day by default");
    assert_eq!((i.provider.as_str(), i.customer_id.as_str()), ("test", "cus_1"));
    assert_eq!(i.grant_effective_at, e.current_period_start);
    assert!(
        w.store.list_grants(&w.tenant, &e.id).await.unwrap().is_empty(),
        "no grant before payment"
    );
    assert_eq!(
        w.store.get_tenant(&w.tenant).await.unwrap().map(|s| s.currency),
        Some(Currency::USD),
        "the tenant's settings were created on first use"
    );
    assert_eq!(
        purchases::invoice_for_session(&w.store, &i.session.id).await.unwrap(),
        i
    );

    // The same key and body replay the invoice ("5" is the price "5.00"); another price conflicts.
    w.clock.advance(60);
    for price in ["5.00", "5"] {
        match purchase_with(&w, &SANDBOX, &admin(&w), buy(&e.id, price, "buy-1"))
            .await
            .unwrap()
        {
            Created::Replayed(r) => assert_eq!(r, i),
            Created::New(_) => panic!("a replay must not open another invoice"),
        }
    }
    assert_eq!(
        err(purchase_with(&w, &SANDBOX, &admin(&w), buy(&e.id, "6.00", "buy-1")).await),
        r#"IdempotencyMismatch(["price"])"#
    );

    let published = Published::default();
    let paid = event(&i, PaymentEventKind::Paid, &w);
    let grant_id = match apply(&w, &published, &paid).await.unwrap() {
        Applied::Fulfilled { grant_id, late } => {
            assert!(!late);
            grant_id
        }
        other => panic!("expected fulfilment, got {other:?}"),
    };
    let g = w.store.get_grant(&w.tenant, &e.id, &grant_id).await.unwrap().unwrap();
    assert_eq!((g.amount, g.remaining), (credits("100"), Decimal::from(100)));
    assert_eq!(g.details.invoice_id.as_deref(), Some(i.id.as_str()));
    assert_eq!(g.details.paid_amount, Some(Decimal::from(500)), "US cents");
    assert_eq!(
        (g.idempotency_key.as_deref(), g.effective_at),
        (Some("buy-1"), e.current_period_start)
    );
    let now_paid = invoice(&w, &i.id).await;
    assert_eq!(now_paid.status, InvoiceStatus::Paid);
    assert_eq!(
        (now_paid.grant_id.clone(), now_paid.paid_at),
        (Some(grant_id.clone()), Some(w.clock.now()))
    );
    assert!(now_paid.notified_at.is_some());
    assert_eq!(now_paid.version, 3, "paid, then notified");
    assert_eq!(published.count(), 1);

    // Duplicates and redeliveries change nothing.
    for _ in 0..3 {
        assert_eq!(
            apply(&w, &published, &paid).await.unwrap(),
            Applied::AlreadyFulfilled {
                grant_id: grant_id.clone()
            }
        );
    }
    assert_eq!(w.store.list_grants(&w.tenant, &e.id).await.unwrap().len(), 1);
    assert_eq!(published.count(), 1);
    assert_eq!(
        apply(&w, &published, &event(&i, PaymentEventKind::Expired, &w))
            .await
            .unwrap(),
        Applied::Ignored("invoice is no longer open")
    );
    assert_eq!(invoice(&w, &i.id).await, now_paid);
}

#[tokio::test]
async fn a_payment_after_the_session_expired_is_honoured_as_late() {
    let w = World::at("2030-03-14T10:00:00Z");
    let e = w.entitlement("cus_1").await;
    let i = open(
        &w,
        NewPurchase {
            payment_expires_at: Some(ts("2030-03-14T11:00:00Z")),
            ..buy(&e.id, "5.00", "buy-1")
        },
    )
    .await;
    let other = open(&w, buy(&e.id, "7.00", "buy-2")).await;
    w.clock.set("2030-03-14T12:00:00Z");
    assert_eq!(
        i.status_at(w.clock.now()),
        InvoiceStatus::Canceled,
        "read as canceled before the sweep"
    );
    assert_eq!(invoice(&w, &i.id).await.status, InvoiceStatus::Open);
    assert_eq!(
        purchases::expire_due_sessions(&w.store, &SANDBOX, &w.clock, 10)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        purchases::expire_due_sessions(&w.store, &SANDBOX, &w.clock, 10)
            .await
            .unwrap(),
        0
    );
    let canceled = invoice(&w, &i.id).await;
    assert_eq!(canceled.status, InvoiceStatus::Canceled);
    assert_eq!(canceled.cancel_reason.as_deref(), Some("payment_session_expired"));
    assert_eq!(canceled.canceled_at, Some(ts("2030-03-14T12:00:00Z")));
    assert_eq!(invoice(&w, &other.id).await.status, InvoiceStatus::Open, "not expired");

    let published = Published::default();
    match apply(&w, &published, &event(&i, PaymentEventKind::Paid, &w))
        .await
        .unwrap()
    {
        Applied::Fulfilled { late, .. } => assert!(late),
        other => panic!("expected fulfilment, got {other:?}"),
    }
    let paid = invoice(&w, &i.id).await;
    assert_eq!((paid.status, paid.paid_late), (InvoiceStatus::Paid, true));

    // Paid at the session's expiry while the invoice is still open: late too.
    let third = open(
        &w,
        NewPurchase {
            payment_expires_at: Some(ts("2030-03-14T13:00:00Z")),
            ..buy(&e.id, "5.00", "buy-3")
        },
    )
    .await;
    w.clock.set("2030-03-14T13:00:00Z");
    match apply(&w, &published, &event(&third, PaymentEventKind::Paid, &w))
        .await
        .unwrap()
    {
        Applied::Fulfilled { late, .. } => assert!(late),
        other => panic!("expected fulfilment, got {other:?}"),
    }
}

#[tokio::test]
async fn events_that_do_not_match_the_invoice_are_refused_for_good() {
    let w = World::at("2030-03-14T10:00:00Z");
    let e = w.entitlement("cus_1").await;
    let i = open(&w, buy(&e.id, "5.00", "buy-1")).await;
    let published = Published::default();
    let paid = event(&i, PaymentEventKind::Paid, &w);
    let cases = [
        PaymentEvent {
            amount_minor: 499,
            ..paid.clone()
        },
        PaymentEvent {
            currency: Currency::parse("eur").unwrap(),
            ..paid.clone()
        },
        PaymentEvent {
            session_id: SessionId::generate(),
            ..paid.clone()
        },
    ];
    for bad in &cases {
        let refused = apply(&w, &published, bad).await.unwrap_err();
        assert!(refused.is_permanent(), "{refused:?}");
        assert!(format!("{refused:?}").starts_with("Mismatch"), "{refused:?}");
    }
    let unknown = PaymentEvent {
        invoice_id: InvoiceId::generate(),
        ..paid.clone()
    };
    let refused = apply(&w, &published, &unknown).await.unwrap_err();
    assert!(refused.is_permanent() && format!("{refused:?}").starts_with("UnknownInvoice"));
    assert!(w.store.list_grants(&w.tenant, &e.id).await.unwrap().is_empty());
    assert_eq!(invoice(&w, &i.id).await, i);
}

#[tokio::test]
async fn failures_are_recorded_and_expiries_cancel_open_invoices() {
    let w = World::at("2030-03-14T10:00:00Z");
    let e = w.entitlement("cus_1").await;
    let i = open(&w, buy(&e.id, "5.00", "buy-1")).await;
    let published = Published::default();
    assert_eq!(
        apply(&w, &published, &event(&i, PaymentEventKind::Failed, &w))
            .await
            .unwrap(),
        Applied::FailureRecorded
    );
    let failed = invoice(&w, &i.id).await;
    assert_eq!((failed.status, failed.version), (InvoiceStatus::Open, 2));
    assert_eq!(failed.failure_reason.as_deref(), Some("PAYMENT_FAILED"));
    assert_eq!(
        apply(&w, &published, &event(&i, PaymentEventKind::Expired, &w))
            .await
            .unwrap(),
        Applied::Canceled
    );
    assert_eq!(invoice(&w, &i.id).await.status, InvoiceStatus::Canceled);
    assert_eq!(
        apply(&w, &published, &event(&i, PaymentEventKind::Failed, &w))
            .await
            .unwrap(),
        Applied::Ignored("invoice is no longer open")
    );
    assert_eq!(published.count(), 0);
}

#[tokio::test]
async fn a_grant_whose_event_was_not_published_is_published_on_redelivery() {
    let w = World::at("2030-03-14T10:00:00Z");
    let e = w.entitlement("cus_1").await;
    let i = open(&w, buy(&e.id, "5.00", "buy-1")).await;
    let published = Published::default();
    published.fail_next.store(true, Ordering::SeqCst);
    let paid = event(&i, PaymentEventKind::Paid, &w);
    let failed = apply(&w, &published, &paid).await.unwrap_err();
    assert!(!failed.is_permanent(), "retried: {failed:?}");
    let half = invoice(&w, &i.id).await;
    assert_eq!(
        (half.status, half.notified_at),
        (InvoiceStatus::Paid, None),
        "paid, not yet published"
    );
    assert_eq!(w.store.list_grants(&w.tenant, &e.id).await.unwrap().len(), 1);
    let again = apply(&w, &published, &paid).await.unwrap();
    assert_eq!(
        again,
        Applied::AlreadyFulfilled {
            grant_id: half.grant_id.clone().unwrap()
        }
    );
    assert_eq!(published.count(), 1);
    assert!(invoice(&w, &i.id).await.notified_at.is_some());
    apply(&w, &published, &paid).await.unwrap();
    assert_eq!(published.count(), 1, "published once it is recorded");
    assert_eq!(w.store.list_grants(&w.tenant, &e.id).await.unwrap().len(), 1);
}

#[tokio::test]
async fn who_may_buy_at_what_price_and_where_the_customer_may_be_sent_back() {
    let w = World::at("2030-03-14T10:00:00Z");
    let e = w.entitlement("cus_1").await;
    let settings = tenants::ensure(&w.store, &w.clock, &w.tenant, None).await.unwrap();
    let member = Principal {
        role: Role::Member,
        ..admin(&w)
    };
    assert_eq!(
        err(attempt(&w, &member, &SANDBOX, buy(&e.id, "5.00", "m")).await),
        "MembersMayNotPurchase"
    );
    let nothing = TestProvider {
        sandbox: false,
        takes_payments: false,
    };
    assert!(err(attempt(&w, &admin(&w), &nothing, buy(&e.id, "5.00", "n")).await).starts_with("Provider("));
    assert!(err(attempt(&w, &admin(&w), &SANDBOX, buy(&e.id, "5.001", "p")).await).starts_with("InvalidPrice("));
    assert!(err(attempt(&w, &admin(&w), &SANDBOX, buy(&e.id, "0.10", "p")).await).starts_with("InvalidPrice("));
    let strict = TenantSettings {
        members_may_purchase: true,
        min_price_per_credit: Some(Decimal::new(1, 2)),
        allowed_redirect_origins: vec!["https://shop.example.com".to_owned()],
        ..settings.clone()
    };
    w.store.put_tenant(&strict).await.unwrap();
    assert_eq!(
        err(attempt(&w, &member, &SANDBOX, buy(&e.id, "0.99", "m")).await),
        r#"PriceBelowMinimum { minimum: "1" }"#
    );
    let i = attempt(&w, &member, &SANDBOX, buy(&e.id, "1.00", "m")).await.unwrap();
    assert_eq!(i.price.minor_units(), 100);
    let elsewhere = NewPurchase {
        success_url: Some(RedirectUrl::parse("https://evil.example/ok").unwrap()),
        ..buy(&e.id, "5.00", "r")
    };
    assert!(err(attempt(&w, &admin(&w), &SANDBOX, elsewhere).await)
        .starts_with(r#"RedirectNotAllowed { field: "successUrl""#));
    let allowed = NewPurchase {
        success_url: Some(RedirectUrl::parse("https://SHOP.example.com/thanks").unwrap()),
        cancel_url: Some(RedirectUrl::parse("https://shop.example.com/cancel").unwrap()),
        ..buy(&e.id, "5.00", "r")
    };
    let i = attempt(&w, &admin(&w), &SANDBOX, allowed).await.unwrap();
    assert_eq!(i.success_url.as_deref(), Some("https://SHOP.example.com/thanks"));
    // No allowed origins: any https URL, and only with a sandbox provider.
    w.store.put_tenant(&settings).await.unwrap();
    let any = |k: &str| NewPurchase {
        cancel_url: Some(RedirectUrl::parse("https://anywhere.example/").unwrap()),
        ..buy(&e.id, "5.00", k)
    };
    assert!(attempt(&w, &admin(&w), &SANDBOX, any("s")).await.is_ok());
    let real = TestProvider {
        sandbox: false,
        takes_payments: true,
    };
    assert!(
        err(attempt(&w, &admin(&w), &real, any("t")).await).starts_with(r#"RedirectNotAllowed { field: "cancelUrl""#)
    );

    for (req, expected) in [
        (
            NewPurchase {
                payment_expires_at: Some(ts("2030-04-14T10:00:01Z")),
                ..buy(&e.id, "5.00", "w")
            },
            "PaymentWindow",
        ),
        (
            NewPurchase {
                payment_expires_at: Some(ts("2030-03-14T10:00:00Z")),
                ..buy(&e.id, "5.00", "w")
            },
            "PaymentWindow",
        ),
        (
            NewPurchase {
                reset_min_rollover: Some(bound("5")),
                reset_max_rollover: Some(bound("1")),
                ..buy(&e.id, "5.00", "b")
            },
            "Rollover(Inverted)",
        ),
        (
            NewPurchase {
                expires_at: Some(ts("2030-03-01T00:00:00Z")),
                ..buy(&e.id, "5.00", "x")
            },
            "ExpiresNotAfterEffective",
        ),
        (buy(&EntitlementId::generate(), "5.00", "g"), "EntitlementNotFound"),
    ] {
        assert_eq!(err(attempt(&w, &admin(&w), &SANDBOX, req).await), expected);
    }
    grants_domain::entitlements::cancel_entitlement(&w.store, &w.clock, &w.tenant, &e.id)
        .await
        .unwrap();
    assert_eq!(
        err(attempt(&w, &admin(&w), &SANDBOX, buy(&e.id, "5.00", "late")).await),
        r#"EntitlementNotActive("canceled")"#
    );
    // A replay is still answered after the entitlement was cancelled.
    assert!(attempt(&w, &admin(&w), &SANDBOX, buy(&e.id, "1.00", "m")).await.is_ok());
    assert!(w.store.find_session(&SessionId::generate()).await.unwrap().is_none());
}

/// Issue 18, item 3: a refund takes back, from the purchased grant, the credits in proportion to the
/// money refunded, but only those still unspent; deliveries twice or out of order change nothing
/// more; never more than the grant had; the invoice records it and `grant.reduced.v0` is written.
#[tokio::test]
async fn refunds_take_back_only_the_unspent_part_of_the_purchased_grant() {
    use grants_domain::usage::{record_usage, NewUsage, UsageEventId};
    use grants_domain::webhook_delivery::DeliveryStore;
    let w = World::at("2030-03-14T10:00:00Z");
    let e = w.entitlement("cus_1").await;
    let i = open(&w, buy(&e.id, "5.00", "refund")).await;
    let refund = |total: i64| PaymentEvent {
        kind: PaymentEventKind::Refunded,
        amount_minor: total,
        id: format!("evt_refund_{total}"),
        ..event(&i, PaymentEventKind::Refunded, &w)
    };
    assert!(matches!(
        purchases::apply_refund(&w.store, &w.clock, &refund(100)).await,
        Err(purchases::FulfilError::NotPaidYet(_))
    ));
    let published = Published::default();
    let Applied::Fulfilled { grant_id, .. } = apply(&w, &published, &event(&i, PaymentEventKind::Paid, &w))
        .await
        .unwrap()
    else {
        panic!("not fulfilled")
    };
    w.clock.advance(60);
    let used = NewUsage {
        entitlement_id: e.id.clone(),
        event_id: UsageEventId::parse("use-30").unwrap(),
        amount: credits("30"),
        occurred_at: None,
        pending: false,
    };
    record_usage(&w.store, &w.clock, &w.tenant, used).await.unwrap();
    let remaining = || async {
        w.store
            .get_grant(&w.tenant, &e.id, &grant_id)
            .await
            .unwrap()
            .unwrap()
            .remaining
    };
    assert_eq!(remaining().await, Decimal::from(70));
    // 1.00 of 5.00 back: 20 of the 100 credits asked, 70 unspent: 20 taken.
    let purchases::Refunded::Applied(first) = purchases::apply_refund(&w.store, &w.clock, &refund(100)).await.unwrap()
    else {
        panic!("not applied")
    };
    assert_eq!(
        (first.reduced_by, first.not_reclaimed),
        (Decimal::from(20), Decimal::ZERO)
    );
    assert_eq!(remaining().await, Decimal::from(50));
    assert_eq!(
        purchases::apply_refund(&w.store, &w.clock, &refund(100)).await.unwrap(),
        purchases::Refunded::AlreadyApplied,
        "a duplicate"
    );
    // All of it back: 80 more asked, 50 unspent: 50 taken, 30 were spent and stay spent.
    let purchases::Refunded::Applied(full) = purchases::apply_refund(&w.store, &w.clock, &refund(500)).await.unwrap()
    else {
        panic!("not applied")
    };
    assert_eq!(
        (full.reduced_by, full.not_reclaimed, full.remaining),
        (Decimal::from(50), Decimal::from(30), Decimal::ZERO)
    );
    assert_eq!(remaining().await, Decimal::ZERO);
    assert_eq!(
        purchases::apply_refund(&w.store, &w.clock, &refund(100)).await.unwrap(),
        purchases::Refunded::AlreadyApplied,
        "an older total, late"
    );
    let stored = invoice(&w, &i.id).await;
    assert_eq!(
        (stored.refunded_minor, stored.credits_reclaimed),
        (500, Decimal::from(70))
    );
    let message = grants_domain::webhook_messages::grant_reduced(&full);
    assert!(w.store.get_message(&w.tenant, &message.id).await.unwrap().is_some());
    // More than was paid: never applied (the dead-letter queue).
    assert!(matches!(
        purchases::apply_refund(&w.store, &w.clock, &refund(501)).await,
        Err(purchases::FulfilError::Mismatch { .. })
    ));
}
