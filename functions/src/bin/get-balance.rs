//! Lambda function `get-balance`: one API route, all logic in the shared crate.
use grants_http::Route;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    grants_lambda::serve(Route::GetBalance).await
}
