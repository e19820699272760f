//! Dispatch and delivery rules on the in-memory store: who gets a message, what each attempt
//! records, when the next is due, and when a failing endpoint is disabled. The real stack (the
//! table's stream, SQS, HTTP) is tested by tests/compat/test_webhook_delivery.py.
#![allow(clippy::unwrap_used)]
use async_trait::async_trait;
use grants_domain::memory::MemoryStore;
use grants_domain::messaging::{MessageQueue, QueueError};
use grants_domain::model::{Grant, NewGrantFields};
use grants_domain::webhook_delivery::{
    self, AttemptStatus, Deliverer, DeliveryJob, DeliveryStore, Outcome, Posted, Trigger, WebhookSender, RETRY_SCHEDULE,
};
use grants_domain::webhook_endpoints::{self, EndpointStore, EndpointUrl, EventTypeName, NewEndpoint};
use grants_domain::webhook_messages;
use grants_domain::webhooks::WebhookStore;
use grants_domain::{webhooks, Clock, CreditAmount, EntitlementId, TenantId, Timestamp};
use std::sync::Mutex;
use std::time::Duration;

struct At(Mutex<Timestamp>);
impl Clock for At {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
    }
}

#[derive(Default)]
struct Recorded(Mutex<Vec<String>>);
#[async_trait]
impl MessageQueue for Recorded {
    async fn send(&self, body: String) -> Result<(), QueueError> {
        self.0.lock().unwrap().push(body);
        Ok(())
    }
}

