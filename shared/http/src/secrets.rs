//! The secrets a request reads (webhook signing secrets, the page-cursor key) over the domain's
//! [`SecretStore`] port, stored as JSON, with a per-instance cache.
use grants_domain::cache::TtlCache;
use grants_domain::secrets::{
    cursor_key_name, new_cursor_key, new_webhook_secret, stripe_api_name, stripe_webhook_name, webhook_secret_name,
    SecretError, SecretStore, StripeApiKeys, StripeKeys, WebhookSecrets,
};
use grants_domain::{Clock, TenantId};

/// The secrets a function reads, with the names' prefix and a per-instance cache (a rotation is
/// seen within the cache's time to live, 60 s; the overlap window covers it).
pub struct Secrets {
    pub store: std::sync::Arc<dyn SecretStore>,
    pub prefix: String,
    webhook: TtlCache<Option<WebhookSecrets>>,
    cursor_key: std::sync::OnceLock<Vec<u8>>,
    stripe_api: TtlCache<Option<StripeApiKeys>>,
    stripe_webhook: TtlCache<Option<WebhookSecrets>>,
}

impl Secrets {
    pub fn new(store: std::sync::Arc<dyn SecretStore>, prefix: impl Into<String>) -> Self {
        Self {
            store,
            prefix: prefix.into(),
            webhook: TtlCache::new(std::time::Duration::from_secs(60)),
            cursor_key: std::sync::OnceLock::new(),
            stripe_api: TtlCache::new(std::time::Duration::from_secs(60)),
            stripe_webhook: TtlCache::new(std::time::Duration::from_secs(60)),
        }
    }

    /// The tenant's Stripe API keys, `None` for a tenant without them (one read per tenant per
    /// minute and instance: a rotation is seen within a minute).
    pub async fn stripe_api(&self, tenant: &TenantId) -> Result<Option<StripeApiKeys>, SecretError> {
        if let Some(cached) = self.stripe_api.get(tenant.as_str()) {
            return Ok(cached);
        }
        let keys = self.read_json(&stripe_api_name(&self.prefix, tenant)).await?;
        self.stripe_api.put(tenant.as_str().to_owned(), keys.clone());
        Ok(keys)
    }

    /// The tenant's Stripe webhook signing secrets, `None` for a tenant without them (cached as
    /// [`Self::stripe_api`]; the previous secret's overlap covers the minute).
    pub async fn stripe_webhook(&self, tenant: &TenantId) -> Result<Option<WebhookSecrets>, SecretError> {
        if let Some(cached) = self.stripe_webhook.get(tenant.as_str()) {
            return Ok(cached);
        }
        let secrets = self.read_json(&stripe_webhook_name(&self.prefix, tenant)).await?;
        self.stripe_webhook.put(tenant.as_str().to_owned(), secrets.clone());
        Ok(secrets)
    }

    async fn read_json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<Option<T>, SecretError> {
        match self.store.get(name).await? {
            None => Ok(None),
            Some(raw) => serde_json::from_str(&raw)
                .map(Some)
                .map_err(|_| SecretError::Malformed(name.to_owned())),
        }
    }

    /// Stores the tenant's Stripe keys as its two secrets (operators only: `grants-admin
    /// set-stripe-keys`); a changed webhook secret leaves the previous one verifying for
    /// `overlap_seconds`. Returns the keys as stored.
    pub async fn set_stripe(
        &self,
        tenant: &TenantId,
        keys: StripeKeys,
        clock: &dyn Clock,
        overlap_seconds: i64,
    ) -> Result<StripeKeys, SecretError> {
        let old = self
            .read_json::<WebhookSecrets>(&stripe_webhook_name(&self.prefix, tenant))
            .await?;
        let keys = keys.replacing(old.as_ref(), clock.now(), overlap_seconds);
        let (api, webhook) = keys.split();
        self.store
            .put(&stripe_api_name(&self.prefix, tenant), &to_json(&api)?)
            .await?;
        self.store
            .put(&stripe_webhook_name(&self.prefix, tenant), &to_json(&webhook)?)
            .await?;
        self.stripe_api.forget(tenant.as_str());
        self.stripe_webhook.forget(tenant.as_str());
        Ok(keys)
    }

    /// The tenant's webhook secrets, `None` for a tenant that has none (an unknown account).
    pub async fn webhook(&self, tenant: &TenantId) -> Result<Option<WebhookSecrets>, SecretError> {
        if let Some(cached) = self.webhook.get(tenant.as_str()) {
            return Ok(cached);
        }
        let name = webhook_secret_name(&self.prefix, tenant);
        let secrets = match self.store.get(&name).await? {
            None => None,
            Some(raw) => Some(serde_json::from_str::<WebhookSecrets>(&raw).map_err(|_| SecretError::Malformed(name))?),
        };
        self.webhook.put(tenant.as_str().to_owned(), secrets.clone());
        Ok(secrets)
    }

