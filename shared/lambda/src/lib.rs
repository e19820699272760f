//! The Lambda adapters: API Gateway HTTP API events in, [`grants_http`] responses out; SQS batches
//! into [`grants_http::fulfilment`]; the schedule into the payment-session expiry sweep.
pub mod config;
pub mod queue;
pub mod secrets_manager;
pub mod stripe;
pub mod telemetry;
pub mod webhooks;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use grants_domain::purchases;
use grants_dynamo::DynamoStore;
use grants_http::fulfilment::{self, Message};
use grants_http::{not_found_route, ApiRequest, ApiResponse, Route};
use lambda_http::{service_fn, Body, Request, RequestExt, Response};
use lambda_runtime::LambdaEvent;
use std::convert::Infallible;
use std::sync::Arc;
use tracing::Instrument;

/// The app of a deployed function: its store is DynamoDB.
pub type App = grants_http::App<DynamoStore>;
/// A route's endpoint for a deployed function.
pub type Endpoint = grants_http::Endpoint<DynamoStore>;
/// A route's endpoint as a function's `main` names it: `grants_http::endpoint::GetGrant`.
pub type NamedEndpoint = fn() -> Endpoint;

/// Runs the Lambda runtime loop for one route's endpoint with DynamoDB only
/// (`serve(grants_http::endpoint::GetGrant)`): what most functions' `main` calls. See [`Function`]
/// for the ones that use more.
pub async fn serve(endpoint: NamedEndpoint) -> Result<(), lambda_http::Error> {
    Function::new(endpoint).serve().await
}

/// One wiring step: adds an AWS client to the app.
type Wire = fn(App, &aws_config::SdkConfig) -> App;

/// A function: its endpoint, and the AWS clients beyond DynamoDB it uses. Each client is a method,
/// so a binary links only the clients its `main` names (template.yaml grants the matching IAM
/// actions to that function alone):
/// `Function::new(endpoint::PaymentWebhook).secrets().payment_events().serve().await`.
pub struct Function {
    endpoint: NamedEndpoint,
    table: config::Table,
    wiring: Vec<Wire>,
}

impl Function {
    pub fn new(endpoint: NamedEndpoint) -> Self {
        Self {
            endpoint,
            table: config::Table::Used,
            wiring: Vec::new(),
        }
    }
    /// No DynamoDB client at start-up: for a route that never calls the table (its function has no
    /// `dynamodb:*` action in template.yaml).
    pub fn without_table(mut self) -> Self {
        self.table = config::Table::Unused;
        self
    }
    /// Secrets Manager: webhook signing secrets and the page-cursor key.
    pub fn secrets(mut self) -> Self {
        self.wiring.push(crate::config::with_secrets);
        self
    }
    /// The payment-events queue (SQS).
    pub fn payment_events(mut self) -> Self {
        self.wiring.push(crate::config::with_payment_events);
        self
    }
    /// The Stripe client (and Secrets Manager for the tenants' Stripe keys), when
    /// `PAYMENT_PROVIDER=stripe`: what opens PaymentIntents.
    pub fn stripe(mut self) -> Self {
        self.wiring.push(crate::config::with_stripe);
        self
    }
    /// The webhook-deliveries queue (SQS), for resends.
    pub fn webhook_deliveries(mut self) -> Self {
        self.wiring.push(crate::config::with_webhook_deliveries);
        self
    }

    /// Builds the app once (cold start) and runs the Lambda runtime loop: one request at a time on
    /// classic Lambda; up to `AWS_LAMBDA_MAX_CONCURRENCY` at once on Lambda Managed Instances
    /// (`PerExecutionEnvironmentMaxConcurrency`), where they share the app (API key cache, busy
    /// hints, and the lines in which usage on one entitlement is written together:
    /// [`grants_domain::combining`]).
    pub async fn serve(self) -> Result<(), lambda_http::Error> {
        crate::telemetry::init();
        let app = Arc::new(wired_app(self.table, &self.wiring)?);
        let endpoint = (self.endpoint)();
        lambda_http::run_concurrent(service_fn(move |event: Request| {
            let app = Arc::clone(&app);
            async move { Ok::<_, Infallible>(handle_endpoint_event(&app, endpoint, event).await) }
        }))
        .await
    }
}

/// The app from the environment with each wiring applied; a bad configuration stops the function.
fn wired_app(table: config::Table, wiring: &[Wire]) -> Result<App, lambda_runtime::Error> {
    let (app, config) = crate::config::app_from_env(table).map_err(|e| {
        tracing::error!(error = %e, "bad configuration; not starting");
        Box::new(e) as lambda_runtime::Error
    })?;
    Ok(wiring.iter().fold(app, |app, wire| wire(app, &config)))
}

/// Runs the catch-all function: every request is answered with a JSON 404 naming the route.
pub async fn serve_not_found() -> Result<(), lambda_http::Error> {
    crate::telemetry::init();
    lambda_http::run(service_fn(|event: Request| async move {
        Ok::<_, Infallible>(not_found_event(&event))
    }))
    .await
}

/// The catch-all's answer to one event.
pub fn not_found_event(event: &Request) -> Response<Body> {
    to_lambda_response(not_found_route(event.method(), event.uri().path()))
}

/// One event through the route's handler, looked up in the route table (tests).
pub async fn handle_event(app: &App, route: Route, event: Request) -> Response<Body> {
    handle_endpoint_event(app, route.endpoint(), event).await
}

/// One event through the endpoint's handler.
pub async fn handle_endpoint_event(app: &App, endpoint: Endpoint, event: Request) -> Response<Body> {
    to_lambda_response(grants_http::routes::serve(app, endpoint, to_api_request(event)).await)
}

