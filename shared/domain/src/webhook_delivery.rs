//! Delivering webhook messages (issue 17, item 5 and 6): what a delivery attempt sends and when
//! the next one is due. Pure rules; the delivery function does the I/O.
//!
//! - **Signing** per Standard Webhooks, with the specification's own library
//!   ([`standardwebhooks`]): `webhook-id` (the message id, the same on every attempt, so that
//!   receivers deduplicate), `webhook-timestamp` (Unix seconds of the attempt) and
//!   `webhook-signature` (`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`; during a secret's
//!   rotation grace, one signature by each secret, space-separated).
//! - **Retries**: an attempt that fails (a non-2xx answer, a time-out, a refused address) is
//!   followed by the next after [`RETRY_SCHEDULE`]'s wait (Svix's schedule: at once, 5 s, 5 min,
//!   30 min, 2 h, 5 h, 10 h, 10 h: 8 attempts over about 27.6 hours). After the last the message
//!   stays failed for that endpoint, and can be resent.
//! - **Where it may go**: a deployed stack delivers to `https` URLs only, and never to an address
//!   that is loopback, private, link-local (cloud metadata included), shared (CGNAT),
//!   unspecified, broadcast, multicast or documentation-only; the address is checked after DNS
//!   resolution, at every attempt. The local stack also allows `http` to loopback (its tests'
//!   receivers).
use crate::ids::AttemptId;
use crate::kernel::StoreError;
use crate::messaging::{MessageQueue, QueueError};
use crate::webhook_endpoints::{check_application, EndpointError, EndpointId, EndpointStore, WebhookEndpoint};
use crate::webhook_messages::{MessageId, WebhookMessage};
use crate::webhooks::WebhookStore;
use crate::{Clock, TenantId, Timestamp};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// The wait before each attempt (the first at once): Svix's schedule.
pub const RETRY_SCHEDULE: [Duration; 8] = [
    Duration::from_secs(0),
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// How long one attempt may take, connection included.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);

/// How many bytes of a receiver's answer an attempt keeps.
pub const RESPONSE_KEPT_BYTES: usize = 1024;

/// The wait before attempt `n` (0-based) after attempt `n - 1` failed; None: there is no
/// attempt `n` (the message has failed for that endpoint).
pub fn wait_before_attempt(n: usize) -> Option<Duration> {
    RETRY_SCHEDULE.get(n).copied()
}

/// The headers that sign one attempt of `message_id` with `body` to `endpoint`, at `at`.
pub fn signed_headers(
    message_id: &str,
    body: &str,
    endpoint: &WebhookEndpoint,
    at: Timestamp,
) -> Result<Vec<(&'static str, String)>, SignError> {
    let seconds = at.unix_seconds();
    let mut signatures = vec![sign(endpoint.secret.key(), message_id, seconds, body)?];
    if let Some((old, until)) = &endpoint.previous_secret {
        if *until > at {
            signatures.push(sign(old.key(), message_id, seconds, body)?);
        }
    }
    Ok(vec![
        (standardwebhooks::HEADER_WEBHOOK_ID, message_id.to_owned()),
        (standardwebhooks::HEADER_WEBHOOK_TIMESTAMP, seconds.to_string()),
        (standardwebhooks::HEADER_WEBHOOK_SIGNATURE, signatures.join(" ")),
        ("content-type", "application/json".to_owned()),
    ])
}

fn sign(key: Vec<u8>, message_id: &str, seconds: i64, body: &str) -> Result<String, SignError> {
    standardwebhooks::Webhook::from_bytes(key)
        .and_then(|w| w.sign(message_id, seconds, body.as_bytes()))
        .map_err(|e| SignError(e.to_string()))
}

/// A message could not be signed (its body is not UTF-8 text).
#[derive(Debug, thiserror::Error)]
#[error("cannot sign the message: {0}")]
pub struct SignError(String);

/// Where deliveries may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// A deployed stack: `https`, public addresses only.
    Public,
    /// The local stack: also `http`, and loopback addresses (never other private ones).
    LocalStack,
}

/// Why an attempt was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("deliveries go to https URLs only")]
    NotHttps,
    #[error("the endpoint resolves to a non-public address ({0})")]
    NonPublicAddress(IpAddr),
}

/// The URL's scheme is one deliveries may use.
pub fn check_scheme(scheme: &str, reach: Reach) -> Result<(), Refused> {
    match (scheme, reach) {
        ("https", _) | ("http", Reach::LocalStack) => Ok(()),
        _ => Err(Refused::NotHttps),
    }
}