    /// The tenant's webhook secrets, created (a new current secret) when it has none.
    pub async fn ensure_webhook(&self, tenant: &TenantId) -> Result<WebhookSecrets, SecretError> {
        if let Some(existing) = self.webhook(tenant).await? {
            return Ok(existing);
        }
        let fresh = WebhookSecrets {
            current: new_webhook_secret()?,
            previous: None,
            previous_expires_at: None,
        };
        self.write_webhook(tenant, &fresh).await?;
        Ok(fresh)
    }

    /// Replaces the current webhook secret with a new one; the old one keeps verifying for
    /// `overlap_seconds` (0: not at all). Returns the new secrets.
    pub async fn rotate_webhook(
        &self,
        tenant: &TenantId,
        clock: &dyn Clock,
        overlap_seconds: i64,
    ) -> Result<WebhookSecrets, SecretError> {
        let old = self.ensure_webhook(tenant).await?;
        let expires = clock
            .now()
            .plus_seconds(overlap_seconds.max(0))
            .unwrap_or_else(|| clock.now());
        let rotated = WebhookSecrets {
            current: new_webhook_secret()?,
            previous: (overlap_seconds > 0).then_some(old.current),
            previous_expires_at: (overlap_seconds > 0).then(|| expires.to_rfc3339()),
        };
        self.write_webhook(tenant, &rotated).await?;
        Ok(rotated)
    }

    async fn write_webhook(&self, tenant: &TenantId, secrets: &WebhookSecrets) -> Result<(), SecretError> {
        let body = serde_json::to_string(secrets).map_err(|e| SecretError::Malformed(e.to_string()))?;
        self.store
            .put(&webhook_secret_name(&self.prefix, tenant), &body)
            .await?;
        self.webhook.forget(tenant.as_str());
        Ok(())
    }

    /// The page-cursor HMAC key, read once per instance.
    pub async fn cursor_key(&self) -> Result<Vec<u8>, SecretError> {
        if let Some(key) = self.cursor_key.get() {
            return Ok(key.clone());
        }
        let name = cursor_key_name(&self.prefix);
        let key = self
            .store
            .get(&name)
            .await?
            .ok_or_else(|| SecretError::Malformed(name.clone()))?;
        if key.len() < 32 {
            return Err(SecretError::Malformed(name));
        }
        Ok(self.cursor_key.get_or_init(|| key.into_bytes()).clone())
    }

    /// Creates the cursor key unless it exists (the template creates it when deployed).
    pub async fn ensure_cursor_key(&self) -> Result<(), SecretError> {
        let name = cursor_key_name(&self.prefix);
        if self.store.get(&name).await?.is_none() {
            self.store.put(&name, &new_cursor_key()?).await?;
        }
        Ok(())
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, SecretError> {
    serde_json::to_string(value).map_err(|e| SecretError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use grants_domain::payments::{sign, verify, SignatureError};
    use grants_domain::secrets::InMemorySecrets;
    use grants_domain::Timestamp;
    use std::sync::{Arc, Mutex};

    struct At(Mutex<Timestamp>);
    impl Clock for At {
        fn now(&self) -> Timestamp {
            *self.0.lock().unwrap()
        }
    }

    #[tokio::test]
    async fn rotation_keeps_the_old_secret_verifying_only_for_the_overlap() {
        let t0 = Timestamp::parse("2026-03-14T10:00:00Z").unwrap();
        let clock = At(Mutex::new(t0));
        let secrets = Secrets::new(Arc::new(InMemorySecrets::default()), "test");
        let tenant = TenantId::parse("acme").unwrap();
        let old = secrets.ensure_webhook(&tenant).await.unwrap();
        assert!(old.current.starts_with("whsec_") && old.current.len() == 70);
        let body = b"{}";
        let signed_old = sign(&old.current, t0, body);
        let new = secrets.rotate_webhook(&tenant, &clock, 3600).await.unwrap();
        assert_ne!(new.current, old.current);
        let active = secrets.webhook(&tenant).await.unwrap().unwrap().active(t0);
        assert_eq!(verify(&active, Some(&signed_old), body, t0), Ok(()));
        assert_eq!(verify(&active, Some(&sign(&new.current, t0, body)), body, t0), Ok(()));
        // After the overlap only the new one verifies.
        let later = t0.plus_seconds(3601).unwrap();
        let active = new.active(later);
        assert_eq!(active, vec![new.current.clone()]);
        assert_eq!(
            verify(&active, Some(&sign(&old.current, later, body)), body, later),
            Err(SignatureError::Mismatch)
        );
        // No overlap: the old one stops at once.
        let newest = secrets.rotate_webhook(&tenant, &clock, 0).await.unwrap();
        assert_eq!(newest.active(t0), vec![newest.current.clone()]);
    }
}
