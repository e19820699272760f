//! Fuzzing of every request parser, through every route's handler on the real local stack:
//! proptest generates bodies (objects over the surfaces' own field names with hostile values, and
//! raw bytes), query strings and path ids. Whatever arrives, the answer is a 4xx/2xx with a JSON
//! body (HTML for the checkout pages): never a 5xx, never a panic. The runner is deterministic
//! (the same cases every run); `FUZZ_CASES=N` makes the run longer.
use crate::events::SampleObjects;
use crate::helpers::{spawn_app_with_queues, Key};
use grants_http::Route;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Map, Value};

const FIELDS: &[&str] = &[
    "amount",
    "idempotencyKey",
    "effectiveAt",
    "expiresAt",
    "priority",
    "resetMaxRollover",
    "resetMinRollover",
    "customerId",
    "featureKey",
    "pricingUnitId",
    "price",
    "currency",
    "successUrl",
    "cancelUrl",
    "paymentExpiresAt",
    "eventId",
    "pending",
    "occurredAt",
    "customer_id",
    "expires_at",
    "grant_amount",
    "credit_type_id",
    "paid_amount",
    "name",
    "effective_at",
    "reason",
    "uniqueness_key",
    "custom_fields",
    "credit_grant_type",
    "product_ids",
    "invoice_date",
    "rollover_settings",
    "id",
    "credit_grant_ids",
    "customer_ids",
    "credit_type_ids",
    "effective_before",
    "not_expiring_before",
    "limit",
    "next_page",
    "starting_on",
    "ending_before",
    "kind",
    "cluster",
    "quantity",
    "starts_at",
    "ends_at",
    "unit_price",
    "early_termination_buyback_price",
    "flexible_usage_buyback_price",
    "new_quantity",
    "scope",
    "plan_id",
    "subscription_id",
    "credits",
    "cadence",
    "period",
    "period_count",
    "expiration_type",
    "expiration_duration",
    "expiration_duration_unit",
    "metadata",
    "start_date",
    "end_date",
    "conversion_rate",
    "effective_date",
    "action",
    "account",
    "type",
    "data",
    "invoiceId",
    "sessionId",
    "includeVoided",
    "at",
    "cursor",
    "status",
];

const WORDS: &[&str] = &[
    "",
    " ",
    "0",
    "-1",
    "1e400",
    "-0",
    "NaN",
    "Infinity",
    "0.000000000000000000000000001",
    "79228162514264337593543950336",
    "5.00",
    "0.499",
    "12.345",
    "2099-01-01T00:00:00Z",
    "1970-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "2026-02-30T00:00:00Z",
    "10000-01-01T00:00:00Z",
    "2030-01-01T00:00:00+14:00",
    "yesterday",
    "PLAN",
    "SUBSCRIPTION",
    "ADDON",
    "ONETIME",
    "RECURRING",
    "MONTHLY",
    "ANNUAL",
    "DAILY",
    "DURATION",
    "NEVER",
    "BILLING_CYCLE",
    "DAY",
    "WEEK",
    "MONTH",
    "YEAR",
    "gpu",
    "usd",
    "JPY",
    "KWD",
    "xxx",
    "2714e483-4ff1-48e4-9e25-ac732e8f24f2",
    "ent_01SAMPLEENTITLEMENT00000",
    "grt_00000000000000000000000000",
    "cap_x",
    "cgrant_x",
    "inv_x",
    "ps_x",
    "paid",
    "expired",
    "failed",
    "pay",
    "cancel",
    "payment.paid",
    "<script>",
    "é\u{0}\u{7f}",
    "%00",
    "../../etc/passwd",
    "https://example.com/ok",
    "javascript:alert(1)",
];

/// Numbers as JSON text (arbitrary precision keeps them exactly as written).
const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1e400",
    "-1e-400",
    "0.000000000000000000000000001",
    "79228162514264337593543950336",
    "12.345",
    "0.499",
    "1.0",
    "-5",
    "18446744073709551616",
    "1E2",
    "99999999999.999999999",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        (-1000i64..1000).prop_map(|n| json!(n)),
        prop::sample::select(WORDS).prop_map(|w| json!(w)),
        prop::sample::select(NUMBERS).prop_map(|w| serde_json::from_str::<Value>(w).unwrap_or(Value::Null)),
        "\\PC{0,40}".prop_map(Value::String),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(FIELDS).prop_map(str::to_owned), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A body: an object over the surfaces' field names, any JSON value, or raw bytes.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => prop::collection::vec((prop::sample::select(FIELDS).prop_map(str::to_owned), value()), 0..10)
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>()).to_string().into_bytes()),
        2 => value().prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..64),
        1 => Just(Vec::new()),
    ]
}

