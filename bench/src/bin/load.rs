//! Measurements on the local stack (DynamoDB Local; `make bench` starts it and exports its env).
//!
//! `load overhead --base-url URL --oha PATH --requests N --rounds R --out FILE`: latency of one
//! get-grant as (a) the bare DynamoDB GetItem it makes, (b) the handler in this process (auth from
//! the warm key cache, parsing, the GetItem, JSON), (c) through `cargo lambda watch` with `oha`
//! (loopback, one connection, N requests), and (d) watch's own floor: the catch-all function,
//! which touches nothing. Rounds interleave (a)-(d), so they see the same machine state.
//!
//! `load hot --writers 1/1,8/1,64/1,8/8,64/16 --events E --out FILE`: E usage events of 1 credit on
//! one entitlement holding E/2 credits, from each configuration of concurrent writers in turn (a
//! fresh entitlement each). `W/P` is W writers, P of them per execution environment: each
//! environment has its own DynamoDB client and process state (API key cache, busy hints, lines of
//! usage requests), as one Lambda execution environment does. `W/1` is classic Lambda (one request
//! per environment); `W/16` is Lambda Managed Instances with `PerExecutionEnvironmentMaxConcurrency`
//! 16; a bare `W` is `W/W` (one environment). Measured: throughput of each, transaction attempts,
//! each event's time to applied (request sent to its 201: the record exists then) at p50 and p99,
//! and the overspend check.
//!
//! `load volume --events 10,1000,10000,100000 --out FILE`: for each size, one entitlement with
//! one grant and that many usage events (queued, then applied by group commit, as a busy
//! entitlement's are), then the reads of issue 16 item 1 (balance now, balance at the middle of
//! its history, get-entitlement, Metronome listGrants and listEntries of its customer): median
//! of 11 calls each through the handlers in this process, and the DynamoDB items each read.
//!
//! All write JSON (microseconds); bench/report.py turns it into the report.
use grants_domain::model::Role;
use grants_domain::ports::{GrantStore, UsageQueue};
use grants_domain::{EntitlementId, GrantId, TenantId};
use grants_dynamo::round_trips::RoundTrips;
use grants_dynamo::schema::{entitlement_pk, grant_sk, PK, SK};
use grants_dynamo::DynamoStore;
use grants_http::Route;
use grants_http::{dispatch, ApiRequest};
use grants_lambda::App;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::{json, Value};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_owned())
}

struct Bench {
    app: Arc<App>,
    key: String,
    tenant: TenantId,
    client: aws_sdk_dynamodb::Client,
    table: String,
    round_trips: RoundTrips,
}

impl Bench {
    async fn new() -> Result<Self, Error> {
        let round_trips = RoundTrips::default();
        let client = round_trips.client(&grants_lambda::config::sdk_config().await);
        let table = grants_lambda::config::table_name();
        let store = DynamoStore::new(client.clone(), table.clone());
        let tenant = TenantId::parse(&format!("bench-{}", ulid_suffix()))?;
        let key = grants_dev_tools::admin::create_key(&store, &tenant, Role::Admin).await?;
        let app = Arc::new(App::with_system_clock(Arc::new(store)));
        Ok(Self {
            app,
            key,
            tenant,
            client,
            table,
            round_trips,
        })
    }

    /// A new execution environment: the service with its own DynamoDB client (counted with the
    /// others) and its own process state.
    async fn environment(&self) -> Arc<App> {
        let client = self.round_trips.client(&grants_lambda::config::sdk_config().await);
        Arc::new(App::with_system_clock(Arc::new(DynamoStore::new(
            client,
            self.table.clone(),
        ))))
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<(StatusCode, Value), Error> {
        self.call_on(&self.app, method, path, body).await
    }

    /// A request served by `app` (one execution environment).
    async fn call_on(
        &self,
        app: &App,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(StatusCode, Value), Error> {
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (
                p,
                q.split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
            ),
            None => (path, Vec::new()),
        };
        let (route, params) = Route::resolve(&method, path).ok_or("no such route")?;
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_str(&format!("Bearer {}", self.key))?);
        let req = ApiRequest {
            method,
            path: path.to_owned(),
            path_params: params,
            query,
            headers,
            body: body.map(|b| b.to_string().into()).unwrap_or_default(),
            ..ApiRequest::default()
        };
        let r = dispatch(app, route, req).await;
        let value = if r.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&r.body)?
        };
        Ok((r.status, value))
    }

    async fn created(&self, path: &str, body: Value) -> Result<String, Error> {
        let (status, v) = self.call(Method::POST, path, Some(body)).await?;
        if status != StatusCode::CREATED {
            return Err(format!("{path}: {status} {v}").into());
        }
        Ok(v["id"].as_str().ok_or("no id")?.to_owned())
    }

    async fn entitlement_with_grant(&self, credits: u64) -> Result<(String, String), Error> {
        let ent = self
            .created(
                "/v1/entitlements",
                json!({"customerId": format!("cus_{}", ulid_suffix()), "featureKey": "bench"}),
            )
            .await?;
        let grant = self
            .created(
                &format!("/v1/entitlements/{ent}/grants"),
                json!({"amount": credits, "idempotencyKey": "bench"}),
            )
            .await?;
        Ok((ent, grant))
    }
}