/// An address the endpoint's host resolved to may be connected to. An IPv6 address that carries
/// an IPv4 one (mapped, compatible, SIIT, NAT64, 6to4) is judged by the IPv4 address it carries;
/// Teredo and site-local addresses are refused.
pub fn check_address(ip: IpAddr, reach: Reach) -> Result<(), Refused> {
    let judged = match ip {
        IpAddr::V6(v6) => embedded_v4(v6).map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    if reach == Reach::LocalStack && judged.is_loopback() {
        return Ok(());
    }
    if is_public(judged) {
        Ok(())
    } else {
        Err(Refused::NonPublicAddress(ip))
    }
}

/// The IPv4 address an IPv6 address carries, if it is one of the forms that carry one.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        // ::ffff:a.b.c.d (mapped), ::ffff:0:a.b.c.d (SIIT), 64:ff9b::a.b.c.d (NAT64).
        [0, 0, 0, 0, 0, 0xffff, ..] | [0, 0, 0, 0, 0xffff, 0, ..] | [0x64, 0xff9b, 0, 0, 0, 0, ..] => Some(low),
        // ::a.b.c.d (compatible, deprecated); :: and ::1 are judged as IPv6.
        [0, 0, 0, 0, 0, 0, hi, lo] if hi != 0 || lo > 1 => Some(low),
        // 2002:a.b.c.d::/48 (6to4).
        [0x2002, a, b, ..] => Some(Ipv4Addr::new((a >> 8) as u8, a as u8, (b >> 8) as u8, b as u8)),
        _ => None,
    }
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (18..20).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            let [first, second, ..] = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // Unique local (fc00::/7: AWS's fd00:ec2::254 metadata too), link-local
                // (fe80::/10), site-local (fec0::/10).
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first & 0xffc0) == 0xfec0
                // Documentation (2001:db8::/32), Teredo (2001::/32).
                || (first == 0x2001 && (second == 0x0db8 || second == 0)))
        }
    }
}

/// How long an endpoint may fail every attempt before the service disables it (Svix's rule).
pub const DISABLE_AFTER_FAILING_SECONDS: i64 = 5 * 86_400;

/// Why an attempt was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// By the retry schedule (the first attempt included).
    Scheduled,
    /// A person or client resent the message: one attempt, no retries.
    Manual,
}

/// One message to one endpoint: the delivery queue's message body (JSON). The attempt number is
/// the queue's receive count, so it is not in the body.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryJob {
    pub tenant: String,
    pub message_id: String,
    pub endpoint_id: String,
    pub event_type: String,
    /// The message body, byte for byte as signed and sent.
    pub payload: String,
    pub trigger: Trigger,
}

impl DeliveryJob {
    pub fn new(message: &WebhookMessage, endpoint: &EndpointId, trigger: Trigger) -> Self {
        Self {
            tenant: message.tenant.as_str().to_owned(),
            message_id: message.id.as_str().to_owned(),
            endpoint_id: endpoint.as_str().to_owned(),
            event_type: message.event_type.clone(),
            payload: message.payload.clone(),
            trigger,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(body: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(body)
    }
}

/// What an attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptStatus {
    /// The endpoint answered 2xx.
    Success,
    /// Anything else: another status, a time-out, a refused address, no connection.
    Fail,
}

/// One attempt to deliver a message to an endpoint, as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageAttempt {
    pub id: AttemptId,
    pub tenant: TenantId,
    pub endpoint_id: EndpointId,
    pub message_id: MessageId,
    pub event_type: String,
    /// The URL it was sent to.
    pub url: String,
    pub status: AttemptStatus,
    /// The HTTP status the endpoint answered; 0 when there was no answer.
    pub response_status_code: u16,
    /// The first [`RESPONSE_KEPT_BYTES`] of the answer, or why there was none.
    pub response: String,
    pub response_duration_ms: u64,
    pub trigger: Trigger,
    /// 1 for the first attempt of the schedule.
    pub attempt_number: u32,
    pub timestamp: Timestamp,
}

/// What the sender saw of one POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    /// The answer's status; None when there was none (refused, time-out, connection error).
    pub status: Option<u16>,
    /// The first bytes of the answer, or why there was none.
    pub body: String,
    pub duration: Duration,
}

