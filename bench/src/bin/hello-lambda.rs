//! The cold-start baseline: the smallest lambda_http function, built exactly as the real ones.
use lambda_http::{service_fn, Body, Request, Response};
use std::convert::Infallible;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::run(service_fn(|_: Request| async {
        Ok::<_, Infallible>(Response::new(Body::from("hello")))
    }))
    .await
}