fn ulid_suffix() -> String {
    grants_domain::GrantId::generate()
        .as_str()
        .get(4..)
        .unwrap_or_default()
        .to_ascii_lowercase()
}

fn median(mut v: Vec<u128>) -> u128 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// oha's median latency in microseconds (it reports seconds).
fn oha_median(oha: &str, url: &str, key: &str, requests: usize) -> Result<Value, Error> {
    let out = Command::new(oha)
        .args([
            "-n",
            &requests.to_string(),
            "-c",
            "1",
            "--no-tui",
            "--output-format",
            "json",
            "-H",
            &format!("authorization: Bearer {key}"),
            url,
        ])
        .output()?;
    if !out.status.success() {
        return Err(format!("oha failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    let report: Value = serde_json::from_slice(&out.stdout)?;
    let codes = report["statusCodeDistribution"].clone();
    Ok(json!({"p50_seconds": report["latencyPercentiles"]["p50"], "status_codes": codes}))
}

async fn overhead(args: &[String]) -> Result<Value, Error> {
    let base = arg(args, "--base-url", "http://127.0.0.1:9000");
    let oha = arg(args, "--oha", ".tools/bin/oha");
    let n: usize = arg(args, "--requests", "300").parse()?;
    let rounds: usize = arg(args, "--rounds", "5").parse()?;
    let b = Bench::new().await?;
    let (ent, grant) = b.entitlement_with_grant(100).await?;
    let path = format!("/v1/entitlements/{ent}/grants/{grant}");
    let mut out = Vec::new();
    for _ in 0..rounds {
        let mut bare = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            b.client
                .get_item()
                .table_name(&b.table)
                .key(
                    PK,
                    aws_sdk_dynamodb::types::AttributeValue::S(entitlement_pk(b.tenant.as_str(), &ent)),
                )
                .key(SK, aws_sdk_dynamodb::types::AttributeValue::S(grant_sk(&grant)))
                .consistent_read(true)
                .send()
                .await?;
            bare.push(t.elapsed().as_micros());
        }
        let mut handler = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            let (status, _) = b.call(Method::GET, &path, None).await?;
            handler.push(t.elapsed().as_micros());
            if status != StatusCode::OK {
                return Err(format!("get-grant answered {status}").into());
            }
        }
        let watch = oha_median(&oha, &format!("{base}{path}"), &b.key, n)?;
        let floor = oha_median(&oha, &format!("{base}/v1/bench-no-such-route"), &b.key, n)?;
        out.push(json!({"bare_getitem_us": median(bare), "handler_in_process_us": median(handler), "through_watch": watch, "watch_catch_all": floor}));
    }
    Ok(json!({"requests_per_round": n, "rounds": out}))
}

/// What one run of concurrent writers measured.
struct Run {
    elapsed_us: u128,
    transactions: usize,
    client_retries: usize,
    /// Each event's time to applied, µs, sorted.
    applied_us: Vec<u128>,
    /// DynamoDB requests sent, by operation.
    requests: std::collections::BTreeMap<String, usize>,
}

/// One run of `writers` concurrent writers, `per_environment` of them in each execution
/// environment. A writer that waited its whole server-side budget gets a clean 503 and, like any
/// client, sends the event again.
async fn writers(
    b: &Arc<Bench>,
    ent: &str,
    (writers, per_environment): (usize, usize),
    events: usize,
) -> Result<Run, Error> {
    let mut environments = Vec::new();
    for _ in 0..writers.div_ceil(per_environment) {
        environments.push(b.environment().await);
    }
    b.round_trips.take();
    let t = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let b = Arc::clone(b);
            let app = Arc::clone(&environments[w / per_environment]);
            let ent = ent.to_owned();
            tokio::spawn(async move {
                let mut retried = 0usize;
                let mut applied = Vec::new();
                for i in (w..events).step_by(writers) {
                    let body = json!({"eventId": format!("e{i}"), "amount": 1});
                    let sent = Instant::now();
                    loop {
                        let (status, v) = b
                            .call_on(
                                &app,
                                Method::POST,
                                &format!("/v1/entitlements/{ent}/usage"),
                                Some(body.clone()),
                            )
                            .await?;
                        match status {
                            StatusCode::CREATED => break,
                            StatusCode::SERVICE_UNAVAILABLE if retried < 100 * events => retried += 1,
                            _ => return Err::<(usize, Vec<u128>), Error>(format!("usage {i}: {status} {v}").into()),
                        }
                    }
                    applied.push(sent.elapsed().as_micros());
                }
                Ok((retried, applied))
            })
        })
        .collect();
    let mut retried = 0;
    let mut applied_us = Vec::with_capacity(events);
    for task in tasks {
        let (r, a) = task.await??;
        retried += r;
        applied_us.extend(a);
    }
    applied_us.sort_unstable();
    let elapsed = t.elapsed().as_micros();
    let calls = b.round_trips.take();
    let transactions = calls.iter().filter(|op| *op == "TransactWriteItems").count();
    let mut requests = std::collections::BTreeMap::new();
    for op in calls {
        *requests.entry(op).or_insert(0usize) += 1;
    }
    Ok(Run {
        elapsed_us: elapsed,
        transactions,
        client_retries: retried,
        applied_us,
        requests,
    })
}

