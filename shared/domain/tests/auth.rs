//! API keys and tenant settings on the in-memory store: authentication (and its note of use at
//! most once an hour), revocation, rotation with an overlap, listing; settings created once and
//! read through the instance cache.
#![allow(clippy::unwrap_used)]
mod common;

use common::{err, ts, TestClock};
use grants_domain::auth::{self, KeyCache};
use grants_domain::memory::MemoryStore;
use grants_domain::model::Role;
use grants_domain::money::Currency;
use grants_domain::ports::{ApiKeyStore, TenantStore};
use grants_domain::tenants::{self, TenantCache, TenantSettings};
use grants_domain::{Clock, TenantId, Timestamp};
use std::time::Duration;

/// A cache that keeps nothing: every request reads the store.
fn no_cache() -> KeyCache {
    KeyCache::new(Duration::ZERO)
}

async fn new_key(store: &MemoryStore, clock: &TestClock, tenant: &TenantId, role: Role) -> (String, String) {
    let (key, record) = auth::generate_key(tenant, role, clock).unwrap();
    store.put_api_key(&record).await.unwrap();
    (key, record.key_id())
}

async fn last_used(store: &MemoryStore, key: &str) -> Option<Timestamp> {
    store
        .find_api_key(&auth::hash_key(key))
        .await
        .unwrap()
        .unwrap()
        .last_used_at
}

#[tokio::test]
async fn keys_authenticate_their_tenant_and_role_and_note_their_use_once_an_hour() {
    let (store, clock) = (MemoryStore::new(), TestClock::at("2030-03-14T10:00:00Z"));
    let t = TenantId::parse("acme").unwrap();
    let (key, key_id) = new_key(&store, &clock, &t, Role::Member).await;
    let p = auth::authenticate(&store, &clock, &no_cache(), Some(&key))
        .await
        .unwrap();
    assert_eq!(
        (p.tenant.clone(), p.role, p.key_id.clone()),
        (t.clone(), Role::Member, key_id.clone())
    );
    assert!(!p.is_admin());
    assert_eq!(last_used(&store, &key).await, Some(ts("2030-03-14T10:00:00Z")));
    clock.advance(1800);
    auth::authenticate(&store, &clock, &no_cache(), Some(&format!("  {key} ")))
        .await
        .unwrap();
    assert_eq!(
        last_used(&store, &key).await,
        Some(ts("2030-03-14T10:00:00Z")),
        "within the hour"
    );
    clock.advance(1801);
    auth::authenticate(&store, &clock, &no_cache(), Some(&key))
        .await
        .unwrap();
    assert_eq!(last_used(&store, &key).await, Some(ts("2030-03-14T11:00:01Z")));

    assert_eq!(
        err(auth::authenticate(&store, &clock, &no_cache(), None).await),
        "Missing"
    );
    assert_eq!(
        err(auth::authenticate(&store, &clock, &no_cache(), Some("  ")).await),
        "Missing"
    );
    assert_eq!(
        err(auth::authenticate(&store, &clock, &no_cache(), Some("gk_unknown")).await),
        "Invalid"
    );
    let long = "k".repeat(201);
    assert_eq!(
        err(auth::authenticate(&store, &clock, &no_cache(), Some(&long)).await),
        "Invalid"
    );
    assert_eq!(auth::key_id_of_key(&key), key_id);
}

#[tokio::test]
async fn a_revoked_key_stops_working_and_revoking_is_idempotent() {
    let (store, clock) = (MemoryStore::new(), TestClock::at("2030-03-14T10:00:00Z"));
    let (t, other) = (TenantId::parse("acme").unwrap(), TenantId::parse("other").unwrap());
    let (key, key_id) = new_key(&store, &clock, &t, Role::Admin).await;
    let cache = KeyCache::new(Duration::from_secs(3600));
    assert!(auth::authenticate(&store, &clock, &cache, Some(&key))
        .await
        .unwrap()
        .is_admin());
    assert_eq!(
        err(auth::revoke_key(&store, &clock, &other, &key_id).await),
        format!("NotFound({key_id:?})")
    );
    auth::revoke_key(&store, &clock, &t, &key_id).await.unwrap();
    clock.advance(1);
    assert_eq!(
        err(auth::authenticate(&store, &clock, &no_cache(), Some(&key)).await),
        "Invalid"
    );
    // A warm instance's cache keeps the key until its time to live; the deployed one is 5 s.
    assert!(auth::authenticate(&store, &clock, &cache, Some(&key)).await.is_ok());
    clock.advance(60);
    auth::revoke_key(&store, &clock, &t, &key_id).await.unwrap();
    let record = store.find_api_key(&auth::hash_key(&key)).await.unwrap().unwrap();
    assert_eq!(
        record.expires_at,
        Some(ts("2030-03-14T10:00:00Z")),
        "the first revocation stands"
    );
    assert_eq!(
        err(auth::revoke_key(&store, &clock, &t, "key_nope").await),
        r#"NotFound("key_nope")"#
    );
}

