//! Lambda function `purchase-grant`: one API route; its binary links only this route's handler
//! (and, for `PAYMENT_PROVIDER=stripe`, the Stripe client that opens the PaymentIntent).
#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    grants_lambda::Function::new(grants_http::endpoint::PurchaseGrant)
        .stripe()
        .serve()
        .await
}