/// Sends one signed POST. The implementation resolves the host, refuses (per [`Reach`]) any
/// address [`check_address`] refuses, connects only to checked addresses, follows no redirect and
/// gives up after [`ATTEMPT_TIMEOUT`].
#[async_trait::async_trait]
pub trait WebhookSender: Send + Sync {
    async fn post(&self, url: &str, headers: &[(&'static str, String)], body: &str) -> Posted;
}

/// The storage port of deliveries.
#[async_trait::async_trait]
pub trait DeliveryStore: Send + Sync {
    /// The tenant's endpoints if its webhooks are enabled; empty otherwise. One read.
    async fn subscribers(&self, tenant: &TenantId) -> Result<Vec<WebhookEndpoint>, StoreError>;
    async fn get_message(&self, tenant: &TenantId, id: &MessageId) -> Result<Option<WebhookMessage>, StoreError>;
    async fn record_attempt(&self, attempt: &MessageAttempt) -> Result<(), StoreError>;
    /// The endpoint's attempts, newest first, older than `before` when given; and whether there
    /// are more.
    async fn attempts_by_endpoint(
        &self,
        tenant: &TenantId,
        endpoint: &EndpointId,
        before: Option<&AttemptId>,
        limit: usize,
    ) -> Result<(Vec<MessageAttempt>, bool), StoreError>;
}

/// Queues one delivery job per endpoint of the message's tenant that takes its type (webhooks
/// enabled, endpoint not disabled, type not filtered out). Returns how many it queued.
/// At least once: a failure part-way leaves the whole message to be dispatched again.
pub async fn dispatch(
    store: &dyn DeliveryStore,
    queue: &dyn MessageQueue,
    message: &WebhookMessage,
) -> Result<usize, DispatchError> {
    let endpoints = store.subscribers(&message.tenant).await?;
    let mut queued = 0;
    for endpoint in endpoints.iter().filter(|e| e.wants(&message.event_type)) {
        queue
            .send(DeliveryJob::new(message, &endpoint.id, Trigger::Scheduled).to_json())
            .await?;
        queued += 1;
    }
    Ok(queued)
}

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// What the delivery queue does with a job after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The endpoint took it: delete the job.
    Delivered,
    /// It failed: attempt again after this long.
    RetryAfter(Duration),
    /// It failed and no attempt is left: the message stays failed for the endpoint (resendable).
    Failed,
    /// Not attempted (the endpoint is gone or disabled, or the job is unreadable): delete it.
    Dropped(&'static str),
}

/// What one attempt needs.
pub struct Deliverer<'a, S: ?Sized> {
    pub store: &'a S,
    pub sender: &'a dyn WebhookSender,
    pub clock: &'a dyn Clock,
    /// The waits before each attempt ([`RETRY_SCHEDULE`] when deployed).
    pub schedule: &'a [Duration],
}

/// Makes attempt `attempt_number` (1-based) of `job`: signs it with the endpoint's current
/// secret(s), posts it, logs the attempt, keeps the endpoint's health (failing for
/// [`DISABLE_AFTER_FAILING_SECONDS`]: disabled), and says what the queue should do next.
pub async fn deliver<S>(d: &Deliverer<'_, S>, job: &DeliveryJob, attempt_number: u32) -> Result<Outcome, StoreError>
where
    S: WebhookStore + EndpointStore + DeliveryStore + ?Sized,
{
    let (Ok(tenant), Ok(endpoint_id), Ok(message_id)) = (
        TenantId::parse(&job.tenant),
        EndpointId::parse(&job.endpoint_id),
        MessageId::parse(&job.message_id),
    ) else {
        return Ok(Outcome::Dropped("the job names no valid tenant, endpoint or message"));
    };
    let Some(endpoint) = d.store.get_endpoint(&tenant, &endpoint_id).await? else {
        return Ok(Outcome::Dropped("the endpoint was deleted"));
    };
    if endpoint.disabled {
        return Ok(Outcome::Dropped("the endpoint is disabled"));
    }
    if job.trigger == Trigger::Scheduled && !endpoint.wants(&job.event_type) {
        return Ok(Outcome::Dropped("the endpoint no longer takes this event type"));
    }
    // Paused webhooks (`enabled: false`) stop queued jobs and retries too; what was not sent
    // while paused is not sent on resume (it can be resent).
    if !d.store.get_webhook_config(&tenant).await?.is_some_and(|c| c.enabled) {
        return Ok(Outcome::Dropped("the tenant's webhooks are paused"));
    }
    let now = d.clock.now();
    let posted = match signed_headers(&job.message_id, &job.payload, &endpoint, now) {
        Ok(headers) => d.sender.post(endpoint.url.as_str(), &headers, &job.payload).await,
        Err(e) => Posted {
            status: None,
            body: e.to_string(),
            duration: Duration::ZERO,
        },
    };
    let success = posted.status.is_some_and(|s| (200..300).contains(&s));
    let attempt = MessageAttempt {
        id: AttemptId::generate(),
        tenant: tenant.clone(),
        endpoint_id: endpoint_id.clone(),
        message_id,
        event_type: job.event_type.clone(),
        url: endpoint.url.as_str().to_owned(),
        status: if success {
            AttemptStatus::Success
        } else {
            AttemptStatus::Fail
        },
        response_status_code: posted.status.unwrap_or(0),
        response: truncate(&posted.body, RESPONSE_KEPT_BYTES),
        response_duration_ms: u64::try_from(posted.duration.as_millis()).unwrap_or(u64::MAX),
        trigger: job.trigger,
        attempt_number,
        timestamp: now,
    };
    d.store.record_attempt(&attempt).await?;
    // Health is best-effort: failing to record it must not send the message again.
    if let Err(e) = keep_health(d.store, endpoint, success, now).await {
        tracing::warn!(endpoint = %endpoint_id, error = %e, "could not record the endpoint's health");
    }
    Ok(match (success, job.trigger) {
        (true, _) => Outcome::Delivered,
        (false, Trigger::Manual) => Outcome::Failed,
        (false, Trigger::Scheduled) => usize::try_from(attempt_number)
            .ok()
            .and_then(|n| d.schedule.get(n))
            .map_or(Outcome::Failed, |wait| Outcome::RetryAfter(*wait)),
    })
}

/// Records when an endpoint started failing (or that it recovered), and disables it once it has
/// failed for [`DISABLE_AFTER_FAILING_SECONDS`]. Writes only on a change; losing a race to a
/// person's edit leaves the health for the next attempt to record.
async fn keep_health<S>(store: &S, endpoint: WebhookEndpoint, success: bool, now: Timestamp) -> Result<(), StoreError>
where
    S: EndpointStore + ?Sized,
{
    let mut next = endpoint.clone();
    match (success, endpoint.failing_since) {
        (true, None) => return Ok(()),
        (true, Some(_)) => next.failing_since = None,
        (false, None) => next.failing_since = Some(now),
        (false, Some(since)) => {
            if now.unix_seconds() - since.unix_seconds() < DISABLE_AFTER_FAILING_SECONDS {
                return Ok(());
            }
            next.disabled = true;
            next.disabled_reason = Some(format!(
                "every delivery failed from {} to {}",
                since.to_rfc3339(),
                now.to_rfc3339()
            ));
            tracing::error!(
                tenant = %endpoint.tenant, endpoint = %endpoint.id, failing_since = %since.to_rfc3339(),
                "webhook endpoint disabled: every delivery failed for 5 days; the merchant must enable it again"
            );
        }
    }
    next.updated_at = now;
    next.version += 1;
    store.replace_endpoint(&next).await?;
    Ok(())
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// A page of an endpoint's attempts, newest first; `iterator` is the last attempt's id.
#[derive(Debug, Clone)]
pub struct AttemptPage {
    pub data: Vec<MessageAttempt>,
    pub iterator: Option<String>,
    pub done: bool,
}

/// The attempts to one endpoint of the application, newest first, `limit` (1..=250) after
/// `iterator`.
pub async fn list_attempts<S>(
    store: &S,
    tenant: &TenantId,
    app: &str,
    endpoint: &str,
    iterator: Option<&str>,
    limit: usize,
) -> Result<AttemptPage, EndpointError>
where
    S: WebhookStore + EndpointStore + DeliveryStore + ?Sized,
{
    check_application(store, tenant, app).await?;
    let id = EndpointId::parse(endpoint).map_err(|_| EndpointError::EndpointNotFound)?;
    store
        .get_endpoint(tenant, &id)
        .await?
        .ok_or(EndpointError::EndpointNotFound)?;
    // An iterator that is not an attempt id starts from the newest (as a stale one would).
    let before = iterator.and_then(|i| AttemptId::parse(i).ok());
    let (data, more) = store.attempts_by_endpoint(tenant, &id, before.as_ref(), limit).await?;
    Ok(AttemptPage {
        iterator: data.last().map(|a| a.id.as_str().to_owned()),
        done: !more,
        data,
    })
}

/// Queues one more attempt of a message to an endpoint (a manual one: no retries after it).
pub async fn resend<S>(
    store: &S,
    queue: &dyn MessageQueue,
    tenant: &TenantId,
    app: &str,
    message: &str,
    endpoint: &str,
) -> Result<(), EndpointError>
where
    S: WebhookStore + EndpointStore + DeliveryStore + ?Sized,
{
    check_application(store, tenant, app).await?;
    let endpoint = EndpointId::parse(endpoint).map_err(|_| EndpointError::EndpointNotFound)?;
    let message = MessageId::parse(message).map_err(|_| EndpointError::MessageNotFound)?;
    let target = store
        .get_endpoint(tenant, &endpoint)
        .await?
        .ok_or(EndpointError::EndpointNotFound)?;
    if target.disabled {
        return Err(EndpointError::EndpointDisabled);
    }
    let message = store
        .get_message(tenant, &message)
        .await?
        .ok_or(EndpointError::MessageNotFound)?;
    queue
        .send(DeliveryJob::new(&message, &endpoint, Trigger::Manual).to_json())
        .await
        .map_err(|e| EndpointError::Store(StoreError::Unavailable(e.0)))
}
