//! The webhook sender's address rules as deployed (`WEBHOOK_REACH=public`): plain http, loopback
//! (written or resolved) and metadata addresses are refused before any connection; nothing is sent.
use grants_domain::webhook_delivery::{Reach, WebhookSender};
use grants_lambda::webhooks::HttpSender;

#[tokio::test]
async fn a_deployed_stack_refuses_http_and_private_addresses_before_connecting() {
    let sender = HttpSender::new(Reach::Public);
    let headers = [("content-type", "application/json".to_owned())];
    for (url, why) in [
        ("http://example.com/hook", "https URLs only"),
        ("https://127.0.0.1:9/hook", "non-public address"),
        ("https://169.254.169.254/latest", "non-public address"),
        ("https://[::ffff:10.0.0.1]/hook", "non-public address"),
        ("https://localhost:9/hook", "non-public address"),
    ] {
        let posted = sender.post(url, &headers, "{}").await;
        assert_eq!(posted.status, None, "{url}");
        assert!(posted.body.contains(why), "{url}: {}", posted.body);
    }
}
