//! The contract of the API keys port ([`crate::auth::ApiKeyStore`]).
use super::{after, api_key, tenant, ts, END, START};
use crate::auth::hash_key;
use crate::model::{ApiKeyRecord, Role};
use crate::ports::Store;

/// Keys are found by hash, written once (a second put of a hash fails), and listed per tenant in
/// key-id order.
pub async fn api_keys_are_found_by_hash_and_listed_per_tenant(store: &dyn Store, prefix: &str) {
    let (t, other) = (tenant(prefix, "a"), tenant(prefix, "b"));
    let mut k1 = api_key(&t, Role::Admin, ts(START));
    k1.expires_at = Some(ts(END));
    let k2 = api_key(&t, Role::Member, after(ts(START), 60));
    let k3 = api_key(&other, Role::Admin, ts(START));
    for k in [&k1, &k2, &k3] {
        store.put_api_key(k).await.expect("put_api_key");
    }
    assert_eq!(store.find_api_key(&k1.key_hash).await.expect("find"), Some(k1.clone()));
    assert_eq!(store.find_api_key(&k2.key_hash).await.expect("find"), Some(k2.clone()));
    assert_eq!(store.find_api_key(&hash_key("gk_unknown")).await.expect("find"), None);

    let again = ApiKeyRecord {
        role: Role::Member,
        ..k1.clone()
    };
    assert!(store.put_api_key(&again).await.is_err(), "a key hash is written once");
    assert_eq!(store.find_api_key(&k1.key_hash).await.expect("find"), Some(k1.clone()));
    // A put does not write `last_used_at`: only touch_api_key does.
    let used = ApiKeyRecord {
        last_used_at: Some(ts(END)),
        ..api_key(&other, Role::Member, ts(START))
    };
    store.put_api_key(&used).await.expect("put_api_key");
    let read = store.find_api_key(&used.key_hash).await.expect("find").expect("stored");
    assert_eq!(read.last_used_at, None);

    let mut mine = vec![k1.clone(), k2.clone()];
    mine.sort_by_key(ApiKeyRecord::key_id);
    assert_eq!(store.list_api_keys(&t).await.expect("list"), mine);
    let others = store.list_api_keys(&other).await.expect("list");
    assert!(others.len() == 2 && others.contains(&k3));
    assert!(store
        .list_api_keys(&tenant(prefix, "none"))
        .await
        .expect("list")
        .is_empty());
}

async fn key_of(store: &dyn Store, hash: &str) -> ApiKeyRecord {
    store.find_api_key(hash).await.expect("find").expect("key")
}

/// `expire_api_key` moves the expiry earlier, never later; true for the tenant's own keys only.
pub async fn api_key_expiry_only_moves_earlier(store: &dyn Store, prefix: &str) {
    let (t, other) = (tenant(prefix, "a"), tenant(prefix, "b"));
    let k = api_key(&t, Role::Admin, ts(START));
    store.put_api_key(&k).await.expect("put");
    let (t1, t2, t3) = (after(ts(START), 10), after(ts(START), 20), after(ts(START), 30));
    assert!(store.expire_api_key(&t, &k.key_hash, t2).await.expect("expire"));
    assert_eq!(key_of(store, &k.key_hash).await.expires_at, Some(t2));
    assert!(
        store.expire_api_key(&t, &k.key_hash, t3).await.expect("expire"),
        "already earlier: still true"
    );
    assert_eq!(
        key_of(store, &k.key_hash).await.expires_at,
        Some(t2),
        "never moved later"
    );
    assert!(store.expire_api_key(&t, &k.key_hash, t1).await.expect("expire"));
    assert_eq!(key_of(store, &k.key_hash).await.expires_at, Some(t1));
    assert!(
        !store
            .expire_api_key(&other, &k.key_hash, ts(START))
            .await
            .expect("expire"),
        "another tenant's key"
    );
    assert_eq!(key_of(store, &k.key_hash).await.expires_at, Some(t1));
    assert!(!store
        .expire_api_key(&t, &hash_key("gk_unknown"), t1)
        .await
        .expect("expire"));
    assert_eq!(store.find_api_key(&hash_key("gk_unknown")).await.expect("find"), None);
}

/// `touch_api_key` records a use unless one at or after `since` is recorded; unknown keys are not
/// created.
pub async fn api_key_touch_writes_at_most_once_per_interval(store: &dyn Store, prefix: &str) {
    let t = tenant(prefix, "a");
    let k = api_key(&t, Role::Member, ts(START));
    store.put_api_key(&k).await.expect("put");
    let n1 = after(ts(START), 7200);
    store
        .touch_api_key(&k.key_hash, n1, after(n1, -3600))
        .await
        .expect("touch");
    assert_eq!(key_of(store, &k.key_hash).await.last_used_at, Some(n1));
    let n2 = after(n1, 60);
    store
        .touch_api_key(&k.key_hash, n2, after(n2, -3600))
        .await
        .expect("touch");
    assert_eq!(
        key_of(store, &k.key_hash).await.last_used_at,
        Some(n1),
        "used within the interval: not written"
    );
    store.touch_api_key(&k.key_hash, n2, n1).await.expect("touch");
    assert_eq!(
        key_of(store, &k.key_hash).await.last_used_at,
        Some(n1),
        "a use at `since` counts"
    );
    let n3 = after(n1, 3601);
    store
        .touch_api_key(&k.key_hash, n3, after(n3, -3600))
        .await
        .expect("touch");
    assert_eq!(key_of(store, &k.key_hash).await.last_used_at, Some(n3));
    let unknown = hash_key("gk_never_stored");
    store
        .touch_api_key(&unknown, n3, n1)
        .await
        .expect("touch of an unknown key");
    assert_eq!(store.find_api_key(&unknown).await.expect("find"), None);
}
