//! API keys: generated here, stored only as a SHA-256 hash, resolved to a tenant and a role.
use super::model::{ApiKeyRecord, Role};
use super::{Clock, TenantId};
use crate::store::{Store, StoreError};
use sha2::{Digest, Sha256};
use super::cache::TtlCache;

/// Who is calling: taken only from the API key, never from the request.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub tenant: TenantId,
    pub role: Role,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

pub const KEY_PREFIX: &str = "gk_";

/// A new random API key (`gk_` + 48 hex characters = 192 bits) and the record to store for it.
pub fn generate_key(
    tenant: &TenantId,
    role: Role,
    clock: &dyn Clock,
) -> Result<(String, ApiKeyRecord), getrandom::Error> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes)?;
    let key = format!("{KEY_PREFIX}{}", hex::encode(bytes));
    let record = ApiKeyRecord { key_hash: hash_key(&key), tenant: tenant.clone(), role, created_at: clock.now() };
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

/// Resolved keys, kept per process for a short time so that a warm Lambda spends no DynamoDB round
/// trip on auth. A revoked key keeps working for at most the cache's TTL on a warm instance.
pub type KeyCache = TtlCache<Principal>;

pub async fn authenticate(
    store: &dyn Store,
    cache: &KeyCache,
    presented: Option<&str>,
) -> Result<Principal, AuthError> {
    let key = presented.map(str::trim).filter(|k| !k.is_empty()).ok_or(AuthError::Missing)?;
    if key.len() > 200 {
        return Err(AuthError::Invalid);
    }
    let hash = hash_key(key);
    if let Some(p) = cache.get(&hash) {
        return Ok(p);
    }
    let record = store.find_api_key(&hash).await?.ok_or(AuthError::Invalid)?;
    let principal = Principal { tenant: record.tenant, role: record.role };
    cache.put(hash, principal.clone());
    Ok(principal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SystemClock;

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
