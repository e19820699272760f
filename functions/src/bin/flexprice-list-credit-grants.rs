//! Lambda function `flexprice-list-credit-grants`: one API route, all logic in the shared crate.
use shared::Route;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::lambda::serve(Route::FlexpriceListCreditGrants).await
}
