//! Lambda function `not-found`: the catch-all route, so an unknown path gets the same JSON 404 as
//! every other error (API Gateway `$default`, the local router's `/{*path}`).
#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    grants_lambda::serve_not_found().await
}
