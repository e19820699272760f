//! [`CreditTypeStore`] on DynamoDB: Credit types.

use crate::prelude::*;

#[async_trait]
impl CreditTypeStore for DynamoStore {
    async fn list_credit_types(&self, tenant: &TenantId) -> Result<Vec<CreditType>, StoreError> {
        let items = self
            .query_all(
                None,
                "PK = :pk AND begins_with(SK, :ct)",
                &[],
                vec![
                    (":pk", s(tenant_pk(tenant.as_str()))),
                    (":ct", s(CREDIT_TYPE_SK_PREFIX)),
                ],
            )
            .await?;
        items
            .iter()
            .map(|i| {
                let r = Reader(i);
                Ok(CreditType {
                    id: r.s("id")?.to_owned(),
                    name: r.s("name")?.to_owned(),
                })
            })
            .collect()
    }

    async fn insert_credit_type(&self, tenant: &TenantId, ct: &CreditType) -> Result<Option<CreditType>, StoreError> {
        let pk = tenant_pk(tenant.as_str());
        let item = |sk: String| -> Item {
            HashMap::from([
                (PK.to_owned(), s(pk.clone())),
                (SK.to_owned(), s(sk)),
                ("type".to_owned(), s("credit_type")),
                ("id".to_owned(), s(&ct.id)),
                ("name".to_owned(), s(&ct.name)),
            ])
        };
        let Some(existing) = self
            .insert_unique(pk.clone(), credit_type_name_sk(&ct.name), credit_type_sk(&ct.id), item)
            .await?
        else {
            return Ok(None);
        };
        let r = Reader(&existing);
        Ok(Some(CreditType {
            id: r.s("id")?.to_owned(),
            name: r.s("name")?.to_owned(),
        }))
    }
}
