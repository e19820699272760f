//! API keys: generated here, stored only as a SHA-256 hash, resolved to a tenant and a role; listed,
//! revoked and rotated by the operator (`grants-admin`).
//!
//! **Revocation reaches every warm instance within [`KEY_CACHE_SECONDS`] (5 s)**: an instance
//! keeps a resolved key for at most that long before it reads the key's record again, and a
//! record whose `expires_at` has passed no longer authenticates (checked on every request, cached
//! or not). Unknown keys are remembered for as long in a bounded negative cache, so a client
//! spraying made-up keys does not cost a DynamoDB read per request. Logs carry the key's id
//! (`key_` + 16 hex of its hash), never the key.
use crate::cache::TtlCache;
use crate::kernel::StoreError;
use crate::model::{key_id_of, unexpired, ApiKeyRecord, Role};
use crate::{Clock, TenantId, Timestamp};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// How long a warm instance trusts what it read about a key (and that a key is unknown).
pub const KEY_CACHE_SECONDS: u64 = 5;
/// `last_used_at` is kept to this precision: at most one write per key per hour.
const LAST_USED_PRECISION_SECONDS: i64 = 3600;
/// Unknown keys remembered per instance (the negative cache's bound).
const UNKNOWN_KEYS_KEPT: usize = 10_000;

/// Who is calling: taken only from the API key, never from the request.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub tenant: TenantId,
    pub role: Role,
    /// The key's public id, for logs.
    pub key_id: String,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

const KEY_PREFIX: &str = "gk_";

/// A new random API key (`gk_` + 48 hex characters = 192 bits) and the record to store for it.
pub fn generate_key(
    tenant: &TenantId,
    role: Role,
    clock: &dyn Clock,
) -> Result<(String, ApiKeyRecord), getrandom::Error> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes)?;
    let key = format!("{KEY_PREFIX}{}", hex::encode(bytes));
    let record = ApiKeyRecord {
        key_hash: hash_key(&key),
        tenant: tenant.clone(),
        role,
        created_at: clock.now(),
        display_prefix: key.chars().take(KEY_PREFIX.len() + 4).collect(),
        expires_at: None,
        last_used_at: None,
    };
    Ok((key, record))
}

/// The stored form of a key. Keys carry 192 random bits, so a fast hash is enough (no salt or
/// stretching is needed against guessing; the hash only keeps a table dump from yielding keys).
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing API key")]
    Missing,
    #[error("invalid API key")]
    Invalid,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a warm instance remembers about keys: resolved ones (with when they stop working) and
/// unknown ones, each for [`KEY_CACHE_SECONDS`].
pub struct KeyCache {
    known: TtlCache<(Principal, Option<Timestamp>)>,
    unknown: TtlCache<()>,
}

impl Default for KeyCache {
    fn default() -> Self {
        Self::new(Duration::from_secs(KEY_CACHE_SECONDS))
    }
}

impl KeyCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            known: TtlCache::new(ttl),
            unknown: TtlCache::with_capacity(ttl, UNKNOWN_KEYS_KEPT),
        }
    }
}

pub async fn authenticate(
    store: &dyn ApiKeyStore,
    clock: &dyn Clock,
    cache: &KeyCache,
    presented: Option<&str>,
) -> Result<Principal, AuthError> {
    let key = presented
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or(AuthError::Missing)?;
    if key.len() > 200 {
        return Err(AuthError::Invalid);
    }
    let hash = hash_key(key);
    let now = clock.now();
    if let Some((p, expires)) = cache.known.get(&hash) {
        return if unexpired(expires, now) {
            Ok(p)
        } else {
            Err(AuthError::Invalid)
        };
    }
    if cache.unknown.get(&hash).is_some() {
        return Err(AuthError::Invalid);
    }
    let Some(record) = store.find_api_key(&hash).await? else {
        cache.unknown.put(hash, ());
        return Err(AuthError::Invalid);
    };
    let principal = Principal {
        tenant: record.tenant.clone(),
        role: record.role,
        key_id: record.key_id(),
    };
    cache.known.put(hash.clone(), (principal.clone(), record.expires_at));
    if !record.is_valid_at(now) {
        tracing::info!(key_id = %principal.key_id, "expired or revoked API key presented");
        return Err(AuthError::Invalid);
    }
    let since = now.plus_seconds(-LAST_USED_PRECISION_SECONDS).unwrap_or(now);
    if record.last_used_at.is_none_or(|t| t < since) {
        // Best effort: a failed note of use must not fail the request.
        if let Err(e) = store.touch_api_key(&hash, now, since).await {
            tracing::warn!(key_id = %principal.key_id, error = %e, "could not record the key's use");
        }
    }
    Ok(principal)
}

