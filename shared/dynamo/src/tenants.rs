//! [`TenantStore`] on DynamoDB: Tenant settings.

use crate::prelude::*;

pub(crate) fn tenant_from(item: &Item) -> Result<TenantSettings, StoreError> {
    let r = Reader(item);
    Ok(TenantSettings {
        tenant: TenantId::parse(r.s("tenant")?).map_err(corrupt("tenant"))?,
        currency: Currency::parse(r.s("currency")?).map_err(corrupt("currency"))?,
        members_may_purchase: r.bool("members_may_purchase"),
        min_price_per_credit: r.opt_dec("min_price_per_credit")?,
        allowed_redirect_origins: r.list_s("allowed_redirect_origins"),
        created_at: r.ts("created_at")?,
    })
}

/// The tenant item. (Tables written before the secret store kept a `webhook_secret` attribute
/// here; it is no longer read, and the next write of the settings drops it.)
pub(crate) fn tenant_item(settings: &TenantSettings) -> Item {
    let mut item: Item = HashMap::from([
        (PK.to_owned(), s(tenant_pk(settings.tenant.as_str()))),
        (SK.to_owned(), s(TENANT_SK)),
        ("type".to_owned(), s("tenant")),
        ("tenant".to_owned(), s(settings.tenant.as_str())),
        ("currency".to_owned(), s(settings.currency.code())),
        (
            "members_may_purchase".to_owned(),
            AttributeValue::Bool(settings.members_may_purchase),
        ),
        (
            "allowed_redirect_origins".to_owned(),
            AttributeValue::L(
                settings
                    .allowed_redirect_origins
                    .iter()
                    .map(|o| s(o.as_str()))
                    .collect(),
            ),
        ),
        ("created_at".to_owned(), ts(settings.created_at)),
    ]);
    if let Some(min) = settings.min_price_per_credit {
        item.insert("min_price_per_credit".to_owned(), n(min));
    }
    item
}

#[async_trait]
impl TenantStore for DynamoStore {
    async fn get_tenant(&self, tenant: &TenantId) -> Result<Option<TenantSettings>, StoreError> {
        self.get(tenant_pk(tenant.as_str()), TENANT_SK)
            .await?
            .as_ref()
            .map(tenant_from)
            .transpose()
    }

    async fn put_tenant_if_absent(&self, settings: &TenantSettings) -> Result<bool, StoreError> {
        let result = self
            .client()
            .put_item()
            .table_name(&self.table)
            .set_item(Some(tenant_item(settings)))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await;
        Ok(written(result)?.is_some())
    }

    async fn put_tenant(&self, settings: &TenantSettings) -> Result<(), StoreError> {
        self.client()
            .put_item()
            .table_name(&self.table)
            .set_item(Some(tenant_item(settings)))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