fn query() -> impl Strategy<Value = String> {
    prop::collection::vec((prop::sample::select(FIELDS), prop::sample::select(WORDS)), 0..4).prop_map(|kv| {
        kv.into_iter()
            .map(|(k, v)| format!("{k}={}", form_encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    })
}

fn form_encode(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn every_parser_answers_hostile_input_with_a_4xx_never_a_5xx_or_a_panic() {
    let t = spawn_app_with_queues().await;
    let objects = SampleObjects::create(&t).await;
    let cases: u32 = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(48);
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases,
            ..Config::default()
        },
        proptest::test_runner::TestRng::deterministic_rng(proptest::test_runner::RngAlgorithm::ChaCha),
    );
    let strategy = (body(), query(), any::<bool>(), prop::sample::select(WORDS));
    for route in Route::ALL {
        for _ in 0..cases {
            let (body, query, real_ids, word) = strategy.new_tree(&mut runner).unwrap().current();
            // Path ids: the sample objects' (so parsing reaches the domain), or a hostile word.
            let sample = objects.event(&t, *route, Some(&t.admin_key));
            let mut path = if real_ids {
                sample.uri().path().to_owned()
            } else {
                route.template().to_owned()
            };
            for param in ["{id}", "{grantId}", "{invoiceId}", "{sessionId}", "{grant_fid}"] {
                path = path.replace(param, &form_encode(word));
            }
            let target = if query.is_empty() {
                path.clone()
            } else {
                format!("{path}?{query}")
            };
            let r = t
                .raw_with(
                    route.method(),
                    &target,
                    Key::Bearer(&t.admin_key),
                    &body,
                    &[("idempotency-key", "fuzz")],
                )
                .await;
            assert!(
                r.status.as_u16() < 500,
                "{} {target} with {:?}: {} {}",
                route.function(),
                String::from_utf8_lossy(&body),
                r.status,
                r.body
            );
        }
    }
}

/// Values no field, id or cursor accepts: over every length limit (in characters and in UTF-8
/// bytes, past DynamoDB's key limits), with control characters, and a forged page cursor.
fn hostile_strings() -> Vec<String> {
    vec![
        "x".repeat(3000),
        "é".repeat(1500),
        "\u{10FFFF}".repeat(700),
        "a\u{0}b\u{7}c".to_owned(),
        hex("g1:grt_x"),
        hex(&format!("c1:{}", "z".repeat(2000))),
    ]
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// Query parameters any route reads.
const QUERY_NAMES: &[&str] = &[
    "limit",
    "offset",
    "customerId",
    "includeVoided",
    "at",
    "next_page",
    "cluster",
    "kinds",
    "show_expired",
    "sort",
    "order",
    "status",
    "scope",
    "plan_ids",
    "subscription_ids",
    "start_time",
    "end_time",
    "result",
];

/// Security review finding 5: forged or over-long cursors and ids reached DynamoDB and came back as
/// a retryable 503. Every path id, query parameter and top-level body field of every route's
/// sample gets each hostile value: the answer is a 4xx with `x-should-retry: false` from the
/// service's own validation (never storage refusing the value, code `invalid_request`), or a 2xx
/// where the value is ignored; path ids and cursors are always a 4xx.
#[tokio::test]
async fn over_long_and_malformed_values_in_every_position_are_a_clear_4xx() {
    let t = spawn_app_with_queues().await;
    let objects = SampleObjects::create(&t).await;
    let mut checked = 0;
    for route in Route::ALL {
        let sample = objects.event(&t, *route, Some(&t.admin_key));
        let path = sample.uri().path().to_owned();
        let query = sample.uri().query().unwrap_or_default().to_owned();
        let body: Option<Value> = serde_json::from_slice(sample.body().as_ref()).ok();
        let mut cases: Vec<(String, String, Vec<u8>, bool)> = Vec::new();
        for value in hostile_strings() {
            let encoded = form_encode(&value);
            // Path ids.
            let template: Vec<&str> = route.template().split('/').collect();
            let concrete: Vec<&str> = path.split('/').collect();
            for (i, segment) in template.iter().enumerate() {
                if segment.starts_with('{') {
                    let mut p = concrete.clone();
                    p[i] = &encoded;
                    let raw = sample.body().as_ref().to_vec();
                    cases.push((format!("path {segment}"), join(&p.join("/"), &query), raw, true));
                }
            }
            // Query parameters.
            for name in QUERY_NAMES {
                let q = format!("{name}={encoded}");
                let raw = sample.body().as_ref().to_vec();
                let reads_cursor = matches!(route, Route::MetronomeListGrants | Route::MetronomeListEntries);
                cases.push((
                    format!("query {name}"),
                    join(&path, &q),
                    raw,
                    *name == "next_page" && reads_cursor,
                ));
            }
            // Top-level body fields.
            if let Some(Value::Object(fields)) = &body {
                for name in fields.keys() {
                    let mut b = fields.clone();
                    b.insert(name.clone(), json!(value));
                    cases.push((
                        format!("body {name}"),
                        join(&path, &query),
                        Value::Object(b).to_string().into_bytes(),
                        false,
                    ));
                }
            }
        }
        for (what, target, raw, must_fail) in cases {
            let r = t
                .raw_with(
                    route.method(),
                    &target,
                    Key::Bearer(&t.admin_key),
                    &raw,
                    &[("idempotency-key", "overlong")],
                )
                .await;
            let status = r.status.as_u16();
            let context = format!("{} {what}: {} {}", route.function(), r.status, r.body);
            assert!(status < 500, "{context}");
            assert_ne!(
                r.body["code"], "invalid_request",
                "storage refused it: a missing check; {context}"
            );
            let html = r.header("content-type").is_some_and(|c| c.starts_with("text/html"));
            if r.status.is_client_error() && !html {
                assert_eq!(r.header("x-should-retry"), Some("false"), "{context}");
            }
            if must_fail {
                assert!(r.status.is_client_error(), "{context}");
            }
            checked += 1;
        }
    }
    assert!(checked > 1000, "{checked} cases");
}

fn join(path: &str, query: &str) -> String {
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    }
}