#[derive(Debug, thiserror::Error)]
pub enum RevokeKeyError {
    #[error("no key {0} for this tenant")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum RotateKeyError {
    #[error("no key {0} for this tenant")]
    NotFound(String),
    #[error("no randomness available: {0}")]
    Random(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The tenant's keys, oldest first.
pub async fn list_keys(store: &dyn ApiKeyStore, tenant: &TenantId) -> Result<Vec<ApiKeyRecord>, StoreError> {
    let mut keys = store.list_api_keys(tenant).await?;
    keys.sort_by(|a, b| {
        a.created_at
            .cmp(&b.created_at)
            .then_with(|| a.key_hash.cmp(&b.key_hash))
    });
    Ok(keys)
}

async fn find_by_id(
    store: &dyn ApiKeyStore,
    tenant: &TenantId,
    key_id: &str,
) -> Result<Option<ApiKeyRecord>, StoreError> {
    Ok(store
        .list_api_keys(tenant)
        .await?
        .into_iter()
        .find(|k| k.key_id() == key_id))
}

/// Makes a key stop working now (within [`KEY_CACHE_SECONDS`] on warm instances). Idempotent.
pub async fn revoke_key(
    store: &dyn ApiKeyStore,
    clock: &dyn Clock,
    tenant: &TenantId,
    key_id: &str,
) -> Result<(), RevokeKeyError> {
    let not_found = || RevokeKeyError::NotFound(key_id.to_owned());
    let record = find_by_id(store, tenant, key_id).await?.ok_or_else(not_found)?;
    if !store.expire_api_key(tenant, &record.key_hash, clock.now()).await? {
        return Err(not_found());
    }
    Ok(())
}

/// A new key with the same tenant and role; the old one keeps working for `overlap_seconds`
/// (0: stops now) so clients can switch. Returns the new key (shown once) and its record.
pub async fn rotate_key(
    store: &dyn ApiKeyStore,
    clock: &dyn Clock,
    tenant: &TenantId,
    key_id: &str,
    overlap_seconds: i64,
) -> Result<(String, ApiKeyRecord), RotateKeyError> {
    let old = find_by_id(store, tenant, key_id)
        .await?
        .ok_or_else(|| RotateKeyError::NotFound(key_id.to_owned()))?;
    let (key, record) = generate_key(tenant, old.role, clock).map_err(|e| RotateKeyError::Random(e.to_string()))?;
    store.put_api_key(&record).await?;
    let at = clock
        .now()
        .plus_seconds(overlap_seconds.max(0))
        .unwrap_or_else(|| clock.now());
    store.expire_api_key(tenant, &old.key_hash, at).await?;
    Ok((key, record))
}

/// The id of a presented key, for logs (never the key).
pub fn key_id_of_key(key: &str) -> String {
    key_id_of(&hash_key(key))
}

/// The storage port of this module: API keys: what [`authenticate`] and the key lifecycle read and write. Implemented by `grants_dynamo::DynamoStore` and
/// [`crate::memory::MemoryStore`]; the contract tests hold both to the same behaviour.
#[async_trait::async_trait]
pub trait ApiKeyStore: Send + Sync {
    async fn find_api_key(
        &self,
        key_hash: &str,
    ) -> Result<Option<crate::model::ApiKeyRecord>, crate::kernel::StoreError>;
    async fn put_api_key(&self, record: &crate::model::ApiKeyRecord) -> Result<(), crate::kernel::StoreError>;
    /// The tenant's keys (an index read; keys stored before the index had them are not listed).
    async fn list_api_keys(
        &self,
        tenant: &crate::TenantId,
    ) -> Result<Vec<crate::model::ApiKeyRecord>, crate::kernel::StoreError>;
    /// Makes the tenant's key stop working at `at`, unless it already stops earlier. False: no such
    /// key of that tenant.
    async fn expire_api_key(
        &self,
        tenant: &crate::TenantId,
        key_hash: &str,
        at: crate::Timestamp,
    ) -> Result<bool, crate::kernel::StoreError>;
    /// Records a use at `now` unless one at or after `since` is recorded (a conditional write, so
    /// busy keys cost at most one write per interval).
    async fn touch_api_key(
        &self,
        key_hash: &str,
        now: crate::Timestamp,
        since: crate::Timestamp,
    ) -> Result<(), crate::kernel::StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SystemClock;

    #[test]
    fn keys_are_random_and_only_hashes_are_stored() {
        let t = TenantId::parse("acme").unwrap();
        let (k1, r1) = generate_key(&t, Role::Admin, &SystemClock).unwrap();
        let (k2, _) = generate_key(&t, Role::Admin, &SystemClock).unwrap();
        assert_ne!(k1, k2);
        assert!(k1.starts_with(KEY_PREFIX) && k1.len() == 51);
        assert_eq!(r1.key_hash, hash_key(&k1));
        assert!(!r1.key_hash.contains(&k1[3..]));
    }
}
