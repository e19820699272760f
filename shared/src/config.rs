//! Configuration from the environment. The same variables drive Lambda, the local stack and tests:
//! `TABLE_NAME`, and the AWS SDK's own (`AWS_REGION`, credentials, `AWS_ENDPOINT_URL_DYNAMODB`).
use crate::store::dynamo::DynamoStore;

pub const DEFAULT_TABLE: &str = "grants";

pub fn table_name() -> String {
    std::env::var("TABLE_NAME").ok().filter(|t| !t.is_empty()).unwrap_or_else(|| DEFAULT_TABLE.to_owned())
}

pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await
}

pub async fn dynamo_client() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&sdk_config().await)
}

/// The store for the configured table.
pub async fn store_from_env() -> DynamoStore {
    DynamoStore::new(dynamo_client().await, table_name())
}
