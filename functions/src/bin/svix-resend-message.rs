//! Lambda function `svix-resend-message`: one API route; its binary links only this route's
//! handler, and the webhook-deliveries queue it puts the resend on.
#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    grants_lambda::Function::new(grants_http::endpoint::SvixResendMessage)
        .webhook_deliveries()
        .serve()
        .await
}
