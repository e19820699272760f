//! template.yaml, the local router (Cargo.toml) and the code's route table must name the same
//! endpoints; every function has a binary and an events/ sample.
use crate::helpers::template;
use grants_http::Route;
use std::collections::BTreeSet;
use std::path::Path;

type Endpoint = (String, String, String); // (method, path, function)

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn from_code() -> BTreeSet<Endpoint> {
    Route::ALL
        .iter()
        .map(|r| (r.method().to_string(), r.template().to_owned(), r.function().to_owned()))
        .collect()
}

fn from_template() -> BTreeSet<Endpoint> {
    let doc: serde_norway::Value = serde_norway::from_str(&template()).unwrap();
    let mut out = BTreeSet::new();
    for (name, res) in doc["Resources"].as_mapping().unwrap() {
        if res["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let binary = res["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_else(|| panic!("{name:?} has no Binary"));
        let Some(events) = res["Properties"]["Events"].as_mapping() else {
            continue;
        };
        for ev in events.values().filter(|e| e["Type"].as_str() == Some("HttpApi")) {
            let p = &ev["Properties"];
            out.insert((
                p["Method"].as_str().unwrap().to_uppercase(),
                p["Path"].as_str().unwrap().to_owned(),
                binary.to_owned(),
            ));
        }
    }
    out
}

fn from_local_router() -> BTreeSet<Endpoint> {
    let manifest: toml::Table = std::fs::read_to_string(root().join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let router = manifest["workspace"]["metadata"]["lambda"]["watch"]["router"]
        .as_table()
        .unwrap();
    let mut out = BTreeSet::new();
    for (path, routes) in router {
        let Some(routes) = routes.as_array() else {
            out.insert(("ANY".to_owned(), path.clone(), routes.as_str().unwrap().to_owned()));
            continue;
        };
        for r in routes {
            out.insert((
                r["method"].as_str().unwrap().to_owned(),
                path.clone(),
                r["function"].as_str().unwrap().to_owned(),
            ));
        }
    }
    out
}

/// The catch-all, declared in each place in that place's syntax.
fn catch_all(path: &str) -> Endpoint {
    ("ANY".to_owned(), path.to_owned(), "not-found".to_owned())
}

#[test]
fn template_router_and_code_agree() {
    let code = from_code();
    let (mut template, mut router) = (from_template(), from_local_router());
    assert!(
        template.remove(&catch_all("$default")),
        "template.yaml lacks the $default route"
    );
    assert!(
        router.remove(&catch_all("/{*path}")),
        "the local router lacks /{{*path}}"
    );
    assert_eq!(template, code, "template.yaml HttpApi events vs grants_http::Route");
    assert_eq!(
        router, code,
        "Cargo.toml [workspace.metadata.lambda.watch.router] vs grants_http::Route"
    );
}

/// openapi.yaml (what schemathesis tests) documents exactly the routes there are.
#[test]
fn the_openapi_document_has_every_route_and_no_other() {
    let doc: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(root().join("openapi.yaml")).unwrap()).unwrap();
    assert_eq!(doc["openapi"].as_str(), Some("3.1.0"));
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_mapping().unwrap() {
        for method in item.as_mapping().unwrap().keys() {
            documented.insert((
                method.as_str().unwrap().to_uppercase(),
                path.as_str().unwrap().to_owned(),
            ));
        }
    }
    let code: BTreeSet<(String, String)> = from_code().into_iter().map(|(m, p, _)| (m, p)).collect();
    assert_eq!(documented, code, "openapi.yaml vs grants_http::Route");
}

/// Every function of template.yaml (HTTP or not) by its Binary name.
fn template_functions() -> BTreeSet<String> {
    let doc: serde_norway::Value = serde_norway::from_str(&template()).unwrap();
    doc["Resources"]
        .as_mapping()
        .unwrap()
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|r| r["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_non_http_functions_are_the_queue_consumers_the_stream_dispatcher_and_the_schedules() {
    let http: BTreeSet<String> = Route::ALL
        .iter()
        .map(|r| r.function().to_owned())
        .chain(["not-found".to_owned()])
        .collect();
    let others: Vec<String> = template_functions().difference(&http).cloned().collect();
    assert_eq!(
        others,
        [
            "deliver-webhooks",
            "dispatch-webhooks",
            "expire-payment-sessions",
            "fulfil-payments",
            "run-credit-schedules"
        ]
    );
    let sqs = grants_dev_tools::local::sqs_mappings(&template()).unwrap();
    let consumers: Vec<(&str, &str, bool)> = sqs
        .iter()
        .map(|m| (m.function.as_str(), m.queue.as_str(), m.report_batch_item_failures))
        .collect();
    assert_eq!(
        consumers,
        [
            ("deliver-webhooks", "WebhookDeliveriesQueue", true),
            ("fulfil-payments", "PaymentEventsQueue", true)
        ]
    );
    let streams = grants_dev_tools::local::stream_mappings(&template()).unwrap();
    assert_eq!(streams.len(), 1);
    assert_eq!(streams[0].function, "dispatch-webhooks");
    let pattern = streams[0].pattern.as_ref().unwrap();
    let insert = |kind: &str, event: &str| serde_json::json!({"eventName": event, "dynamodb": {"NewImage": {"type": {"S": kind}}}});
    assert!(grants_dev_tools::local::matches_pattern(
        pattern,
        &insert("webhook_message", "INSERT")
    ));
    assert!(!grants_dev_tools::local::matches_pattern(
        pattern,
        &insert("grant", "INSERT")
    ));
    assert!(!grants_dev_tools::local::matches_pattern(
        pattern,
        &insert("webhook_message", "MODIFY")
    ));
    let schedules = grants_dev_tools::local::schedule_mappings(&template()).unwrap();
    let names: Vec<&str> = schedules.iter().map(|s| s.function.as_str()).collect();
    assert_eq!(names, ["expire-payment-sessions", "run-credit-schedules"]);
}

#[test]
fn the_payment_queue_redrives_to_a_dlq_and_outlives_six_function_timeouts() {
    let doc: serde_norway::Value = serde_norway::from_str(&template()).unwrap();
    let r = &doc["Resources"];
    let queue = &r["PaymentEventsQueue"]["Properties"];
    let timeout = r["FulfilPaymentsFunction"]["Properties"]["Timeout"].as_u64().unwrap();
    assert!(queue["VisibilityTimeout"].as_u64().unwrap() >= 6 * timeout);
    assert!(queue["RedrivePolicy"]["maxReceiveCount"].as_u64().unwrap() >= 1);
    assert!(r["PaymentEventsDeadLetterQueue"].is_mapping());
}

#[test]
fn every_function_has_a_binary_and_a_sample_event() {
    for f in template_functions().iter().map(String::as_str) {
        let bin = root().join(format!("functions/src/bin/{f}.rs"));
        assert!(bin.exists(), "{} missing", bin.display());
        let event = root().join(format!("events/{f}.json"));
        assert!(event.exists(), "{} missing", event.display());
    }
}
