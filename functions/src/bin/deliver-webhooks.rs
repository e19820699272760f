//! Lambda function `deliver-webhooks`: the webhook-deliveries queue's consumer. One signed attempt
//! per job; failed ones wait on the queue for the retry schedule's next attempt.
#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    grants_lambda::webhooks::serve_delivery().await
}
