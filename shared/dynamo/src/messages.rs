//! Webhook messages and attempts on DynamoDB.
//!
//! - **Outbox**: [`message_put`] is one more item of the transaction that makes the change a
//!   message reports (a grant's creation, an invoice's settlement, ...). The table's stream
//!   (`NEW_IMAGE`, filtered on `type = webhook_message` inserts) carries it to the dispatcher.
//! - **Subscribers**: the tenant's webhook configuration and endpoints share its partition, so one
//!   Query reads both (`SK` from `WEBHOOKS` to `WEP#~`).
//! - **Attempts**: one item each under the endpoint's attempts partition, newest first by a
//!   backwards Query.
use crate::prelude::*;
use crate::webhooks::{config_from, endpoint_from};
use grants_domain::webhook_delivery::{AttemptStatus, DeliveryStore, MessageAttempt, Trigger};
use grants_domain::webhook_endpoints::{EndpointId, WebhookEndpoint};
use grants_domain::webhook_messages::{MessageId, WebhookMessage};
use grants_domain::webhook_portal::{PortalLink, PortalStore};
use grants_domain::AttemptId;

fn expiry(from: Timestamp) -> AttributeValue {
    AttributeValue::N((from.unix_seconds() + MESSAGE_RETENTION_SECONDS).to_string())
}

pub(crate) fn message_item(m: &WebhookMessage) -> Item {
    HashMap::from([
        (PK.to_owned(), s(message_pk(m.tenant.as_str(), m.id.as_str()))),
        (SK.to_owned(), s(MESSAGE_SK)),
        ("type".to_owned(), s(MESSAGE_TYPE)),
        ("tenant".to_owned(), s(m.tenant.as_str())),
        ("id".to_owned(), s(m.id.as_str())),
        ("event_type".to_owned(), s(&m.event_type)),
        ("payload".to_owned(), s(&m.payload)),
        ("created_at".to_owned(), ts(m.created_at)),
        (TTL.to_owned(), expiry(m.created_at)),
    ])
}

/// A message as a stream record's `NewImage` or a read carries it.
pub fn message_from(item: &Item) -> Result<WebhookMessage, StoreError> {
    let r = Reader(item);
    Ok(WebhookMessage {
        id: MessageId::parse(r.s("id")?).map_err(corrupt("message id"))?,
        tenant: TenantId::parse(r.s("tenant")?).map_err(corrupt("tenant"))?,
        event_type: r.s("event_type")?.to_owned(),
        payload: r.s("payload")?.to_owned(),
        created_at: r.ts("created_at")?,
    })
}

/// The outbox write of a message, for the transaction of the change it reports.
pub(crate) fn message_put(table: &str, m: &WebhookMessage) -> Result<TransactWriteItem, StoreError> {
    put(table, message_item(m), "attribute_not_exists(PK)")
}

fn attempt_item(a: &MessageAttempt) -> Item {
    HashMap::from([
        (PK.to_owned(), s(attempts_pk(a.tenant.as_str(), a.endpoint_id.as_str()))),
        (SK.to_owned(), s(a.id.as_str())),
        ("type".to_owned(), s("message_attempt")),
        ("message_id".to_owned(), s(a.message_id.as_str())),
        ("event_type".to_owned(), s(&a.event_type)),
        ("url".to_owned(), s(&a.url)),
        (
            "status".to_owned(),
            s(match a.status {
                AttemptStatus::Success => "success",
                AttemptStatus::Fail => "fail",
            }),
        ),
        (
            "response_status_code".to_owned(),
            AttributeValue::N(a.response_status_code.to_string()),
        ),
        ("response".to_owned(), s(&a.response)),
        (
            "response_duration_ms".to_owned(),
            AttributeValue::N(a.response_duration_ms.to_string()),
        ),
        (
            "trigger".to_owned(),
            s(match a.trigger {
                Trigger::Scheduled => "scheduled",
                Trigger::Manual => "manual",
            }),
        ),
        (
            "attempt_number".to_owned(),
            AttributeValue::N(a.attempt_number.to_string()),
        ),
        ("timestamp".to_owned(), ts(a.timestamp)),
        (TTL.to_owned(), expiry(a.timestamp)),
    ])
}

