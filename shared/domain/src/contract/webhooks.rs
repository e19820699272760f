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
