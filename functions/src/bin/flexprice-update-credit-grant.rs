//! Lambda function `flexprice-update-credit-grant`: one API route, all logic in the shared crate.
use shared::Route;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::lambda::serve(Route::FlexpriceUpdateCreditGrant).await
}
