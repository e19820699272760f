//! Lambda function `webhook-portal-action`: one API route; its binary links only this route's
//! handler, and the webhook-deliveries queue a resend goes on.
#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    grants_lambda::Function::new(grants_http::endpoint::WebhookPortalAction)
        .webhook_deliveries()
        .serve()
        .await
}
