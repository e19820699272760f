//! `grants-admin`: operator commands against the configured table (the local stack when run from
//! the repo root while `make dev` is up). Prints results on stdout, nothing else.
#![allow(clippy::print_stdout, clippy::print_stderr)]
use grants_dev_tools::{admin, local};
use grants_domain::auth;
use grants_domain::model::Role;
use grants_domain::{SystemClock, TenantId};
use grants_dynamo::DynamoStore;
use std::collections::HashMap;
use std::process::ExitCode;

const USAGE: &str = "usage: grants-admin <command> [--flag value ...]
  setup [--template template.yaml] [--visibility-timeout S]
                                                  create the table and the SQS queues from
                                                  template.yaml (idempotent)
  create-key --tenant T --role admin|member       print a new API key
  list-keys --tenant T                            the tenant's keys: id, prefix, role, created,
                                                  last used (to the hour), expires
  revoke-key --tenant T --key-id K                the key stops working (within 5 s everywhere)
  rotate-key --tenant T --key-id K [--overlap-seconds 3600]
                                                  print a new key with the same role; the old one
                                                  works until the overlap ends
  webhook-secret --tenant T                       print the tenant's payment-webhook secret
                                                  (created in the secret store if it has none)
  rotate-webhook-secret --tenant T [--overlap-seconds 86400]
                                                  print a new webhook secret; the old one still
                                                  verifies until the overlap ends
  set-stripe-keys --tenant T [--overlap-seconds 86400]
                                                  store the tenant's Stripe keys, read from the
                                                  variables STRIPE_SECRET_KEY, STRIPE_PUBLISHABLE_KEY
                                                  and STRIPE_WEBHOOK_SECRET (never from arguments);
                                                  a changed webhook secret leaves the old one
                                                  verifying until the overlap ends
  tenant-settings --tenant T [--members-may-purchase true|false]
      [--min-price-per-credit DECIMAL|none] [--allowed-redirect-origins https://a,https://b|none]
                                                  change and print the tenant's settings
  create-entitlement --tenant T --customer C --feature-key K
      [--subscription S] [--plan P] [--period-start RFC3339] [--period-end RFC3339]
                                                  print the new entitlement as JSON
  demo [--tenant demo]                            setup + admin key + entitlement; prints
                                                  TENANT_ID=, API_KEY=, ENTITLEMENT_ID=,
                                                  WEBHOOK_SECRET=
  demo --tenant T --stripe true                   the same for a tenant that sells through Stripe
                                                  (test keys made up for the local Stripe server);
                                                  prints STRIPE_TENANT_ID=, STRIPE_API_KEY=,
                                                  STRIPE_ENTITLEMENT_ID=, STRIPE_WEBHOOK_SECRET=";

fn flags(args: &[String]) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let name = flag
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected argument {flag}"))?;
        let value = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
        out.insert(name.to_owned(), value.clone());
    }
    Ok(out)
}

fn seconds(f: &HashMap<String, String>, name: &str, default: i64) -> Result<i64, String> {
    f.get(name)
        .map(|v| {
            v.parse::<i64>()
                .ok()
                .filter(|s| (0..=366 * 86_400).contains(s))
                .ok_or(format!("--{name} takes 0 to 31622400 seconds"))
        })
        .transpose()
        .map(|v| v.unwrap_or(default))
}

fn need<'a>(f: &'a HashMap<String, String>, name: &str) -> Result<&'a str, String> {
    f.get(name)
        .map(String::as_str)
        .ok_or_else(|| format!("--{name} is required"))
}

type Flags = HashMap<String, String>;

fn tenant(f: &Flags) -> Result<TenantId, String> {
    TenantId::parse(need(f, "tenant")?).map_err(|e| e.to_string())
}

