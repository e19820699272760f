//! `grants-admin`: operator commands against the configured table (the local stack when run from
//! the repo root while `make dev` is up). Prints results on stdout, nothing else.
#![allow(clippy::print_stdout, clippy::print_stderr)]
use shared::{admin, local};
use shared::domain::model::Role;
use shared::domain::TenantId;
use std::collections::HashMap;
use std::process::ExitCode;

const USAGE: &str = "usage: grants-admin <command> [--flag value ...]
  setup [--template template.yaml] [--visibility-timeout S]
                                                  create the table and the SQS queues from
                                                  template.yaml (idempotent)
  create-key --tenant T --role admin|member       print a new API key
  webhook-secret --tenant T                       print the tenant's payment-webhook secret
  create-entitlement --tenant T --customer C --feature-key K
      [--subscription S] [--plan P] [--period-start RFC3339] [--period-end RFC3339]
                                                  print the new entitlement as JSON
  demo [--tenant demo]                            setup + admin key + entitlement; prints
                                                  TENANT_ID=, API_KEY=, ENTITLEMENT_ID=,
                                                  WEBHOOK_SECRET=";

fn flags(args: &[String]) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let name = flag.strip_prefix("--").ok_or_else(|| format!("unexpected argument {flag}"))?;
        let value = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
        out.insert(name.to_owned(), value.clone());
    }
    Ok(out)
}

fn need<'a>(f: &'a HashMap<String, String>, name: &str) -> Result<&'a str, String> {
    f.get(name).map(String::as_str).ok_or_else(|| format!("--{name} is required"))
}

async fn run(args: Vec<String>) -> Result<(), String> {
    let (cmd, rest) = args.split_first().ok_or_else(|| USAGE.to_owned())?;
    let f = flags(rest)?;
    let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
    admin::load_env_file(&cwd.join(admin::LOCAL_STACK_ENV));
    let store = shared::config::store_from_env().await;
    let tenant = |f: &HashMap<String, String>| TenantId::parse(need(f, "tenant")?).map_err(|e| e.to_string());
    match cmd.as_str() {
        "setup" => {
            let path = f.get("template").map(String::as_str).unwrap_or("template.yaml");
            let template = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
            admin::create_table_from_template(store.client(), &template, store.table())
                .await
                .map_err(|e| e.to_string())?;
            let visibility = f.get("visibility-timeout").map(|v| v.parse::<u64>()).transpose().map_err(|e| e.to_string())?;
            let sqs = aws_sdk_sqs::Client::new(&shared::config::sdk_config().await);
            let urls = local::create_queues_from_template(&sqs, &template, &local::queue_names_from_env(), visibility)
                .await
                .map_err(|e| e.to_string())?;
            println!("{}", store.table());
            for url in urls.values() {
                println!("{url}");
            }
        }
        "webhook-secret" => {
            let settings = admin::tenant_settings(&store, &tenant(&f)?).await.map_err(|e| e.to_string())?;
            println!("{}", settings.webhook_secret);
        }
        "create-key" => {
            let role = Role::parse(need(&f, "role")?).ok_or("--role must be admin or member")?;
            println!("{}", admin::create_key(&store, &tenant(&f)?, role).await.map_err(|e| e.to_string())?);
        }
        "create-entitlement" => {
            let mut body = serde_json::json!({
                "customerId": need(&f, "customer")?,
                "featureKey": need(&f, "feature-key")?,
            });
            for (flag, key) in [
                ("subscription", "subscriptionId"),
                ("plan", "planId"),
                ("period-start", "currentPeriodStart"),
                ("period-end", "currentPeriodEnd"),
            ] {
                if let Some(v) = f.get(flag) {
                    body[key] = serde_json::json!(v);
                }
            }
            let e = admin::create_entitlement(&store, &tenant(&f)?, body).await.map_err(|e| e.to_string())?;
            println!("{e:#}");
        }
        "demo" => {
            let template = std::fs::read_to_string("template.yaml").map_err(|e| format!("template.yaml: {e}"))?;
            admin::create_table_from_template(store.client(), &template, store.table())
                .await
                .map_err(|e| e.to_string())?;
            let t = TenantId::parse(f.get("tenant").map(String::as_str).unwrap_or("demo")).map_err(|e| e.to_string())?;
            let key = admin::create_key(&store, &t, Role::Admin).await.map_err(|e| e.to_string())?;
            let body = serde_json::json!({"customerId": "cus_demo", "featureKey": "api_calls"});
            let e = admin::create_entitlement(&store, &t, body).await.map_err(|e| e.to_string())?;
            println!("TENANT_ID={t}");
            println!("API_KEY={key}");
            println!("ENTITLEMENT_ID={}", e["id"].as_str().unwrap_or_default());
            let settings = admin::tenant_settings(&store, &t).await.map_err(|e| e.to_string())?;
            println!("WEBHOOK_SECRET={}", settings.webhook_secret);
        }
        _ => return Err(USAGE.to_owned()),
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("grants-admin: {e}");
            ExitCode::from(2)
        }
    }
}