pub fn to_api_request(event: Request) -> ApiRequest {
    let path_params = event
        .path_parameters_ref()
        .map(|p| p.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
        .unwrap_or_default();
    let query = event
        .query_string_parameters_ref()
        .map(|q| q.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
        .unwrap_or_default();
    let request_id = event
        .lambda_context_ref()
        .map(|c| c.request_id.clone())
        .unwrap_or_default();
    let gateway_domain = match event.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(c)) => c.domain_name.clone(),
        _ => None,
    };
    let (parts, body) = event.into_parts();
    ApiRequest {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        path_params,
        query,
        headers: parts.headers,
        body: bytes::Bytes::copy_from_slice(body.as_ref()),
        request_id,
        gateway_domain,
    }
}

pub fn to_lambda_response(r: ApiResponse) -> Response<Body> {
    let mut builder = Response::builder().status(r.status);
    for (k, v) in &r.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    builder.body(Body::Text(r.body)).unwrap_or_else(|_| {
        let mut fallback = Response::new(Body::Text(
            r#"{"message":"Internal error","error":"internal_error"}"#.to_owned(),
        ));
        *fallback.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
        fallback
    })
}

/// Runs the fulfilment function: SQS batches of payment events, partial failures reported.
pub async fn serve_payment_events() -> Result<(), lambda_runtime::Error> {
    crate::telemetry::init();
    let app = Arc::new(wired_app(config::Table::Used, &[crate::config::with_invoice_events])?);
    lambda_runtime::run(lambda_runtime::service_fn(move |event: LambdaEvent<SqsEvent>| {
        let app = Arc::clone(&app);
        let span = tracing::info_span!("sqs_batch", request_id = %event.context.request_id);
        async move { Ok::<_, Infallible>(handle_sqs_event(&app, event.payload).await) }.instrument(span)
    }))
    .await
}

/// One SQS batch through fulfilment.
pub async fn handle_sqs_event(app: &App, event: SqsEvent) -> SqsBatchResponse {
    let messages = event
        .records
        .into_iter()
        .map(|r| Message {
            id: r.message_id.unwrap_or_default(),
            body: r.body.unwrap_or_default(),
        })
        .collect();
    let mut response = SqsBatchResponse::default();
    for id in fulfilment::process_batch(app, messages).await {
        let mut failure = BatchItemFailure::default();
        failure.item_identifier = id;
        response.batch_item_failures.push(failure);
    }
    response
}

/// Open invoices looked at per scheduled run.
pub const EXPIRY_BATCH: usize = 500;

/// Runs the scheduled sweep that cancels invoices whose payment session expired unpaid.
pub async fn serve_expiry() -> Result<(), lambda_runtime::Error> {
    crate::telemetry::init();
    // The Stripe client, when Stripe is the provider: expired PaymentIntents are canceled first.
    let app = Arc::new(wired_app(config::Table::Used, &[crate::config::with_stripe])?);
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: LambdaEvent<serde_json::Value>| {
            let app = Arc::clone(&app);
            let span = tracing::info_span!("expiry", request_id = %event.context.request_id);
            async move { handle_expiry(&app).await }.instrument(span)
        },
    ))
    .await
}

pub async fn handle_expiry(app: &App) -> Result<serde_json::Value, lambda_runtime::Error> {
    let canceled = purchases::expire_due_sessions(
        app.store.as_ref(),
        app.payments.as_ref(),
        app.clock.as_ref(),
        EXPIRY_BATCH,
    )
    .await?;
    tracing::info!(canceled, "expired payment sessions canceled");
    Ok(serde_json::json!({ "canceled": canceled }))
}

/// Periods reset per scheduled run (the rest wait for the next run).
const RESET_BATCH: usize = 200;

/// Runs the credit schedule: on an EventBridge schedule, resets ended entitlement periods (with
/// rollover), then applies every credit grant plan's due periods.
pub async fn serve_credit_schedules() -> Result<(), lambda_runtime::Error> {
    crate::telemetry::init();
    let app = Arc::new(wired_app(config::Table::Used, &[])?);
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: LambdaEvent<serde_json::Value>| {
            let app = Arc::clone(&app);
            let span = tracing::info_span!("credit_schedules", request_id = %event.context.request_id);
            async move { handle_credit_schedules(&app).await }.instrument(span)
        },
    ))
    .await
}

/// The run's time budget: resets may use the first part, plan applications what is left; the
/// function's timeout (60 s in template.yaml) leaves the rest as margin.
const RESET_BUDGET: std::time::Duration = std::time::Duration::from_secs(20);
const RUN_BUDGET: std::time::Duration = std::time::Duration::from_secs(40);

pub async fn handle_credit_schedules(app: &App) -> Result<serde_json::Value, lambda_runtime::Error> {
    let (store, clock) = (app.store.as_ref(), app.clock.as_ref());
    let started = std::time::Instant::now();
    let reset = grants_domain::periods::reset_due(store, clock, RESET_BATCH, started + RESET_BUDGET).await?;
    let applied = grants_domain::plans::apply_all(store, clock, started + RUN_BUDGET).await?;
    tracing::info!(
        reset = reset.reset,
        failed = reset.failed,
        quarantined = reset.quarantined,
        grants = applied.grants,
        entitlements = applied.entitlements,
        "credit schedules run"
    );
    Ok(serde_json::json!({
        "periodsReset": reset.reset,
        "periodResetsFailed": reset.failed,
        "periodsQuarantined": reset.quarantined,
        "grantsApplied": applied.grants,
        "entitlementsChecked": applied.entitlements,
    }))
}
