//! The contract of the webhook configuration port ([`crate::webhooks::WebhookStore`]).
use super::{tenant, ts};
use crate::ports::Store;
use crate::webhooks::{ApplicationId, WebhookConfig};

/// A configuration reads back as written; a tenant has at most one (a second insert writes
/// nothing); `enabled` changes only an existing one and returns it as written; tenants are apart.
pub async fn webhook_configs_are_one_per_tenant(store: &dyn Store, prefix: &str) {
    let (t, other) = (tenant(prefix, "a"), tenant(prefix, "b"));
    let at = ts("2030-01-01T00:00:00.123456Z");
    let config = WebhookConfig {
        tenant: t.clone(),
        application_id: ApplicationId::generate(),
        enabled: true,
        created_at: at,
        updated_at: at,
    };
    assert_eq!(store.get_webhook_config(&t).await.expect("get"), None);
    assert!(store.insert_webhook_config(&config).await.expect("insert"));
    assert_eq!(store.get_webhook_config(&t).await.expect("get"), Some(config.clone()));
    let second = WebhookConfig {
        application_id: ApplicationId::generate(),
        ..config.clone()
    };
    assert!(
        !store.insert_webhook_config(&second).await.expect("insert"),
        "one per tenant"
    );
    assert_eq!(store.get_webhook_config(&t).await.expect("get"), Some(config.clone()));
    let later = ts("2030-01-02T00:00:00Z");
    let paused = store.set_webhooks_enabled(&t, false, later).await.expect("set");
    let expected = WebhookConfig {
        enabled: false,
        updated_at: later,
        ..config.clone()
    };
    assert_eq!(paused, Some(expected.clone()));
    assert_eq!(store.get_webhook_config(&t).await.expect("get"), Some(expected));
    assert_eq!(
        store.set_webhooks_enabled(&other, true, later).await.expect("set"),
        None
    );
    assert_eq!(
        store.get_webhook_config(&other).await.expect("get"),
        None,
        "nothing written"
    );
}

/// An endpoint reads back as written (filter, secrets, previous secret); lists in id order per
/// tenant; is replaced only over the version it was read at; is deleted once.
pub async fn webhook_endpoints_round_trip_and_change_by_version(store: &dyn Store, prefix: &str) {
    use crate::webhook_endpoints::{EndpointId, EndpointUrl, EventTypeName, SigningSecret, WebhookEndpoint};
    let (t, other) = (tenant(prefix, "a"), tenant(prefix, "b"));
    let at = ts("2030-01-01T00:00:00.123456Z");
    let endpoint = |url: &str| WebhookEndpoint {
        tenant: t.clone(),
        id: EndpointId::generate(),
        url: EndpointUrl::parse(url).expect("url"),
        description: "prod".to_owned(),
        event_types: Some(
            [EventTypeName::parse("invoice.paid.v0").expect("type")]
                .into_iter()
                .collect(),
        ),
        disabled: false,
        secret: SigningSecret::generate().expect("secret"),
        previous_secret: None,
        created_at: at,
        updated_at: at,
        failing_since: None,
        disabled_reason: None,
        version: 1,
    };
    let first = endpoint("https://example.com/hooks?x=1");
    let second = WebhookEndpoint {
        event_types: None,
        ..endpoint("http://127.0.0.1:9000/")
    };
    store.insert_endpoint(&first).await.expect("insert");
    store.insert_endpoint(&second).await.expect("insert");
    assert_eq!(
        store.get_endpoint(&t, &first.id).await.expect("get"),
        Some(first.clone())
    );
    let mut both = vec![first.clone(), second.clone()];
    both.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(store.list_endpoints(&t).await.expect("list"), both, "in id order");
    assert!(store.list_endpoints(&other).await.expect("list").is_empty());
    assert_eq!(store.get_endpoint(&other, &first.id).await.expect("get"), None);
    let rotated = WebhookEndpoint {
        secret: SigningSecret::generate().expect("secret"),
        previous_secret: Some((first.secret.clone(), ts("2030-01-02T00:00:00Z"))),
        disabled: true,
        failing_since: Some(ts("2030-01-01T12:00:00Z")),
        disabled_reason: Some("every delivery failed".to_owned()),
        version: 2,
        ..first.clone()
    };
    assert!(store.replace_endpoint(&rotated).await.expect("replace"));
    assert!(
        !store.replace_endpoint(&rotated).await.expect("replace"),
        "over version 1 only"
    );
    assert_eq!(store.get_endpoint(&t, &first.id).await.expect("get"), Some(rotated));
    assert!(store.delete_endpoint(&t, &first.id).await.expect("delete"));
    assert!(!store.delete_endpoint(&t, &first.id).await.expect("delete"));
    assert_eq!(store.list_endpoints(&t).await.expect("list"), vec![second]);
}

