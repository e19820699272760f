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
