//! Delivery rules ([`grants_domain::webhook_delivery`]): signatures that the Standard Webhooks
//! library verifies (both secrets during a rotation's grace, only the new one after it), the retry
//! schedule, and the addresses a deployed stack refuses.
#![allow(clippy::unwrap_used)]
use grants_domain::webhook_delivery::{
    check_address, check_scheme, signed_headers, wait_before_attempt, Reach, Refused, RETRY_SCHEDULE,
};
use grants_domain::webhook_endpoints::{EndpointId, EndpointUrl, SigningSecret, WebhookEndpoint};
use grants_domain::{Clock, SystemClock, TenantId, Timestamp};
use std::net::IpAddr;
use std::time::Duration;

fn endpoint(secret: &SigningSecret, previous: Option<(SigningSecret, Timestamp)>) -> WebhookEndpoint {
    let at = Timestamp::parse("2030-01-01T00:00:00Z").unwrap();
    WebhookEndpoint {
        tenant: TenantId::parse("acme").unwrap(),
        id: EndpointId::generate(),
        url: EndpointUrl::parse("https://example.com/hooks").unwrap(),
        description: String::new(),
        event_types: None,
        disabled: false,
        secret: secret.clone(),
        previous_secret: previous,
        created_at: at,
        updated_at: at,
        failing_since: None,
        disabled_reason: None,
        version: 1,
    }
}

fn verifies(secret: &SigningSecret, headers: &[(&'static str, String)], body: &str) -> bool {
    let mut map = http::HeaderMap::new();
    for (k, v) in headers {
        map.insert(*k, v.parse().unwrap());
    }
    standardwebhooks::Webhook::new(secret.expose())
        .unwrap()
        .verify(body.as_bytes(), &map)
        .is_ok()
}

#[test]
fn an_attempt_is_signed_by_the_secret_and_during_the_grace_by_the_old_one_too() {
    let now = SystemClock.now();
    let (old, new) = (SigningSecret::generate().unwrap(), SigningSecret::generate().unwrap());
    let body = r#"{"type":"invoice.paid.v0","data":{"invoiceId":"inv_1","grantId":"grt_1"}}"#;
    let single = signed_headers("msg_1", body, &endpoint(&new, None), now).unwrap();
    assert_eq!(single[0], ("webhook-id", "msg_1".to_owned()));
    assert_eq!(single[1], ("webhook-timestamp", now.unix_seconds().to_string()));
    assert!(single[2].1.starts_with("v1,") && !single[2].1.contains(' '));
    assert!(verifies(&new, &single, body));
    assert!(!verifies(&old, &single, body));
    assert!(
        !verifies(&new, &single, &body.replace("inv_1", "inv_2")),
        "the body is signed"
    );

    let until = now.plus_seconds(60).unwrap();
    let both = signed_headers("msg_1", body, &endpoint(&new, Some((old.clone(), until))), now).unwrap();
    assert_eq!(both[2].1.split(' ').count(), 2);
    assert!(verifies(&new, &both, body) && verifies(&old, &both, body));
    let later = now.plus_seconds(61).unwrap();
    let after = signed_headers("msg_1", body, &endpoint(&new, Some((old, until))), later).unwrap();
    assert_eq!(
        after[2].1.split(' ').count(),
        1,
        "the old secret signs until its grace ends"
    );
}

#[test]
fn the_schedule_is_eight_attempts_over_more_than_a_day() {
    assert_eq!(wait_before_attempt(0), Some(Duration::ZERO));
    assert_eq!(wait_before_attempt(1), Some(Duration::from_secs(5)));
    assert_eq!(wait_before_attempt(8), None);
    let total: Duration = RETRY_SCHEDULE.iter().sum();
    assert!(total > Duration::from_secs(24 * 3600), "{total:?}");
}

#[test]
fn a_deployed_stack_reaches_public_https_only() {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    for refused in [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "255.255.255.255",
        "224.0.0.1",
        "::1",
        "fd00:ec2::254",
        "fe80::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::",
        "192.0.2.1",
        "::7f00:1",
        "::a9fe:a9fe",
        "::ffff:0:a00:1",
        "64:ff9b::a00:1",
        "2002:a00:1::1",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        "fec0::1",
        "0.1.2.3",
    ] {
        assert!(
            matches!(
                check_address(ip(refused), Reach::Public),
                Err(Refused::NonPublicAddress(_))
            ),
            "{refused}"
        );
    }
    for allowed in [
        "93.184.216.34",
        "8.8.8.8",
        "2606:4700::1111",
        "64:ff9b::808:808",
        "::ffff:8.8.8.8",
    ] {
        assert_eq!(check_address(ip(allowed), Reach::Public), Ok(()), "{allowed}");
    }
    assert_eq!(check_address(ip("127.0.0.1"), Reach::LocalStack), Ok(()));
    assert_eq!(check_address(ip("::1"), Reach::LocalStack), Ok(()));
    assert!(
        check_address(ip("10.0.0.1"), Reach::LocalStack).is_err(),
        "only loopback locally"
    );
    assert!(check_address(ip("169.254.169.254"), Reach::LocalStack).is_err());
    assert_eq!(check_scheme("https", Reach::Public), Ok(()));
    assert_eq!(check_scheme("http", Reach::Public), Err(Refused::NotHttps));
    assert_eq!(check_scheme("http", Reach::LocalStack), Ok(()));
}