/// A grant's creation and its void each record their webhook message with the change (the
/// outbox), readable by id within the tenant only.
pub async fn grant_changes_record_their_webhook_messages(store: &dyn Store, prefix: &str) {
    use super::{stored_entitlement, stored_grant};
    use crate::webhook_messages::{grant_created, grant_voided, GRANT_CREATED, GRANT_VOIDED};
    let (t, other) = (tenant(prefix, "a"), tenant(prefix, "b"));
    let e = stored_entitlement(store, &t, "c").await;
    let g = stored_grant(store, &e, "10").await;
    let created = grant_created(&g);
    let read = store
        .get_message(&t, &created.id)
        .await
        .expect("get")
        .expect("recorded");
    assert_eq!(read, created);
    assert_eq!(read.event_type, GRANT_CREATED);
    assert!(read.payload.contains(g.id.as_str()));
    assert_eq!(store.get_message(&other, &created.id).await.expect("get"), None);
    let voided = store
        .void_grant(&t, &e.id, &g.id, ts("2030-06-01T00:00:00Z"))
        .await
        .expect("void")
        .expect("exists");
    let message = grant_voided(&voided);
    let read = store
        .get_message(&t, &message.id)
        .await
        .expect("get")
        .expect("recorded");
    assert_eq!(
        (read.event_type.as_str(), read.payload),
        (GRANT_VOIDED, message.payload)
    );
}

/// Attempts read back newest first, a page at a time, per endpoint; subscribers are the tenant's
/// endpoints only while its webhooks are enabled.
pub async fn attempts_page_newest_first_and_subscribers_follow_the_switch(store: &dyn Store, prefix: &str) {
    use crate::webhook_delivery::{AttemptStatus, MessageAttempt, Trigger};
    use crate::webhook_endpoints::{EndpointId, EndpointUrl, SigningSecret, WebhookEndpoint};
    use crate::webhook_messages::MessageId;
    let t = tenant(prefix, "a");
    let at = ts("2030-01-01T00:00:00Z");
    assert!(store.subscribers(&t).await.expect("subscribers").is_empty());
    let endpoint = WebhookEndpoint {
        tenant: t.clone(),
        id: EndpointId::generate(),
        url: EndpointUrl::parse("https://example.com/a").expect("url"),
        description: String::new(),
        event_types: None,
        disabled: false,
        secret: SigningSecret::generate().expect("secret"),
        previous_secret: None,
        created_at: at,
        updated_at: at,
        failing_since: None,
        disabled_reason: None,
        version: 1,
    };
    store.insert_endpoint(&endpoint).await.expect("insert");
    assert!(
        store.subscribers(&t).await.expect("subscribers").is_empty(),
        "not enabled"
    );
    let config = WebhookConfig {
        tenant: t.clone(),
        application_id: ApplicationId::generate(),
        enabled: true,
        created_at: at,
        updated_at: at,
    };
    assert!(store.insert_webhook_config(&config).await.expect("insert"));
    assert_eq!(
        store.subscribers(&t).await.expect("subscribers"),
        vec![endpoint.clone()]
    );
    store.set_webhooks_enabled(&t, false, at).await.expect("pause");
    assert!(store.subscribers(&t).await.expect("subscribers").is_empty(), "paused");

    // Ids made a millisecond apart: time order is id order.
    let mut ids = Vec::new();
    for n in 1..=3u32 {
        let id = crate::AttemptId::generate();
        ids.push(id.clone());
        let attempt = MessageAttempt {
            id,
            tenant: t.clone(),
            endpoint_id: endpoint.id.clone(),
            message_id: MessageId::parse("msg_grant_created_01CONTRACT").expect("id"),
            event_type: "grant.created.v0".to_owned(),
            url: endpoint.url.as_str().to_owned(),
            status: if n == 3 {
                AttemptStatus::Success
            } else {
                AttemptStatus::Fail
            },
            response_status_code: if n == 3 { 200 } else { 500 },
            response: format!("answer {n}"),
            response_duration_ms: u64::from(n),
            trigger: Trigger::Scheduled,
            attempt_number: n,
            timestamp: at,
        };
        store.record_attempt(&attempt).await.expect("record");
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let (first, more) = store
        .attempts_by_endpoint(&t, &endpoint.id, None, 2)
        .await
        .expect("page");
    assert!(more);
    assert_eq!(
        first.iter().map(|a| a.attempt_number).collect::<Vec<_>>(),
        vec![3, 2],
        "newest first"
    );
    assert_eq!(
        (first[0].status, first[0].response.as_str()),
        (AttemptStatus::Success, "answer 3")
    );
    let (rest, more) = store
        .attempts_by_endpoint(&t, &endpoint.id, Some(&first[1].id), 2)
        .await
        .expect("page");
    assert!(!more);
    assert_eq!(
        rest.iter().map(|a| a.id.clone()).collect::<Vec<_>>(),
        vec![ids[0].clone()]
    );
    let other = EndpointId::generate();
    assert!(store
        .attempts_by_endpoint(&t, &other, None, 10)
        .await
        .expect("page")
        .0
        .is_empty());
}
