//! Lambda function `dispatch-webhooks`: the table's stream (webhook messages written by the
//! outbox) in, one delivery job per subscribed endpoint out, on the webhook-deliveries queue.
#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    grants_lambda::webhooks::serve_dispatch().await
}
