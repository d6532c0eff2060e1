//! A pooled mutual-TLS JSON client for calls between the vault and bank
//! channels (gateway → bank, bank-sim → vault). TLS 1.3 only, the peer
//! verified against a configured CA, our own client certificate presented;
//! every call bounded by a deadline and a response-size cap.

use crate::pem;
use axum::body::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::http::{header, Method, Request, Uri};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Largest answer a channel may send to a call (its JSON is small).
const RESPONSE_LIMIT: usize = 256 * 1024;

/// How large an answer a call takes, and how long it waits for it.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    pub limit: usize,
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    #[error("endpoint {0} is not an https:// URL with a host")]
    Endpoint(String),
    #[error("TLS set-up: {0}")]
    Tls(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("connection failed: {0}")]
    Connect(String),
    /// The request may have reached the peer: whether it acted is unknown.
    #[error("exchange interrupted after the request was sent: {0}")]
    Interrupted(String),
    #[error("answer unreadable or larger than {0} bytes")]
    Body(usize),
}

/// Where the client's trust anchor and identity come from.
#[derive(Clone, Debug)]
pub struct ClientTls {
    pub ca_cert: PathBuf,
    /// The peer CA's CRL: a revoked peer certificate fails the handshake,
    /// and a CRL past its `nextUpdate` refuses to build the client.
    pub crl: Option<PathBuf>,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Bytes,
}

#[derive(Clone)]
pub struct ChannelClient {
    base: String,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl ChannelClient {
    pub fn new(endpoint: &str, tls: &ClientTls, timeout: Duration) -> Result<Self, ClientError> {
        let uri: Uri = endpoint
            .parse()
            .map_err(|_| ClientError::Endpoint(endpoint.to_owned()))?;
        if uri.scheme_str() != Some("https") || uri.host().is_none() {
            return Err(ClientError::Endpoint(endpoint.to_owned()));
        }
        let https = HttpsConnectorBuilder::new()
            .with_tls_config(client_config(tls)?)
            .https_only()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https);
        Ok(ChannelClient {
            base: endpoint.trim_end_matches('/').to_owned(),
            client,
            timeout,
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.base
    }

    /// POSTs a JSON body. The body is moved into the request: callers that
    /// put card data in it build it as late as possible.
    pub async fn post_json(&self, path: &str, body: Vec<u8>) -> Result<Reply, ClientError> {
        self.call(Method::POST, path, Some(body), None, &[]).await
    }

    /// POSTs a JSON body whose answer may be larger, or slower, than a
    /// call's (a statement file): within `bounds` instead.
    pub async fn post_json_within(
        &self,
        path: &str,
        body: Vec<u8>,
        bounds: Bounds,
    ) -> Result<Reply, ClientError> {
        self.exchange(Method::POST, path, Some(body), None, &[], bounds)
            .await
    }

    /// POSTs to a vault mutation: `body` (JSON) if the route takes one,
    /// and the `Idempotency-Key` every mutation needs. A retry with the
    /// same key is answered as the first call was, without doing it twice.
    pub async fn post_idempotent(
        &self,
        path: &str,
        body: Option<Vec<u8>>,
        idempotency_key: &str,
    ) -> Result<Reply, ClientError> {
        self.call(Method::POST, path, body, Some(idempotency_key), &[])
            .await
    }

    /// POSTs a JSON body with headers of the caller's (a bank's signature).
    pub async fn post_json_with(
        &self,
        path: &str,
        body: Vec<u8>,
        headers: &[(&'static str, String)],
    ) -> Result<Reply, ClientError> {
        self.call(Method::POST, path, Some(body), None, headers).await
    }

    pub async fn get(&self, path: &str) -> Result<Reply, ClientError> {
        self.call(Method::GET, path, None, None, &[]).await
    }

    pub async fn put_json(&self, path: &str, body: Vec<u8>) -> Result<Reply, ClientError> {
        self.call(Method::PUT, path, Some(body), None, &[]).await
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        idempotency_key: Option<&str>,
        headers: &[(&'static str, String)],
    ) -> Result<Reply, ClientError> {
        let bounds = Bounds {
            limit: RESPONSE_LIMIT,
            timeout: self.timeout,
        };
        self.exchange(method, path, body, idempotency_key, headers, bounds)
            .await
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        idempotency_key: Option<&str>,
        headers: &[(&'static str, String)],
        bounds: Bounds,
    ) -> Result<Reply, ClientError> {
        let uri = format!("{}{path}", self.base);
        let mut builder = Request::builder().method(method).uri(&uri);
        if body.is_some() {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
        }
        if let Some(key) = idempotency_key {
            builder = builder.header("idempotency-key", key);
        }
        for (name, value) in headers {
            builder = builder.header(*name, value.as_str());
        }
        let request = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|_| ClientError::Endpoint(uri.clone()))?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| {
                if e.is_connect() {
                    ClientError::Connect(error_chain(&e))
                } else {
                    ClientError::Interrupted(error_chain(&e))
                }
            })?;
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), bounds.limit)
                .collect()
                .await
                .map_err(|_| ClientError::Body(bounds.limit))?
                .to_bytes();
            Ok(Reply { status, body })
        };
        tokio::time::timeout(bounds.timeout, exchange)
            .await
            .map_err(|_| ClientError::Timeout(bounds.timeout))?
    }
}

/// hyper's errors hide the cause (refused, TLS alert) one level down.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn client_config(tls: &ClientTls) -> Result<rustls::ClientConfig, ClientError> {
    let err = |e: &dyn std::fmt::Display| ClientError::Tls(e.to_string());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = crate::tls::server_verifier(&tls.ca_cert, tls.crl.as_deref()).map_err(|e| err(&e))?;
    rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| err(&e))?
        .with_webpki_verifier(verifier)
        .with_client_auth_cert(
            pem::certificates(&tls.cert).map_err(|e| err(&e))?,
            pem::private_key(&tls.key).map_err(|e| err(&e))?,
        )
        .map_err(|e| err(&e))
}
