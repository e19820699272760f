//! Lambda function `payment-webhook`: one API route; its binary links only this route's handler.
#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    grants_lambda::Function::new(grants_http::endpoint::PaymentWebhook)
        .without_table()
        .secrets()
        .payment_events()
        .serve()
        .await
}
