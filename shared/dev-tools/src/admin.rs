//! Operator tasks behind `grants-admin`: create the table from template.yaml, issue keys, provision
//! entitlements, seed the demo tenant.
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType,
};
use grants_domain::auth::generate_key;
use grants_domain::entitlements::{self, EntitlementView};
use grants_domain::model::Role;
use grants_domain::ports::Store;
use grants_domain::tenants::{self, TenantSettings};
use grants_domain::{Clock, SystemClock, TenantId};
use grants_dynamo::DynamoStore;
use grants_http::body::JsonBody;
use grants_http::paygentic::{parse_new_entitlement, EntitlementBody};
use serde_norway::Value;
use std::path::Path;

/// Where `make dev` writes the local stack's endpoints, so tools run from the repo root find it.
pub const LOCAL_STACK_ENV: &str = ".local/stack.env";

/// Loads `KEY=VALUE` lines from an env file (such as [`LOCAL_STACK_ENV`]) into the environment,
/// without overriding variables already set. Returns whether the file was found.
pub fn load_env_file(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    for line in text.lines() {
        if let Some((k, v)) = line.trim().split_once('=') {
            if !k.starts_with('#') && std::env::var_os(k).is_none() {
                std::env::set_var(k, v);
            }
        }
    }
    true
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("template: {0}")]
    Template(String),
    #[error("dynamodb: {0}")]
    Dynamo(String),
    #[error("invalid input: {0}")]
    Input(String),
    #[error(transparent)]
    Store(#[from] grants_domain::ports::StoreError),
}

fn field<'a>(v: &'a Value, k: &str) -> Result<&'a Value, AdminError> {
    v.get(k).ok_or_else(|| AdminError::Template(format!("missing {k}")))
}
fn text<'a>(v: &'a Value, k: &str) -> Result<&'a str, AdminError> {
    field(v, k)?
        .as_str()
        .ok_or_else(|| AdminError::Template(format!("{k} is not a string")))
}
fn list<'a>(v: &'a Value, k: &str) -> Result<&'a Vec<Value>, AdminError> {
    field(v, k)?
        .as_sequence()
        .ok_or_else(|| AdminError::Template(format!("{k} is not a list")))
}

fn key_schema(v: &Value) -> Result<Vec<KeySchemaElement>, AdminError> {
    list(v, "KeySchema")?
        .iter()
        .map(|k| {
            KeySchemaElement::builder()
                .attribute_name(text(k, "AttributeName")?)
                .key_type(KeyType::from(text(k, "KeyType")?))
                .build()
                .map_err(|e| AdminError::Template(e.to_string()))
        })
        .collect()
}

/// The properties of the one `AWS::DynamoDB::Table` in template.yaml.
pub fn table_properties(template: &str) -> Result<Value, AdminError> {
    let doc: Value = serde_norway::from_str(template).map_err(|e| AdminError::Template(e.to_string()))?;
    let resources = field(&doc, "Resources")?
        .as_mapping()
        .ok_or_else(|| AdminError::Template("Resources is not a map".into()))?;
    resources
        .values()
        .find(|r| r.get("Type").and_then(Value::as_str) == Some("AWS::DynamoDB::Table"))
        .and_then(|r| r.get("Properties"))
        .cloned()
        .ok_or_else(|| AdminError::Template("no AWS::DynamoDB::Table".into()))
}