async fn run(args: Vec<String>) -> Result<(), String> {
    let (cmd, rest) = args.split_first().ok_or_else(|| USAGE.to_owned())?;
    let f = flags(rest)?;
    let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
    admin::load_env_file(&cwd.join(admin::LOCAL_STACK_ENV));
    let store = grants_lambda::config::store_from_env().await;
    match cmd.as_str() {
        "setup" => setup(&store, &f).await?,
        "webhook-secret" => {
            let secrets = grants_lambda::config::secrets(&grants_lambda::config::sdk_config().await);
            let current = secrets.ensure_webhook(&tenant(&f)?).await.map_err(|e| e.to_string())?;
            println!("{}", current.current);
        }
        "rotate-webhook-secret" => {
            let overlap = seconds(&f, "overlap-seconds", grants_domain::secrets::DEFAULT_OVERLAP_SECONDS)?;
            let secrets = grants_lambda::config::secrets(&grants_lambda::config::sdk_config().await);
            let rotated = secrets
                .rotate_webhook(&tenant(&f)?, &SystemClock, overlap)
                .await
                .map_err(|e| e.to_string())?;
            println!("{}", rotated.current);
        }
        "list-keys" => list_keys(&store, &f).await?,
        "revoke-key" => {
            auth::revoke_key(&store, &SystemClock, &tenant(&f)?, need(&f, "key-id")?)
                .await
                .map_err(|e| e.to_string())?;
            println!("revoked {}", need(&f, "key-id")?);
        }
        "rotate-key" => {
            let overlap = seconds(&f, "overlap-seconds", 3600)?;
            let (key, _) = auth::rotate_key(&store, &SystemClock, &tenant(&f)?, need(&f, "key-id")?, overlap)
                .await
                .map_err(|e| e.to_string())?;
            println!("{key}");
        }
        "set-stripe-keys" => {
            let overlap = seconds(&f, "overlap-seconds", grants_domain::secrets::DEFAULT_OVERLAP_SECONDS)?;
            let var = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
            let keys = grants_domain::secrets::StripeKeys {
                secret_key: var("STRIPE_SECRET_KEY")?,
                publishable_key: var("STRIPE_PUBLISHABLE_KEY")?,
                webhook_secret: var("STRIPE_WEBHOOK_SECRET")?,
                previous_webhook_secret: None,
                previous_webhook_secret_expires_at: None,
            };
            keys.check()?;
            let t = tenant(&f)?;
            let secrets = grants_lambda::config::secrets(&grants_lambda::config::sdk_config().await);
            let stored = secrets
                .set_stripe(&t, keys, &SystemClock, overlap)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "Stripe keys set for {t} (publishable key {}{}); Stripe's webhook endpoint: <base URL>/v1/webhooks/stripe/{t}",
                stored.publishable_key,
                stored
                    .previous_webhook_secret_expires_at
                    .as_deref()
                    .map(|e| format!("; the previous webhook secret verifies until {e}"))
                    .unwrap_or_default()
            );
        }
        "tenant-settings" => tenant_settings(&store, &f).await?,
        "create-key" => {
            let role = Role::parse(need(&f, "role")?).ok_or("--role must be admin or member")?;
            println!(
                "{}",
                admin::create_key(&store, &tenant(&f)?, role)
                    .await
                    .map_err(|e| e.to_string())?
            );
        }
        "create-entitlement" => create_entitlement(&store, &f).await?,
        "demo" => demo(&store, &f).await?,
        _ => return Err(USAGE.to_owned()),
    }
    Ok(())
}

/// `setup`: the table and the SQS queues from the template, and the cursor key.
async fn setup(store: &DynamoStore, f: &Flags) -> Result<(), String> {
    let path = f.get("template").map(String::as_str).unwrap_or("template.yaml");
    let template = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    admin::create_table_from_template(store.client(), &template, store.table())
        .await
        .map_err(|e| e.to_string())?;
    let visibility = f
        .get("visibility-timeout")
        .map(|v| v.parse::<u64>())
        .transpose()
        .map_err(|e| e.to_string())?;
    let sqs = aws_sdk_sqs::Client::new(&grants_lambda::config::sdk_config().await);
    let urls = local::create_queues_from_template(&sqs, &template, &local::queue_names_from_env(), visibility)
        .await
        .map_err(|e| e.to_string())?;
    let secrets = grants_lambda::config::secrets(&grants_lambda::config::sdk_config().await);
    secrets.ensure_cursor_key().await.map_err(|e| e.to_string())?;
    println!("{}", store.table());
    for url in urls.values() {
        println!("{url}");
    }
    Ok(())
}

/// `list-keys`: one line per key of the tenant.
async fn list_keys(store: &DynamoStore, f: &Flags) -> Result<(), String> {
    for k in auth::list_keys(store, &tenant(f)?).await.map_err(|e| e.to_string())? {
        let opt = |t: Option<grants_domain::Timestamp>| t.map(|t| t.to_rfc3339()).unwrap_or_else(|| "-".to_owned());
        let prefix = if k.display_prefix.is_empty() {
            "-"
        } else {
            k.display_prefix.as_str()
        };
        println!(
            "{}\t{prefix}\t{}\tcreated={}\tlast_used={}\texpires={}",
            k.key_id(),
            k.role.as_str(),
            k.created_at.to_rfc3339(),
            opt(k.last_used_at),
            opt(k.expires_at)
        );
    }
    Ok(())
}