/// The `p`th percentile (0-100) of sorted values (nearest rank).
fn percentile(sorted: &[u128], p: usize) -> u128 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

async fn hot(args: &[String]) -> Result<Value, Error> {
    let counts: Vec<(usize, usize)> = arg(args, "--writers", "1/1,8/1,64/1,8/8,64/16")
        .split(',')
        .map(|c| -> Result<(usize, usize), Error> {
            let (w, p) = c.split_once('/').unwrap_or((c, c));
            let (w, p): (usize, usize) = (w.parse()?, p.parse()?);
            if w == 0 || p == 0 || p > w {
                return Err(format!("--writers {c}: W/P needs 1 <= P <= W").into());
            }
            Ok((w, p))
        })
        .collect::<Result<_, _>>()?;
    let events: usize = arg(args, "--events", "640").parse()?;
    // Rounds of every writer count in turn (the first one a warm-up, not reported), so that each
    // count is measured in the same conditions as the others and the medians can be compared.
    let rounds: usize = arg(args, "--rounds", "1").parse()?;
    let b = Arc::new(Bench::new().await?);
    let credits = u64::try_from(events / 2)?;
    let mut out = Vec::new();
    for (round, w) in (0..=rounds).flat_map(|r| counts.iter().map(move |w| (r, *w))) {
        let (ent, grant) = b.entitlement_with_grant(credits).await?;
        let run = writers(&b, &ent, w, events).await?;
        let (_, e) = b.call(Method::GET, &format!("/v1/entitlements/{ent}"), None).await?;
        let stored = b
            .app
            .store
            .get_grant(&b.tenant, &EntitlementId::parse(&ent)?, &GrantId::parse(&grant)?)
            .await?
            .ok_or("the grant is gone")?;
        if round == 0 {
            continue;
        }
        out.push(json!({
            "round": round, "requests": run.requests,
            "writers": w.0, "per_environment": w.1, "environments": w.0.div_ceil(w.1), "events": events, "granted": credits, "elapsed_us": run.elapsed_us,
            "transaction_attempts": run.transactions, "client_retries": run.client_retries,
            "applied_p50_us": percentile(&run.applied_us, 50), "applied_p99_us": percentile(&run.applied_us, 99),
            "usage_in_period": e["usageInPeriod"], "overage": e["overage"], "balance": e["balance"],
            "grant_remaining": stored.remaining.to_string(), "grant_reserved": stored.reserved.to_string(),
        }));
    }
    Ok(json!({"runs": out}))
}

