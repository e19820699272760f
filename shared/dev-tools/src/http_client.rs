//! A small outbound HTTP client (hyper + rustls, already in the AWS SDK's dependency tree) for the
//! local SQS bridge's function invocations and the tests' calls to the local Stripe server.
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// Built on first use: reading the machine's root certificates costs milliseconds of cold start,
/// and only the local bridge calls out.
#[derive(Clone)]
pub struct HttpClient {
    client: Arc<OnceLock<Client<Connector, Full<Bytes>>>>,
    timeout: Duration,
}

impl HttpClient {
    pub fn new(timeout: Duration) -> Self {
        Self {
            client: Arc::new(OnceLock::new()),
            timeout,
        }
    }

    fn client(&self) -> &Client<Connector, Full<Bytes>> {
        self.client.get_or_init(build_client)
    }

    /// POSTs `body`; returns the status and the response body.
    pub async fn post(&self, url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Result<(u16, Bytes), String> {
        self.send(http::Method::POST, url, headers, body).await
    }

    /// GETs `url`; returns the status and the response body.
    pub async fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<(u16, Bytes), String> {
        self.send(http::Method::GET, url, headers, Vec::new()).await
    }

    async fn send(
        &self,
        method: http::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<(u16, Bytes), String> {
        let mut request = http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let request = request.body(Full::new(Bytes::from(body))).map_err(|e| e.to_string())?;
        let call = async {
            let response = self.client().request(request).await.map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok::<_, String>((status, body))
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| format!("no answer from {url} within {:?}", self.timeout))?
    }
}

fn build_client() -> Client<Connector, Full<Bytes>> {
    grants_lambda::webhooks::https_client(HttpConnector::new(), Duration::from_secs(10))
}
