//! Each function's `main` names its own route's endpoint and exactly the AWS clients beyond DynamoDB
//! that template.yaml lets it call: `.secrets()` with `secretsmanager:GetSecretValue`, a queue
//! (`.payment_events()`, `.webhook_deliveries()`, the fulfilment function's invoice events, the
//! webhook dispatcher's deliveries) with `sqs:SendMessage`; and
//! `.without_table()` (or no app at all: the catch-all) exactly when it has no `dynamodb:*` action.
use crate::helpers::template;
use grants_http::Route;
use std::path::Path;

fn main_of(binary: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("functions/src/bin/{binary}.rs"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn actions(function: &serde_norway::Value) -> Vec<String> {
    let mut out = Vec::new();
    for policy in function["Properties"]["Policies"].as_sequence().into_iter().flatten() {
        for statement in policy["Statement"].as_sequence().into_iter().flatten() {
            for action in statement["Action"].as_sequence().into_iter().flatten() {
                out.push(action.as_str().unwrap_or_default().to_owned());
            }
        }
    }
    out
}

#[test]
fn every_main_wires_what_its_iam_policy_allows_and_serves_its_own_route() {
    let doc: serde_norway::Value = serde_norway::from_str(&template()).unwrap();
    let mut checked = 0;
    for (name, res) in doc["Resources"].as_mapping().unwrap() {
        if res["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let binary = res["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap();
        let main = main_of(binary);
        let actions = actions(res);
        let reads_secrets = actions.iter().any(|a| a == "secretsmanager:GetSecretValue");
        let sends = actions.iter().any(|a| a == "sqs:SendMessage");
        let calls_table = actions.iter().any(|a| a.starts_with("dynamodb:"));
        assert_eq!(
            !main.contains(".without_table()") && !main.contains("serve_not_found()"),
            calls_table,
            "{name:?}: DynamoDB client vs IAM"
        );
        // `.stripe()` (and the expiry sweep, which cancels PaymentIntents) read the tenants'
        // Stripe keys.
        assert_eq!(
            main.contains(".secrets()") || main.contains(".stripe()") || main.contains("serve_expiry()"),
            reads_secrets,
            "{name:?}: Secrets Manager wiring vs IAM"
        );
        let queues = main.contains(".payment_events()")
            || main.contains("serve_payment_events()")
            || main.contains(".webhook_deliveries()")
            || main.contains("webhooks::serve_dispatch()");
        assert_eq!(queues, sends, "{name:?}: SQS wiring vs IAM");
        if let Some(route) = Route::by_function(binary) {
            assert!(
                main.contains(&format!("grants_http::endpoint::{route:?})")),
                "{binary}.rs must serve grants_http::endpoint::{route:?}"
            );
        }
        checked += 1;
    }
    assert_eq!(
        checked,
        Route::ALL.len() + 6,
        "every route's function plus the six others"
    );
}

/// DynamoDB Local does not enforce IAM, so what the ledger's writes need is checked here: a
/// function that records usage can run the entitlement's usage queue (group commit: `DeleteItem`
/// to withdraw a request and in the transaction that finishes a multi-step application,
/// `BatchGetItem` to look for records, `BatchWriteItem` to dequeue, `ConditionCheckItem` in a
/// multi-step application's first step), and one that settles pending usage can delete its hold.
#[test]
fn the_ledgers_writers_may_make_every_request_their_writes_need() {
    let doc: serde_norway::Value = serde_norway::from_str(&template()).unwrap();
    // Settling: the record, the entitlement, the grants, the log, and the hold deleted.
    const SETTLES: &[&str] = &["Query", "PutItem", "UpdateItem", "DeleteItem", "GetItem"];
    // Recording: as settling, the usage queue, and the first step of a multi-step application.
    const RECORDS: &[&str] = &[
        "Query",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "GetItem",
        "BatchGetItem",
        "BatchWriteItem",
        "ConditionCheckItem",
    ];
    let needs = [
        ("record-usage", RECORDS),
        ("ingest-event", RECORDS),
        ("commit-usage", SETTLES),
        ("release-usage", SETTLES),
    ];
    for (binary, actions_needed) in needs {
        let function = doc["Resources"]
            .as_mapping()
            .unwrap()
            .values()
            .find(|r| r["Metadata"]["BuildProperties"]["Binary"].as_str() == Some(binary))
            .unwrap_or_else(|| panic!("{binary} is in template.yaml"));
        let allowed = actions(function);
        for action in actions_needed {
            assert!(
                allowed.iter().any(|a| a == &format!("dynamodb:{action}")),
                "{binary} needs dynamodb:{action}"
            );
        }
    }
}