#[tokio::test]
async fn a_rotated_key_keeps_working_for_the_overlap() {
    let (store, clock) = (MemoryStore::new(), TestClock::at("2030-03-14T10:00:00Z"));
    let t = TenantId::parse("acme").unwrap();
    let (old, old_id) = new_key(&store, &clock, &t, Role::Member).await;
    clock.advance(10);
    let (new, record) = auth::rotate_key(&store, &clock, &t, &old_id, 300).await.unwrap();
    assert_eq!((record.role, record.tenant.clone()), (Role::Member, t.clone()));
    assert!(auth::authenticate(&store, &clock, &no_cache(), Some(&new))
        .await
        .is_ok());
    clock.advance(299);
    assert!(
        auth::authenticate(&store, &clock, &no_cache(), Some(&old))
            .await
            .is_ok(),
        "in the overlap"
    );
    clock.advance(1);
    assert_eq!(
        err(auth::authenticate(&store, &clock, &no_cache(), Some(&old)).await),
        "Invalid"
    );
    let keys = auth::list_keys(&store, &t).await.unwrap();
    assert_eq!(
        keys.iter().map(|k| k.key_id()).collect::<Vec<_>>(),
        [old_id.clone(), record.key_id()],
        "oldest first"
    );
    // No overlap: the old key stops at once.
    let (newer, _) = auth::rotate_key(&store, &clock, &t, &record.key_id(), 0).await.unwrap();
    assert_eq!(
        err(auth::authenticate(&store, &clock, &no_cache(), Some(&new)).await),
        "Invalid"
    );
    assert!(auth::authenticate(&store, &clock, &no_cache(), Some(&newer))
        .await
        .is_ok());
}

#[tokio::test]
async fn tenant_settings_are_created_once_and_read_through_the_cache() {
    let (store, clock) = (MemoryStore::new(), TestClock::at("2030-03-14T10:00:00Z"));
    let t = TenantId::parse("acme").unwrap();
    let cache = TenantCache::new(Duration::from_secs(60));
    assert_eq!(err(tenants::settings(&store, &cache, &t).await), "NotConfigured");
    let eur = Currency::parse("EUR").unwrap();
    let made = tenants::ensure(&store, &clock, &t, Some(eur)).await.unwrap();
    assert_eq!(made, TenantSettings::new(&t, eur, &clock));
    assert!(!made.members_may_purchase && made.allowed_redirect_origins.is_empty());
    clock.advance(60);
    let kept = tenants::ensure(&store, &clock, &t, None).await.unwrap();
    assert_eq!(kept, made, "created once: a later ensure returns what exists");
    assert_eq!(tenants::settings(&store, &cache, &t).await.unwrap(), made);
    let changed = TenantSettings {
        members_may_purchase: true,
        allowed_redirect_origins: vec!["https://shop.example.com".to_owned()],
        ..made.clone()
    };
    store.put_tenant(&changed).await.unwrap();
    assert_eq!(tenants::settings(&store, &cache, &t).await.unwrap(), made, "cached");
    let fresh = TenantCache::new(Duration::from_secs(60));
    assert_eq!(tenants::settings(&store, &fresh, &t).await.unwrap(), changed);
    let usd = tenants::ensure(&store, &clock, &TenantId::parse("beta").unwrap(), None)
        .await
        .unwrap();
    assert_eq!((usd.currency, usd.created_at), (Currency::USD, clock.now()));
    assert_eq!(
        tenants::origin_of("HTTPS://Shop.Example.com:8443/x?y"),
        Some("https://shop.example.com:8443".to_owned())
    );
    assert_eq!(tenants::origin_of("https://user@evil.example/"), None);
}