/// Queues `events` usage events of 1 credit on `ent` (16 at a time) and applies them by group
/// commit; returns the instant by which the first half had been applied.
async fn seed(b: &Arc<Bench>, ent: &EntitlementId, events: usize) -> Result<grants_domain::Timestamp, Error> {
    use futures::stream::{self, StreamExt, TryStreamExt};
    use grants_domain::group_commit;
    use grants_domain::Clock;
    let clock = grants_domain::SystemClock;
    let store = Arc::clone(&b.app.store);
    let mut middle = clock.now();
    // At least 4 chunks, so that the middle of history is between two.
    let chunk = (events / 4).clamp(1, 2000);
    for start in (0..events).step_by(chunk) {
        let end = (start + chunk).min(events);
        stream::iter(start..end)
            .map(|i| {
                let store = Arc::clone(&store);
                let now = clock.now();
                let request = grants_domain::usage::UsageRecord {
                    rollover: false,
                    tenant: b.tenant.clone(),
                    entitlement_id: ent.clone(),
                    event_id: format!("v{i}"),
                    amount: rust_decimal::Decimal::ONE,
                    occurred_at: now,
                    recorded_at: now,
                    status: grants_domain::ledger::UsageStatus::Committed,
                    deductions: Vec::new(),
                    overage: rust_decimal::Decimal::ZERO,
                    settled_at: None,
                    fingerprint: [("amount", "1"), ("pending", "false")]
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect(),
                };
                async move { store.enqueue_usage(&request).await }
            })
            .buffer_unordered(16)
            .try_collect::<Vec<()>>()
            .await?;
        // A holder hands the lease on after a while (group_commit::HOLD_SECONDS): take it again
        // until the chunk is applied.
        while !store.queued_usage(&b.tenant, ent, 1).await?.is_empty() {
            let owner = group_commit::lease_owner();
            let now = clock.now();
            let until = now.plus_seconds(group_commit::LEASE_SECONDS).ok_or("time")?;
            if !store.take_lease(&b.tenant, ent, &owner, until, now).await? {
                return Err("the lease is held".into());
            }
            group_commit::apply_queue(store.as_ref(), &clock, &b.tenant, ent, &owner).await?;
        }
        if start < events / 2 {
            middle = clock.now();
        }
    }
    Ok(middle)
}

/// Median µs and items read of 11 calls (after one warm-up call).
async fn measure(b: &Bench, method: Method, path: &str, body: Option<Value>) -> Result<Value, Error> {
    let (status, v) = b.call(method.clone(), path, body.clone()).await?;
    if status != StatusCode::OK {
        return Err(format!("{path}: {status} {v}").into());
    }
    let mut times = Vec::new();
    let mut items = Vec::new();
    for _ in 0..11 {
        b.round_trips.take();
        b.round_trips.take_items_read();
        let t = Instant::now();
        b.call(method.clone(), path, body.clone()).await?;
        times.push(t.elapsed().as_micros());
        items.push(u128::from(b.round_trips.take_items_read()));
    }
    Ok(json!({"median_us": median(times), "items_read": median(items), "round_trips": b.round_trips.take().len()}))
}

async fn volume(args: &[String]) -> Result<Value, Error> {
    let sizes: Vec<usize> = arg(args, "--events", "10,1000,10000,100000")
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let b = Arc::new(Bench::new().await?);
    let mut out = Vec::new();
    for n in sizes {
        let customer = format!("cus_{}", ulid_suffix());
        let ent = b
            .created(
                "/v1/entitlements",
                json!({"customerId": customer, "featureKey": "bench"}),
            )
            .await?;
        b.created(
            &format!("/v1/entitlements/{ent}/grants"),
            json!({"amount": 2 * n, "idempotencyKey": "bench"}),
        )
        .await?;
        let id = EntitlementId::parse(&ent)?;
        let t = Instant::now();
        let middle = seed(&b, &id, n).await?;
        let seeded_us = t.elapsed().as_micros();
        let (_, e) = b.call(Method::GET, &format!("/v1/entitlements/{ent}"), None).await?;
        if e["usageInPeriod"] != json!(n) {
            return Err(format!("{n} events seeded, usage {}", e["usageInPeriod"]).into());
        }
        let filter = json!({"customer_ids": [customer]});
        out.push(json!({
            "events": n,
            "seeded_us": seeded_us,
            "balance_now": measure(&b, Method::GET, &format!("/v1/entitlements/{ent}/balance"), None).await?,
            "balance_at_middle": measure(&b, Method::GET, &format!("/v1/entitlements/{ent}/balance?at={}", middle.to_rfc3339()), None).await?,
            "get_entitlement": measure(&b, Method::GET, &format!("/v1/entitlements/{ent}"), None).await?,
            "list_grants": measure(&b, Method::POST, "/v1/credits/listGrants", Some(filter.clone())).await?,
            "list_entries": measure(&b, Method::POST, "/v1/credits/listEntries", Some(filter)).await?,
        }));
        eprintln!("volume {n}: {}", out.last().map(Value::to_string).unwrap_or_default());
    }
    Ok(json!({"sizes": out}))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = arg(&args, "--out", "");
    let result = match args.first().map(String::as_str) {
        Some("overhead") => overhead(&args).await?,
        Some("hot") => hot(&args).await?,
        Some("volume") => volume(&args).await?,
        _ => return Err("usage: load overhead|hot|volume [options] --out FILE".into()),
    };
    if out.is_empty() {
        return Err("--out FILE is required".into());
    }
    std::fs::write(out, serde_json::to_string_pretty(&result)?)?;
    Ok(())
}
