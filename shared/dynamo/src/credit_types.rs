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
        let items = vec![
            put(
                &self.table,
                item(credit_type_name_sk(&ct.name)),
                "attribute_not_exists(PK)",
            )?,
            put(&self.table, item(credit_type_sk(&ct.id)), "attribute_not_exists(PK)")?,
        ];
        for attempt in 0..CONFLICT_RETRIES {
            match self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await
            {
                Ok(_) => return Ok(None),
                Err(e) => match cancellation(e)? {
                    Cancelled::Conflict => conflict_pause(attempt).await,
                    Cancelled::Conditions(failed) => {
                        let existing = match failed.into_iter().find(|(i, _)| *i == 0).and_then(|(_, old)| old) {
                            Some(old) => old,
                            None => self
                                .get(pk.clone(), &credit_type_name_sk(&ct.name))
                                .await?
                                .ok_or_else(|| StoreError::Corrupt("credit type id collision".to_owned()))?,
                        };
                        let r = Reader(&existing);
                        return Ok(Some(CreditType {
                            id: r.s("id")?.to_owned(),
                            name: r.s("name")?.to_owned(),
                        }));
                    }
                },
            }
        }
        Err(StoreError::Contention)
    }
}
