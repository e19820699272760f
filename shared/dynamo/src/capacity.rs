//! [`CapacityStore`] on DynamoDB: Capacity grants.

use crate::prelude::*;

// ---- capacity grants ------------------------------------------------------------------------

pub(crate) fn capacity_item(g: &CapacityGrant) -> Item {
    let t = g.tenant.as_str();
    let mut item: Item = HashMap::from([
        (PK.to_owned(), s(capacity_pk(t, g.fid.as_str()))),
        (SK.to_owned(), s(CAPACITY_SK)),
        ("GSI1PK".to_owned(), s(tenant_capacity(t))),
        ("GSI1SK".to_owned(), s(g.fid.as_str())),
        ("type".to_owned(), s("capacity_grant")),
        ("fid".to_owned(), s(g.fid.as_str())),
        ("tenant".to_owned(), s(t)),
        ("kind".to_owned(), s(&g.kind)),
        ("cluster".to_owned(), s(&g.cluster)),
        ("quantity".to_owned(), AttributeValue::N(g.quantity.to_string())),
        ("starts_at".to_owned(), ts(g.starts_at)),
        ("ends_at".to_owned(), ts(g.ends_at)),
        // Prices as strings: exactly as the client wrote them.
        ("unit_price".to_owned(), s(g.unit_price.as_str())),
        (
            "early_termination_buyback_price".to_owned(),
            s(g.early_termination_buyback_price.as_str()),
        ),
        (
            "flexible_usage_buyback_price".to_owned(),
            s(g.flexible_usage_buyback_price.as_str()),
        ),
        ("created_at".to_owned(), ts(g.created_at)),
        ("version".to_owned(), AttributeValue::N(g.version.to_string())),
    ]);
    let mut opt = |k: &str, v: Option<AttributeValue>| {
        if let Some(v) = v {
            item.insert(k.to_owned(), v);
        }
    };
    opt("deleted_at", g.deleted_at.map(ts));
    opt("resold_from", g.resold_from.as_ref().map(|f| s(f.as_str())));
    opt("resold_to", g.resold_to.as_ref().map(|f| s(f.as_str())));
    item
}

pub(crate) fn capacity_from(item: &Item) -> Result<CapacityGrant, StoreError> {
    let r = Reader(item);
    let price = |k: &str| -> Result<ExactPrice, StoreError> { ExactPrice::parse(r.s(k)?).map_err(corrupt("price")) };
    let fid = |k: &str| -> Result<Option<CapacityGrantId>, StoreError> {
        r.opt_s(k)
            .map(CapacityGrantId::parse)
            .transpose()
            .map_err(corrupt("capacity grant id"))
    };
    Ok(CapacityGrant {
        fid: CapacityGrantId::parse(r.s("fid")?).map_err(corrupt("capacity grant id"))?,
        tenant: TenantId::parse(r.s("tenant")?).map_err(corrupt("tenant"))?,
        kind: r.s("kind")?.to_owned(),
        cluster: r.s("cluster")?.to_owned(),
        quantity: u64::try_from(r.dec("quantity")?).map_err(corrupt("quantity"))?,
        starts_at: r.ts("starts_at")?,
        ends_at: r.ts("ends_at")?,
        unit_price: price("unit_price")?,
        early_termination_buyback_price: price("early_termination_buyback_price")?,
        flexible_usage_buyback_price: price("flexible_usage_buyback_price")?,
        created_at: r.ts("created_at")?,
        deleted_at: r.opt_ts("deleted_at")?,
        resold_from: fid("resold_from")?,
        resold_to: fid("resold_to")?,
        version: r.version("version")?,
    })
}

#[async_trait]
impl CapacityStore for DynamoStore {
    async fn insert_capacity_grant(
        &self,
        grant: &CapacityGrant,
        claim: Option<&Claim>,
    ) -> Result<InsertOutcome, StoreError> {
        self.insert_tenant_claimed(&grant.tenant, capacity_item(grant), claim)
            .await
    }

    async fn get_capacity_grant(
        &self,
        tenant: &TenantId,
        fid: &CapacityGrantId,
    ) -> Result<Option<CapacityGrant>, StoreError> {
        self.get(capacity_pk(tenant.as_str(), fid.as_str()), CAPACITY_SK)
            .await?
            .as_ref()
            .map(capacity_from)
            .transpose()
    }

    async fn list_capacity_grants(&self, tenant: &TenantId) -> Result<Vec<CapacityGrant>, StoreError> {
        let items = self
            .query_all(
                Some(GSI1),
                "GSI1PK = :pk",
                &[],
                vec![(":pk", s(tenant_capacity(tenant.as_str())))],
            )
            .await?;
        items.iter().map(capacity_from).collect()
    }

    async fn delete_capacity_grant(
        &self,
        tenant: &TenantId,
        fid: &CapacityGrantId,
        at: Timestamp,
    ) -> Result<Option<CapacityGrant>, StoreError> {
        self.set_once(
            capacity_pk(tenant.as_str(), fid.as_str()),
            CAPACITY_SK,
            "deleted_at",
            "version",
            at,
        )
        .await?
        .as_ref()
        .map(capacity_from)
        .transpose()
    }

    async fn resell_capacity_grant(
        &self,
        old: &CapacityGrant,
        expected_version: u64,
        new: &CapacityGrant,
    ) -> Result<bool, StoreError> {
        let replace_old = Put::builder()
            .table_name(&self.table)
            .set_item(Some(capacity_item(old)))
            .condition_expression("version = :v AND attribute_not_exists(deleted_at)")
            .expression_attribute_values(":v", AttributeValue::N(expected_version.to_string()))
            .build()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let items = vec![
            TransactWriteItem::builder().put(replace_old).build(),
            put(&self.table, capacity_item(new), "attribute_not_exists(PK)")?,
        ];
        self.transact_versioned(items).await
    }
}
