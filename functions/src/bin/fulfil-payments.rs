//! Lambda function `fulfil-payments`: the payment-events SQS queue's consumer. Paid invoices become
//! exactly one grant each; failures are reported per message (ReportBatchItemFailures).
#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    grants_lambda::serve_payment_events().await
}