/// Creates `table` with the keys and indexes template.yaml declares. An existing table is left as is.
pub async fn create_table_from_template(
    client: &aws_sdk_dynamodb::Client,
    template: &str,
    table: &str,
) -> Result<(), AdminError> {
    let props = table_properties(template)?;
    let attributes = list(&props, "AttributeDefinitions")?
        .iter()
        .map(|a| {
            AttributeDefinition::builder()
                .attribute_name(text(a, "AttributeName")?)
                .attribute_type(ScalarAttributeType::from(text(a, "AttributeType")?))
                .build()
                .map_err(|e| AdminError::Template(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let indexes = match props.get("GlobalSecondaryIndexes") {
        None => Vec::new(),
        Some(_) => list(&props, "GlobalSecondaryIndexes")?
            .iter()
            .map(|g| {
                let projection = field(g, "Projection")?;
                GlobalSecondaryIndex::builder()
                    .index_name(text(g, "IndexName")?)
                    .set_key_schema(Some(key_schema(g)?))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::from(text(projection, "ProjectionType")?))
                            .build(),
                    )
                    .build()
                    .map_err(|e| AdminError::Template(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    // The stream (the outbox's carrier), as the template declares it.
    let stream = props
        .get("StreamSpecification")
        .and_then(|spec| spec.get("StreamViewType"))
        .and_then(Value::as_str)
        .map(|view| {
            aws_sdk_dynamodb::types::StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(aws_sdk_dynamodb::types::StreamViewType::from(view))
                .build()
                .map_err(|e| AdminError::Template(e.to_string()))
        })
        .transpose()?;
    let result = client
        .create_table()
        .table_name(table)
        .set_stream_specification(stream)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(attributes))
        .set_key_schema(Some(key_schema(&props)?))
        .set_global_secondary_indexes((!indexes.is_empty()).then_some(indexes))
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_in_use_exception()) => Ok(()),
        Err(e) => Err(AdminError::Dynamo(
            aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string(),
        )),
    }
}

/// Issues a key; returns the key itself (shown once, never stored).
pub async fn create_key(store: &dyn Store, tenant: &TenantId, role: Role) -> Result<String, AdminError> {
    let (key, record) = generate_key(tenant, role, &SystemClock).map_err(|e| AdminError::Input(e.to_string()))?;
    tenants::ensure(store, &SystemClock, tenant, None)
        .await
        .map_err(|e| AdminError::Input(e.to_string()))?;
    store.put_api_key(&record).await?;
    Ok(key)
}

/// The tenant's settings (created with USD, admin-only purchases, if it has none).
pub async fn tenant_settings(store: &dyn Store, tenant: &TenantId) -> Result<TenantSettings, AdminError> {
    tenants::ensure(store, &SystemClock, tenant, None)
        .await
        .map_err(|e| AdminError::Input(e.to_string()))
}

/// `http://127.0.0.1[:port]` or `http://localhost[:port]`: the local stack's only http origins.
fn is_loopback_http(origin: &str) -> bool {
    let Some(authority) = origin.strip_prefix("http://") else {
        return false;
    };
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    };
    host == "127.0.0.1" || host == "localhost"
}

/// Changes to a tenant's settings; `None` leaves a setting as it is.
#[derive(Debug, Default, Clone)]
pub struct SettingsChange {
    pub members_may_purchase: Option<bool>,
    /// `Some(None)` removes the minimum.
    pub min_price_per_credit: Option<Option<rust_decimal::Decimal>>,
    /// `Some(vec![])` removes every origin.
    pub allowed_redirect_origins: Option<Vec<String>>,
}

/// Applies `change` to the tenant's settings and returns them. Origins must be `https://host[:port]`
/// (or `http://` for loopback hosts, for the local stack); the minimum price must be positive.
pub async fn update_tenant_settings(
    store: &dyn Store,
    tenant: &TenantId,
    change: SettingsChange,
) -> Result<TenantSettings, AdminError> {
    let mut settings = tenant_settings(store, tenant).await?;
    if let Some(m) = change.members_may_purchase {
        settings.members_may_purchase = m;
    }
    if let Some(min) = change.min_price_per_credit {
        if min.is_some_and(|m| m <= rust_decimal::Decimal::ZERO) {
            return Err(AdminError::Input("--min-price-per-credit must be positive".into()));
        }
        settings.min_price_per_credit = min;
    }
    if let Some(origins) = change.allowed_redirect_origins {
        let mut clean = Vec::new();
        for o in origins {
            let origin =
                tenants::origin_of(&o).filter(|origin| origin == &o.trim_end_matches('/').to_ascii_lowercase());
            match origin {
                Some(origin) if origin.starts_with("https://") || is_loopback_http(&origin) => clean.push(origin),
                _ => {
                    return Err(AdminError::Input(format!(
                        "{o} is not an https origin (scheme://host[:port])"
                    )))
                }
            }
        }
        settings.allowed_redirect_origins = clean;
    }
    store.put_tenant(&settings).await?;
    Ok(settings)
}

/// Provisions an entitlement from the same JSON the API's POST /v1/entitlements takes.
pub async fn create_entitlement(
    store: &DynamoStore,
    tenant: &TenantId,
    request: serde_json::Value,
) -> Result<serde_json::Value, AdminError> {
    let mut body = JsonBody::from_slice(request.to_string().as_bytes()).map_err(|e| AdminError::Input(e.message))?;
    let parsed = parse_new_entitlement(&mut body);
    body.finish().map_err(|e| AdminError::Input(e.message))?;
    let parsed = parsed.ok_or_else(|| AdminError::Input("incomplete entitlement".into()))?;
    let e = entitlements::create_entitlement(store, &SystemClock, tenant, parsed)
        .await
        .map_err(|e| AdminError::Input(e.to_string()))?;
    let view = EntitlementView::new(e, &[], SystemClock.now());
    serde_json::to_value(EntitlementBody::from(&view)).map_err(|e| AdminError::Input(e.to_string()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_loopback_hosts_may_use_http() {
        assert!(super::is_loopback_http("http://127.0.0.1:8080"));
        assert!(super::is_loopback_http("http://localhost"));
        for other in [
            "http://127.0.0.1.evil.com",
            "http://localhost.evil.com:80",
            "https://127.0.0.1",
            "http://10.0.0.1",
        ] {
            assert!(!super::is_loopback_http(other), "{other}");
        }
    }
}
