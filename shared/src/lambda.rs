//! The Lambda adapter: API Gateway HTTP API events in, [`crate::api`] responses out.
use crate::api::{dispatch, not_found_route, ApiRequest, ApiResponse, App, Route};
use lambda_http::{service_fn, Body, Request, RequestExt, Response};
use std::convert::Infallible;
use std::sync::Arc;

/// Runs the Lambda runtime loop for one route. This is all a function's `main` calls.
pub async fn serve(route: Route) -> Result<(), lambda_http::Error> {
    crate::telemetry::init();
    let app = Arc::new(App::with_system_clock(Arc::new(crate::config::store_from_env().await)));
    lambda_http::run(service_fn(move |event: Request| {
        let app = Arc::clone(&app);
        async move { Ok::<_, Infallible>(handle_event(&app, route, event).await) }
    }))
    .await
}

/// Runs the catch-all function: every request is answered with a JSON 404 naming the route.
pub async fn serve_not_found() -> Result<(), lambda_http::Error> {
    crate::telemetry::init();
    lambda_http::run(service_fn(|event: Request| async move { Ok::<_, Infallible>(not_found_event(&event)) })).await
}

/// The catch-all's answer to one event.
pub fn not_found_event(event: &Request) -> Response<Body> {
    to_lambda_response(not_found_route(event.method(), event.uri().path()))
}

/// One event through the route's handler.
pub async fn handle_event(app: &App, route: Route, event: Request) -> Response<Body> {
    to_lambda_response(dispatch(app, route, to_api_request(event)).await)
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
    let request_id = event.lambda_context_ref().map(|c| c.request_id.clone()).unwrap_or_default();
    let (parts, body) = event.into_parts();
    ApiRequest {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        path_params,
        query,
        headers: parts.headers,
        body: bytes::Bytes::copy_from_slice(body.as_ref()),
        request_id,
    }
}

pub fn to_lambda_response(r: ApiResponse) -> Response<Body> {
    let mut builder = Response::builder().status(r.status);
    for (k, v) in &r.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    builder.body(Body::Text(r.body)).unwrap_or_else(|_| {
        let mut fallback = Response::new(Body::Text(r#"{"message":"Internal error","error":"internal_error"}"#.to_owned()));
        *fallback.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
        fallback
    })
}
