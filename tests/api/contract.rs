//! The storage-port contract (`grants_domain::contract`) on DynamoDB Local: the same checks the
//! in-memory store passes in the domain's unit tests, so that `MemoryStore` behaves as
//! `DynamoStore` does.
use grants_domain::contract;

/// Every check, on the shared test table, under tenants of a prefix no other run uses.
#[tokio::test]
async fn dynamo_store_keeps_the_storage_contract() {
    let store = crate::helpers::store().await;
    contract::run_all(&store, &contract::unique_prefix()).await;
}
