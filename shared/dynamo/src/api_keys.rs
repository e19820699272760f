//! [`ApiKeyStore`] on DynamoDB: API keys (`KEY#<hash>` items).

use crate::prelude::*;

// ---- API keys, tenants, invoices, payment sessions -------------------------------------------

pub(crate) fn api_key_from(item: &Item) -> Result<ApiKeyRecord, StoreError> {
    let r = Reader(item);
    let hash = match r.opt_s("key_hash") {
        Some(h) => h.to_owned(),
        None => r.s(PK)?.strip_prefix("APIKEY#").unwrap_or_default().to_owned(),
    };
    Ok(ApiKeyRecord {
        key_hash: hash,
        tenant: TenantId::parse(r.s("tenant")?).map_err(corrupt("tenant"))?,
        role: Role::parse(r.s("role")?).ok_or_else(|| StoreError::Corrupt("role".to_owned()))?,
        created_at: r.ts("created_at")?,
        display_prefix: r.opt_s("display_prefix").unwrap_or_default().to_owned(),
        expires_at: r.opt_ts("expires_at")?,
        last_used_at: r.opt_ts("last_used_at")?,
    })
}

#[async_trait]
impl ApiKeyStore for DynamoStore {
    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.get(api_key_pk(key_hash), API_KEY_SK)
            .await?
            .as_ref()
            .map(api_key_from)
            .transpose()
    }

    async fn put_api_key(&self, record: &ApiKeyRecord) -> Result<(), StoreError> {
        let mut item: Item = HashMap::from([
            (PK.to_owned(), s(api_key_pk(&record.key_hash))),
            (SK.to_owned(), s(API_KEY_SK)),
            ("type".to_owned(), s("api_key")),
            ("key_hash".to_owned(), s(&record.key_hash)),
            ("tenant".to_owned(), s(record.tenant.as_str())),
            ("role".to_owned(), s(record.role.as_str())),
            ("created_at".to_owned(), ts(record.created_at)),
            ("display_prefix".to_owned(), s(&record.display_prefix)),
            ("GSI1PK".to_owned(), s(tenant_keys(record.tenant.as_str()))),
            ("GSI1SK".to_owned(), s(record.key_id())),
        ]);
        if let Some(at) = record.expires_at {
            item.insert("expires_at".to_owned(), ts(at));
        }
        self.client()
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn list_api_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let items = self
            .query_all(
                Some(GSI1),
                "GSI1PK = :pk",
                &[],
                vec![(":pk", s(tenant_keys(tenant.as_str())))],
            )
            .await?;
        items.iter().map(api_key_from).collect()
    }

    async fn expire_api_key(&self, tenant: &TenantId, key_hash: &str, at: Timestamp) -> Result<bool, StoreError> {
        let result = self
            .update_at(api_key_pk(key_hash), API_KEY_SK)
            .condition_expression("tenant = :t AND (attribute_not_exists(expires_at) OR expires_at > :at)")
            .update_expression("SET expires_at = :at")
            .expression_attribute_values(":t", s(tenant.as_str()))
            .expression_attribute_values(":at", ts(at))
            .send()
            .await;
        if written(result)?.is_some() {
            return Ok(true);
        }
        // Either not this tenant's key, or it already stops earlier.
        Ok(self.find_api_key(key_hash).await?.is_some_and(|k| &k.tenant == tenant))
    }

    async fn touch_api_key(&self, key_hash: &str, now: Timestamp, since: Timestamp) -> Result<(), StoreError> {
        let result = self
            .update_at(api_key_pk(key_hash), API_KEY_SK)
            .condition_expression(
                "attribute_exists(PK) AND (attribute_not_exists(last_used_at) OR last_used_at < :since)",
            )
            .update_expression("SET last_used_at = :now")
            .expression_attribute_values(":now", ts(now))
            .expression_attribute_values(":since", ts(since))
            .send()
            .await;
        unless_condition_failed(result)
    }
}