/// `tenant-settings`: applies the flags given, prints the settings as they now are.
async fn tenant_settings(store: &DynamoStore, f: &Flags) -> Result<(), String> {
    let mut change = admin::SettingsChange::default();
    if let Some(v) = f.get("members-may-purchase") {
        change.members_may_purchase = Some(
            v.parse::<bool>()
                .map_err(|_| "--members-may-purchase takes true or false")?,
        );
    }
    if let Some(v) = f.get("min-price-per-credit") {
        change.min_price_per_credit = Some(match v.as_str() {
            "none" => None,
            d => Some(
                d.parse::<rust_decimal::Decimal>()
                    .map_err(|_| "--min-price-per-credit takes a decimal or none")?,
            ),
        });
    }
    if let Some(v) = f.get("allowed-redirect-origins") {
        change.allowed_redirect_origins = Some(match v.as_str() {
            "none" => Vec::new(),
            list => list
                .split(',')
                .map(|o| o.trim().to_owned())
                .filter(|o| !o.is_empty())
                .collect(),
        });
    }
    let s = admin::update_tenant_settings(store, &tenant(f)?, change)
        .await
        .map_err(|e| e.to_string())?;
    let json = serde_json::json!({
        "tenant": s.tenant.as_str(),
        "currency": s.currency.code(),
        "membersMayPurchase": s.members_may_purchase,
        "minPricePerCredit": s.min_price_per_credit.map(|d| d.normalize().to_string()),
        "allowedRedirectOrigins": s.allowed_redirect_origins,
    });
    println!("{json:#}");
    Ok(())
}

/// `create-entitlement`: provisions one, printed as JSON.
async fn create_entitlement(store: &DynamoStore, f: &Flags) -> Result<(), String> {
    let mut body = serde_json::json!({
        "customerId": need(f, "customer")?,
        "featureKey": need(f, "feature-key")?,
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
    let e = admin::create_entitlement(store, &tenant(f)?, body)
        .await
        .map_err(|e| e.to_string())?;
    println!("{e:#}");
    Ok(())
}

/// `demo`: the table, an admin key, an entitlement and the webhook secret of a demo tenant.
async fn demo(store: &DynamoStore, f: &Flags) -> Result<(), String> {
    let template = std::fs::read_to_string("template.yaml").map_err(|e| format!("template.yaml: {e}"))?;
    admin::create_table_from_template(store.client(), &template, store.table())
        .await
        .map_err(|e| e.to_string())?;
    let t = TenantId::parse(f.get("tenant").map(String::as_str).unwrap_or("demo")).map_err(|e| e.to_string())?;
    let key = admin::create_key(store, &t, Role::Admin)
        .await
        .map_err(|e| e.to_string())?;
    let body = serde_json::json!({"customerId": "cus_demo", "featureKey": "api_calls"});
    let e = admin::create_entitlement(store, &t, body)
        .await
        .map_err(|e| e.to_string())?;
    let secrets = grants_lambda::config::secrets(&grants_lambda::config::sdk_config().await);
    if f.get("stripe").map(String::as_str) == Some("true") {
        // Test-mode keys of the local Stripe server, which takes any sk_/pk_ key.
        let random = || grants_domain::secrets::new_cursor_key().map_err(|e| e.to_string());
        let keys = grants_domain::secrets::StripeKeys {
            secret_key: format!("sk_test_{}", &random()?[..24]),
            publishable_key: format!("pk_test_{}", &random()?[..24]),
            webhook_secret: grants_domain::secrets::new_webhook_secret().map_err(|e| e.to_string())?,
            previous_webhook_secret: None,
            previous_webhook_secret_expires_at: None,
        };
        let stored = secrets
            .set_stripe(&t, keys, &SystemClock, 0)
            .await
            .map_err(|e| e.to_string())?;
        println!("STRIPE_TENANT_ID={t}");
        println!("STRIPE_API_KEY={key}");
        println!("STRIPE_ENTITLEMENT_ID={}", e["id"].as_str().unwrap_or_default());
        println!("STRIPE_WEBHOOK_SECRET={}", stored.webhook_secret);
        return Ok(());
    }
    println!("TENANT_ID={t}");
    println!("API_KEY={key}");
    println!("ENTITLEMENT_ID={}", e["id"].as_str().unwrap_or_default());
    let webhook = secrets.ensure_webhook(&t).await.map_err(|e| e.to_string())?;
    println!("WEBHOOK_SECRET={}", webhook.current);
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
