//! Lambda function `expire-payment-sessions`: on an EventBridge schedule, cancels invoices whose
//! payment session expired unpaid.
#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    grants_lambda::serve_expiry().await
}
