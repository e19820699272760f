//! Lambda function `run-credit-schedules`: on an EventBridge schedule, resets ended entitlement
//! periods (rolling balances over) and applies the credit grant plans' due periods.
#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    grants_lambda::serve_credit_schedules().await
}