fn attempt_from(tenant: &TenantId, endpoint: &EndpointId, item: &Item) -> Result<MessageAttempt, StoreError> {
    let r = Reader(item);
    let number = |k: &str| -> Result<u64, StoreError> {
        match item.get(k) {
            Some(AttributeValue::N(v)) => v.parse().map_err(corrupt("attempt number")),
            _ => Err(StoreError::Corrupt(format!("attempt without {k}"))),
        }
    };
    Ok(MessageAttempt {
        id: AttemptId::parse(r.s(SK)?).map_err(corrupt("attempt id"))?,
        tenant: tenant.clone(),
        endpoint_id: endpoint.clone(),
        message_id: MessageId::parse(r.s("message_id")?).map_err(corrupt("message id"))?,
        event_type: r.s("event_type")?.to_owned(),
        url: r.s("url")?.to_owned(),
        status: if r.s("status")? == "success" {
            AttemptStatus::Success
        } else {
            AttemptStatus::Fail
        },
        response_status_code: u16::try_from(number("response_status_code")?).unwrap_or(0),
        response: r.s("response")?.to_owned(),
        response_duration_ms: number("response_duration_ms")?,
        trigger: if r.s("trigger")? == "manual" {
            Trigger::Manual
        } else {
            Trigger::Scheduled
        },
        attempt_number: u32::try_from(number("attempt_number")?).unwrap_or(u32::MAX),
        timestamp: r.ts("timestamp")?,
    })
}

#[async_trait]
impl DeliveryStore for DynamoStore {
    async fn subscribers(&self, tenant: &TenantId) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let items = self
            .query_all(
                None,
                "PK = :pk AND SK BETWEEN :from AND :to",
                &[],
                vec![
                    (":pk", s(tenant_pk(tenant.as_str()))),
                    (":from", s(WEBHOOKS_SK)),
                    (":to", s(format!("{ENDPOINT_SK_PREFIX}~"))),
                ],
            )
            .await?;
        let enabled = items
            .iter()
            .find(|i| Reader(i).opt_s(SK) == Some(WEBHOOKS_SK))
            .map(|i| config_from(tenant, i))
            .transpose()?
            .is_some_and(|c| c.enabled);
        if !enabled {
            return Ok(Vec::new());
        }
        items
            .iter()
            .filter(|i| Reader(i).opt_s(SK).is_some_and(|sk| sk.starts_with(ENDPOINT_SK_PREFIX)))
            .map(|i| endpoint_from(tenant, i))
            .collect()
    }

    async fn get_message(&self, tenant: &TenantId, id: &MessageId) -> Result<Option<WebhookMessage>, StoreError> {
        self.get(message_pk(tenant.as_str(), id.as_str()), MESSAGE_SK)
            .await?
            .as_ref()
            .map(message_from)
            .transpose()
    }

    async fn record_attempt(&self, attempt: &MessageAttempt) -> Result<(), StoreError> {
        self.client()
            .put_item()
            .table_name(&self.table)
            .set_item(Some(attempt_item(attempt)))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn attempts_by_endpoint(
        &self,
        tenant: &TenantId,
        endpoint: &EndpointId,
        before: Option<&AttemptId>,
        limit: usize,
    ) -> Result<(Vec<MessageAttempt>, bool), StoreError> {
        let pk = attempts_pk(tenant.as_str(), endpoint.as_str());
        let mut q = self
            .client()
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .scan_index_forward(false)
            .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX))
            .expression_attribute_values(":pk", s(pk));
        q = match before {
            Some(b) => q
                .key_condition_expression("PK = :pk AND SK < :before")
                .expression_attribute_values(":before", s(b.as_str())),
            None => q.key_condition_expression("PK = :pk"),
        };
        let out = q.send().await.map_err(unavailable)?;
        let mut items = out.items.unwrap_or_default();
        let more = items.len() > limit;
        items.truncate(limit);
        let attempts = items
            .iter()
            .map(|i| attempt_from(tenant, endpoint, i))
            .collect::<Result<_, _>>()?;
        Ok((attempts, more))
    }
}

#[async_trait]
impl PortalStore for DynamoStore {
    async fn insert_portal_link(&self, link: &PortalLink) -> Result<(), StoreError> {
        let item = HashMap::from([
            (PK.to_owned(), s(portal_pk(&link.token_hash))),
            (SK.to_owned(), s(PORTAL_SK)),
            ("type".to_owned(), s("portal_link")),
            ("tenant".to_owned(), s(link.tenant.as_str())),
            ("expires_at".to_owned(), ts(link.expires_at)),
            (
                TTL.to_owned(),
                AttributeValue::N(link.expires_at.unix_seconds().to_string()),
            ),
        ]);
        let result = self
            .client()
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await;
        match written(result)? {
            Some(_) => Ok(()),
            None => Err(StoreError::Corrupt("portal token collision".to_owned())),
        }
    }

    async fn find_portal_link(&self, token_hash: &str) -> Result<Option<PortalLink>, StoreError> {
        let Some(item) = self.get(portal_pk(token_hash), PORTAL_SK).await? else {
            return Ok(None);
        };
        let r = Reader(&item);
        Ok(Some(PortalLink {
            tenant: TenantId::parse(r.s("tenant")?).map_err(corrupt("tenant"))?,
            token_hash: token_hash.to_owned(),
            expires_at: r.ts("expires_at")?,
        }))
    }
}
