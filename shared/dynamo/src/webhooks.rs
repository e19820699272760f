//! [`WebhookStore`] on DynamoDB: a tenant's webhook configuration, one item in the tenant's
//! partition (`WEBHOOKS`). Created by a conditional put; `enabled` changed by a conditional update
//! that returns the item as written (one request each).
use crate::prelude::*;
use grants_domain::webhooks::{ApplicationId, WebhookConfig};

fn config_item(c: &WebhookConfig) -> Item {
    HashMap::from([
        (PK.to_owned(), s(tenant_pk(c.tenant.as_str()))),
        (SK.to_owned(), s(WEBHOOKS_SK)),
        ("type".to_owned(), s("webhook_config")),
        ("application_id".to_owned(), s(c.application_id.as_str())),
        ("enabled".to_owned(), AttributeValue::Bool(c.enabled)),
        ("created_at".to_owned(), ts(c.created_at)),
        ("updated_at".to_owned(), ts(c.updated_at)),
    ])
}

fn config_from(tenant: &TenantId, item: &Item) -> Result<WebhookConfig, StoreError> {
    let r = Reader(item);
    Ok(WebhookConfig {
        tenant: tenant.clone(),
        application_id: ApplicationId::parse(r.s("application_id")?)
            .ok_or_else(|| StoreError::Corrupt("webhook application id".to_owned()))?,
        enabled: r.bool("enabled"),
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
    })
}

#[async_trait]
impl WebhookStore for DynamoStore {
    async fn insert_webhook_config(&self, c: &WebhookConfig) -> Result<bool, StoreError> {
        let result = self
            .client()
            .put_item()
            .table_name(&self.table)
            .set_item(Some(config_item(c)))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await;
        Ok(written(result)?.is_some())
    }

    async fn get_webhook_config(&self, tenant: &TenantId) -> Result<Option<WebhookConfig>, StoreError> {
        self.get(tenant_pk(tenant.as_str()), WEBHOOKS_SK)
            .await?
            .map(|item| config_from(tenant, &item))
            .transpose()
    }

    async fn set_webhooks_enabled(
        &self,
        tenant: &TenantId,
        enabled: bool,
        at: Timestamp,
    ) -> Result<Option<WebhookConfig>, StoreError> {
        let result = self
            .client()
            .update_item()
            .table_name(&self.table)
            .key(PK, s(tenant_pk(tenant.as_str())))
            .key(SK, s(WEBHOOKS_SK))
            .update_expression("SET enabled = :enabled, updated_at = :at")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":enabled", AttributeValue::Bool(enabled))
            .expression_attribute_values(":at", ts(at))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match written(result)? {
            Some(out) => out
                .attributes
                .as_ref()
                .map(|item| config_from(tenant, item))
                .transpose(),
            None => Ok(None),
        }
    }
}
