//! [`MetricStore`] on DynamoDB: billable metrics, in the tenant's partition. Two items per
//! metric, written in one transaction: `BM#<id>` (read by id and listed) and
//! `BMTYPE#<sha256(event type)>` (holds the event type unique; a create that finds it returns the
//! metric it holds, from the failed condition's old item, with no second read).
use crate::prelude::*;
use grants_domain::meters::{Aggregation, BillableMetric, MetricDefinition, MetricId, ValuePath};

fn metric_item(m: &BillableMetric, sk: String) -> Item {
    let d = &m.definition;
    let mut item: Item = HashMap::from([
        (PK.to_owned(), s(tenant_pk(m.tenant.as_str()))),
        (SK.to_owned(), s(sk)),
        ("type".to_owned(), s("billable_metric")),
        ("id".to_owned(), s(m.id.as_str())),
        ("name".to_owned(), s(&d.name)),
        ("description".to_owned(), s(&d.description)),
        ("unit".to_owned(), s(&d.unit)),
        ("event_type".to_owned(), s(&d.event_type)),
        ("aggregation".to_owned(), s(d.aggregation.name())),
        (
            "group_by".to_owned(),
            map_ss(
                &d.group_by
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().to_owned()))
                    .collect(),
            ),
        ),
        ("created_at".to_owned(), ts(m.created_at)),
        ("updated_at".to_owned(), ts(m.updated_at)),
    ]);
    let mut opt = |k: &str, v: Option<AttributeValue>| {
        if let Some(v) = v {
            item.insert(k.to_owned(), v);
        }
    };
    opt("value_property", d.aggregation.value_property().map(|p| s(p.as_str())));
    opt("product_id", d.product_id.clone().map(s));
    opt("item_id", d.item_id.clone().map(s));
    opt("event_from", d.event_from.map(ts));
    item
}

pub(crate) fn metric_from(tenant: &TenantId, item: &Item) -> Result<BillableMetric, StoreError> {
    let r = Reader(item);
    let path = |raw: &str| ValuePath::parse(raw).map_err(corrupt("billable metric path"));
    let value_property = r.opt_s("value_property").map(path).transpose()?;
    let aggregation = Aggregation::parse(r.s("aggregation")?, value_property).map_err(corrupt("aggregation"))?;
    let group_by = r
        .map_ss("group_by")
        .into_iter()
        .map(|(k, v)| Ok((k, path(&v)?)))
        .collect::<Result<_, StoreError>>()?;
    Ok(BillableMetric {
        id: MetricId::parse(r.s("id")?).ok_or_else(|| StoreError::Corrupt("billable metric id".to_owned()))?,
        tenant: tenant.clone(),
        definition: MetricDefinition {
            name: r.s("name")?.to_owned(),
            description: r.s("description")?.to_owned(),
            unit: r.s("unit")?.to_owned(),
            event_type: r.s("event_type")?.to_owned(),
            aggregation,
            product_id: r.opt_s("product_id").map(str::to_owned),
            item_id: r.opt_s("item_id").map(str::to_owned),
            group_by,
            event_from: r.opt_ts("event_from")?,
        },
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
    })
}

#[async_trait]
impl MetricStore for DynamoStore {
    async fn insert_metric(&self, m: &BillableMetric) -> Result<Option<BillableMetric>, StoreError> {
        let existing = self
            .insert_unique(
                tenant_pk(m.tenant.as_str()),
                metric_type_sk(&m.definition.event_type),
                metric_sk(m.id.as_str()),
                |sk| metric_item(m, sk),
            )
            .await?;
        existing.map(|item| metric_from(&m.tenant, &item)).transpose()
    }

    async fn get_metric(&self, tenant: &TenantId, id: &MetricId) -> Result<Option<BillableMetric>, StoreError> {
        self.get(tenant_pk(tenant.as_str()), &metric_sk(id.as_str()))
            .await?
            .map(|item| metric_from(tenant, &item))
            .transpose()
    }

    async fn list_metrics(&self, tenant: &TenantId) -> Result<Vec<BillableMetric>, StoreError> {
        let items = self
            .query_all(
                None,
                "PK = :pk AND begins_with(SK, :bm)",
                &[],
                vec![(":pk", s(tenant_pk(tenant.as_str()))), (":bm", s(METRIC_SK_PREFIX))],
            )
            .await?;
        items.iter().map(|i| metric_from(tenant, i)).collect()
    }
}
