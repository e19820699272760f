//! Lambda function `stripe-payment-page`: one API route; its binary links only this route's handler.
#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    grants_lambda::serve(grants_http::endpoint::StripePaymentPage).await
}
