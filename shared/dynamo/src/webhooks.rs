//! [`WebhookStore`] on DynamoDB: a tenant's webhook configuration, one item in the tenant's
//! partition (`WEBHOOKS`). Created by a conditional put; `enabled` changed by a conditional update
//! that returns the item as written (one request each).
use crate::prelude::*;
use grants_domain::webhook_endpoints::{EndpointId, EndpointUrl, EventTypeName, SigningSecret, WebhookEndpoint};
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

pub(crate) fn config_from(tenant: &TenantId, item: &Item) -> Result<WebhookConfig, StoreError> {
    let r = Reader(item);
    Ok(WebhookConfig {
        tenant: tenant.clone(),
        application_id: ApplicationId::parse(r.s("application_id")?).map_err(corrupt("webhook application id"))?,
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

fn endpoint_item(e: &WebhookEndpoint) -> Item {
    let mut item: Item = HashMap::from([
        (PK.to_owned(), s(tenant_pk(e.tenant.as_str()))),
        (SK.to_owned(), s(endpoint_sk(e.id.as_str()))),
        ("type".to_owned(), s("webhook_endpoint")),
        ("id".to_owned(), s(e.id.as_str())),
        ("url".to_owned(), s(e.url.as_str())),
        ("description".to_owned(), s(&e.description)),
        ("disabled".to_owned(), AttributeValue::Bool(e.disabled)),
        ("secret".to_owned(), s(e.secret.expose())),
        ("created_at".to_owned(), ts(e.created_at)),
        ("updated_at".to_owned(), ts(e.updated_at)),
        ("version".to_owned(), AttributeValue::N(e.version.to_string())),
    ]);
    if let Some(types) = &e.event_types {
        item.insert(
            "event_types".to_owned(),
            AttributeValue::L(types.iter().map(|t| s(t.as_str())).collect()),
        );
    }
    if let Some(since) = e.failing_since {
        item.insert("failing_since".to_owned(), ts(since));
    }
    if let Some(reason) = &e.disabled_reason {
        item.insert("disabled_reason".to_owned(), s(reason));
    }
    if let Some((old, until)) = &e.previous_secret {
        item.insert("previous_secret".to_owned(), s(old.expose()));
        item.insert("previous_secret_until".to_owned(), ts(*until));
    }
    item
}

pub(crate) fn endpoint_from(tenant: &TenantId, item: &Item) -> Result<WebhookEndpoint, StoreError> {
    let r = Reader(item);
    let secret = |raw: &str| SigningSecret::parse(raw).map_err(corrupt("endpoint secret"));
    let previous_secret = match (r.opt_s("previous_secret"), r.opt_ts("previous_secret_until")?) {
        (Some(old), Some(until)) => Some((secret(old)?, until)),
        _ => None,
    };
    let event_types = match item.get("event_types") {
        None => None,
        Some(_) => Some(
            r.list_s("event_types")
                .iter()
                .map(|t| EventTypeName::parse(t).map_err(corrupt("endpoint event type")))
                .collect::<Result<_, _>>()?,
        ),
    };
    Ok(WebhookEndpoint {
        tenant: tenant.clone(),
        id: EndpointId::parse(r.s("id")?).map_err(corrupt("endpoint id"))?,
        url: EndpointUrl::parse(r.s("url")?).map_err(corrupt("endpoint url"))?,
        description: r.s("description")?.to_owned(),
        event_types,
        disabled: r.bool("disabled"),
        secret: secret(r.s("secret")?)?,
        previous_secret,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
        failing_since: r.opt_ts("failing_since")?,
        disabled_reason: r.opt_s("disabled_reason").map(str::to_owned),
        version: r.version("version")?,
    })
}

#[async_trait]
impl EndpointStore for DynamoStore {
    async fn insert_endpoint(&self, e: &WebhookEndpoint) -> Result<(), StoreError> {
        let result = self
            .client()
            .put_item()
            .table_name(&self.table)
            .set_item(Some(endpoint_item(e)))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await;
        match written(result)? {
            Some(_) => Ok(()),
            None => Err(StoreError::Corrupt("endpoint id collision".to_owned())),
        }
    }

    async fn get_endpoint(&self, tenant: &TenantId, id: &EndpointId) -> Result<Option<WebhookEndpoint>, StoreError> {
        self.get(tenant_pk(tenant.as_str()), &endpoint_sk(id.as_str()))
            .await?
            .map(|item| endpoint_from(tenant, &item))
            .transpose()
    }

    async fn list_endpoints(&self, tenant: &TenantId) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let items = self
            .query_all(
                None,
                "PK = :pk AND begins_with(SK, :ep)",
                &[],
                vec![(":pk", s(tenant_pk(tenant.as_str()))), (":ep", s(ENDPOINT_SK_PREFIX))],
            )
            .await?;
        items.iter().map(|i| endpoint_from(tenant, i)).collect()
    }

    async fn replace_endpoint(&self, e: &WebhookEndpoint) -> Result<bool, StoreError> {
        self.put_at_version(endpoint_item(e), e.version.saturating_sub(1)).await
    }

    async fn delete_endpoint(&self, tenant: &TenantId, id: &EndpointId) -> Result<bool, StoreError> {
        let result = self
            .client()
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(tenant_pk(tenant.as_str())))
            .key(SK, s(endpoint_sk(id.as_str())))
            .condition_expression("attribute_exists(PK)")
            .send()
            .await;
        Ok(written(result)?.is_some())
    }
}
