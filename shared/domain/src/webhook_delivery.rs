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
use crate::webhook_endpoints::WebhookEndpoint;
use crate::Timestamp;
use std::net::IpAddr;
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

/// An address the endpoint's host resolved to may be connected to.
pub fn check_address(ip: IpAddr, reach: Reach) -> Result<(), Refused> {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    if reach == Reach::LocalStack && ip.is_loopback() {
        return Ok(());
    }
    if is_public(ip) {
        Ok(())
    } else {
        Err(Refused::NonPublicAddress(ip))
    }
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && v4.octets()[2] == 0)
                || (a == 198 && (18..20).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8
                || first == 0x0064 && v6.segments()[1] == 0xff9b)
        }
    }
}
