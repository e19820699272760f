//! Lambda function `stripe-webhook`: a tenant's signed Stripe events in, onto the payment-events
//! queue; reads the tenant's Stripe webhook signing secrets.
#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    grants_lambda::Function::new(grants_http::endpoint::StripeWebhook)
        .secrets()
        .payment_events()
        .serve()
        .await
}
