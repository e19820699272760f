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