/// Answers with the statuses given, in order (then 200).
struct Answers(Mutex<Vec<u16>>, Mutex<Vec<Vec<(&'static str, String)>>>);
#[async_trait]
impl WebhookSender for Answers {
    async fn post(&self, _url: &str, headers: &[(&'static str, String)], _body: &str) -> Posted {
        self.1.lock().unwrap().push(headers.to_vec());
        let mut left = self.0.lock().unwrap();
        let status = if left.is_empty() { 200 } else { left.remove(0) };
        Posted {
            status: Some(status),
            body: format!("answered {status}"),
            duration: Duration::from_millis(3),
        }
    }
}

fn grant(tenant: &TenantId) -> Grant {
    Grant::new(NewGrantFields {
        tenant: tenant.clone(),
        entitlement_id: EntitlementId::generate(),
        customer_id: "cus_1".to_owned(),
        amount: CreditAmount::parse("100").unwrap(),
        effective_at: Timestamp::parse("2030-01-01T00:00:00Z").unwrap(),
        created_at: Timestamp::parse("2030-01-01T00:00:00Z").unwrap(),
        credit_type_id: None,
    })
}

async fn setup(store: &MemoryStore, clock: &At, tenant: &TenantId) -> String {
    let config = webhooks::enable_webhooks(store, clock, tenant, None).await.unwrap();
    config.application_id.as_str().to_owned()
}

async fn endpoint(
    store: &MemoryStore,
    clock: &At,
    tenant: &TenantId,
    app: &str,
    types: Option<&[&str]>,
    disabled: bool,
) -> webhook_endpoints::WebhookEndpoint {
    webhook_endpoints::create_endpoint(
        store,
        clock,
        tenant,
        app,
        NewEndpoint {
            url: EndpointUrl::parse("https://receiver.example/hook").unwrap(),
            description: String::new(),
            event_types: types.map(|t| t.iter().map(|n| EventTypeName::parse(n).unwrap()).collect()),
            disabled,
            secret: None,
        },
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_message_goes_to_each_enabled_endpoint_that_takes_its_type_and_no_other_tenant() {
    let (store, clock) = (
        MemoryStore::new(),
        At(Mutex::new(Timestamp::parse("2030-01-01T00:00:00Z").unwrap())),
    );
    let (acme, other) = (TenantId::parse("acme").unwrap(), TenantId::parse("other").unwrap());
    let app = setup(&store, &clock, &acme).await;
    let all = endpoint(&store, &clock, &acme, &app, None, false).await;
    let _filtered = endpoint(&store, &clock, &acme, &app, Some(&["invoice.paid.v0"]), false).await;
    let _disabled = endpoint(&store, &clock, &acme, &app, None, true).await;
    let other_app = setup(&store, &clock, &other).await;
    let _others = endpoint(&store, &clock, &other, &other_app, None, false).await;

    let message = webhook_messages::grant_created(&grant(&acme));
    let queue = Recorded::default();
    assert_eq!(webhook_delivery::dispatch(&store, &queue, &message).await.unwrap(), 1);
    let job = DeliveryJob::from_json(&queue.0.lock().unwrap()[0]).unwrap();
    assert_eq!(job.endpoint_id, all.id.as_str());
    assert_eq!(job.message_id, message.id.as_str());
    assert_eq!(job.trigger, Trigger::Scheduled);

    // Paused webhooks (PATCH /v0/webhooks enabled=false): nobody.
    store.set_webhooks_enabled(&acme, false, clock.now()).await.unwrap();
    assert_eq!(webhook_delivery::dispatch(&store, &queue, &message).await.unwrap(), 0);
}

#[tokio::test]
async fn failed_attempts_follow_the_schedule_with_the_same_webhook_id_and_are_logged() {
    let (store, clock) = (
        MemoryStore::new(),
        At(Mutex::new(Timestamp::parse("2030-01-01T00:00:00Z").unwrap())),
    );
    let acme = TenantId::parse("acme").unwrap();
    let app = setup(&store, &clock, &acme).await;
    let ep = endpoint(&store, &clock, &acme, &app, None, false).await;
    let message = webhook_messages::grant_created(&grant(&acme));
    let job = DeliveryJob::new(&message, &ep.id, Trigger::Scheduled);
    let sender = Answers(Mutex::new(vec![500, 503]), Mutex::new(Vec::new()));
    let d = Deliverer {
        store: &store,
        sender: &sender,
        clock: &clock,
        schedule: &RETRY_SCHEDULE,
    };
    assert_eq!(
        webhook_delivery::deliver(&d, &job, 1).await.unwrap(),
        Outcome::RetryAfter(Duration::from_secs(5))
    );
    let failing = store.get_endpoint(&acme, &ep.id).await.unwrap().unwrap();
    assert!(failing.failing_since.is_some());
    // Attempt ids order by millisecond.
    tokio::time::sleep(Duration::from_millis(2)).await;
    assert_eq!(
        webhook_delivery::deliver(&d, &job, 2).await.unwrap(),
        Outcome::RetryAfter(Duration::from_secs(300))
    );
    tokio::time::sleep(Duration::from_millis(2)).await;
    assert_eq!(
        webhook_delivery::deliver(&d, &job, 3).await.unwrap(),
        Outcome::Delivered
    );
    assert_eq!(
        store.get_endpoint(&acme, &ep.id).await.unwrap().unwrap().failing_since,
        None,
        "recovered"
    );

    let ids: Vec<String> = sender.1.lock().unwrap().iter().map(|h| h[0].1.clone()).collect();
    assert_eq!(
        ids,
        vec![message.id.as_str().to_owned(); 3],
        "webhook-id is the message id every time"
    );
    let (attempts, more) = store.attempts_by_endpoint(&acme, &ep.id, None, 10).await.unwrap();
    assert!(!more);
    let seen: Vec<(u16, AttemptStatus, u32)> = attempts
        .iter()
        .map(|a| (a.response_status_code, a.status, a.attempt_number))
        .collect();
    assert_eq!(
        seen,
        vec![
            (200, AttemptStatus::Success, 3),
            (503, AttemptStatus::Fail, 2),
            (500, AttemptStatus::Fail, 1)
        ],
        "newest first"
    );
    assert_eq!(attempts[2].response, "answered 500");

    // After the last attempt of the schedule: failed, resendable.
    let last = Answers(Mutex::new(vec![500]), Mutex::new(Vec::new()));
    let d = Deliverer { sender: &last, ..d };
    assert_eq!(webhook_delivery::deliver(&d, &job, 8).await.unwrap(), Outcome::Failed);
    let queue = Recorded::default();
    webhook_delivery::resend(&store, &queue, &acme, &app, message.id.as_str(), ep.id.as_str())
        .await
        .expect_err("the message is not in this store's outbox: it was built by hand");
    assert!(queue.0.lock().unwrap().is_empty());
}

#[tokio::test]
async fn an_endpoint_failing_for_five_days_is_disabled_and_gets_nothing_more() {
    let start = Timestamp::parse("2030-01-01T00:00:00Z").unwrap();
    let (store, clock) = (MemoryStore::new(), At(Mutex::new(start)));
    let acme = TenantId::parse("acme").unwrap();
    let app = setup(&store, &clock, &acme).await;
    let ep = endpoint(&store, &clock, &acme, &app, None, false).await;
    let job = DeliveryJob::new(
        &webhook_messages::grant_created(&grant(&acme)),
        &ep.id,
        Trigger::Scheduled,
    );
    let sender = Answers(Mutex::new(vec![500; 10]), Mutex::new(Vec::new()));
    let d = Deliverer {
        store: &store,
        sender: &sender,
        clock: &clock,
        schedule: &RETRY_SCHEDULE,
    };
    webhook_delivery::deliver(&d, &job, 1).await.unwrap();
    *clock.0.lock().unwrap() = start.plus_seconds(4 * 86_400).unwrap();
    webhook_delivery::deliver(&d, &job, 1).await.unwrap();
    assert!(
        !store.get_endpoint(&acme, &ep.id).await.unwrap().unwrap().disabled,
        "4 days: still on"
    );
    *clock.0.lock().unwrap() = start.plus_seconds(5 * 86_400).unwrap();
    webhook_delivery::deliver(&d, &job, 1).await.unwrap();
    let disabled = store.get_endpoint(&acme, &ep.id).await.unwrap().unwrap();
    assert!(disabled.disabled);
    assert!(disabled
        .disabled_reason
        .unwrap()
        .starts_with("every delivery failed from 2030-01-01T00:00:00Z"));
    assert_eq!(
        webhook_delivery::deliver(&d, &job, 2).await.unwrap(),
        Outcome::Dropped("the endpoint is disabled")
    );

    // A person enables it again: it starts afresh.
    let again = webhook_endpoints::patch_endpoint(
        &store,
        &clock,
        &acme,
        &app,
        ep.id.as_str(),
        webhook_endpoints::EndpointPatch {
            url: None,
            description: None,
            event_types: None,
            disabled: Some(false),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        (again.disabled, again.disabled_reason, again.failing_since),
        (false, None, None)
    );
}

#[tokio::test]
async fn the_outbox_records_grant_and_purchase_events_with_their_changes() {
    let store = MemoryStore::new();
    let acme = TenantId::parse("acme").unwrap();
    let g = grant(&acme);
    let voided = {
        use grants_domain::grants::GrantStore;
        // Unknown entitlement: refused, and nothing is recorded.
        let _ = store.insert_grant(&g, None, None).await;
        store
            .void_grant(
                &acme,
                &g.entitlement_id,
                &g.id,
                Timestamp::parse("2030-02-01T00:00:00Z").unwrap(),
            )
            .await
            .unwrap()
    };
    let types: Vec<String> = store.outbox().iter().map(|m| m.event_type.clone()).collect();
    match voided {
        None => assert!(types.is_empty(), "no grant, no message: {types:?}"),
        Some(_) => assert_eq!(types, vec!["grant.created.v0", "grant.voided.v0"]),
    }
    let body: serde_json::Value = serde_json::from_str(&webhook_messages::grant_created(&g).payload).unwrap();
    assert_eq!(body["type"], "grant.created.v0");
    assert_eq!(body["data"]["grantId"], g.id.as_str());
    assert_eq!(body["timestamp"], "2030-01-01T00:00:00Z");
}

#[tokio::test]
async fn a_portal_link_works_for_an_hour_for_its_tenant_only() {
    use grants_domain::webhook_portal::{open_portal, portal_session, PortalError};
    let start = Timestamp::parse("2030-01-01T00:00:00Z").unwrap();
    let (store, clock) = (MemoryStore::new(), At(Mutex::new(start)));
    let acme = TenantId::parse("acme").unwrap();
    assert!(matches!(
        open_portal(&store, &clock, &acme, None).await,
        Err(PortalError::NotConfigured)
    ));
    let app = setup(&store, &clock, &acme).await;
    assert!(matches!(
        open_portal(&store, &clock, &acme, Some("other")).await,
        Err(PortalError::MerchantNotFound)
    ));
    let (token, expires) = open_portal(&store, &clock, &acme, None).await.unwrap();
    assert_eq!(expires, start.plus_seconds(3600).unwrap());
    assert!(
        format!("{token:?}").find(token.expose()).is_none(),
        "Debug hides the token"
    );
    let (tenant, application, _) = portal_session(&store, &clock, token.expose()).await.unwrap();
    assert_eq!((tenant, application.as_str()), (acme.clone(), app.as_str()));
    *clock.0.lock().unwrap() = expires;
    assert!(matches!(
        portal_session(&store, &clock, token.expose()).await,
        Err(PortalError::LinkNotFound)
    ));
}
