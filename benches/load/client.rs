//! A load client that keeps its connections: mutual TLS (TLS 1.3, the
//! role's certificate) and HTTP/1.1 keep-alive or HTTP/2, through hyper's
//! client connection API, as a production caller would.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::{http1, http2};
use hyper::{Method, Request};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Http1,
    Http2,
}

impl Proto {
    pub fn label(self) -> &'static str {
        match self {
            Proto::Http1 => "h1",
            Proto::Http2 => "h2",
        }
    }
}

/// Where to connect and as whom.
#[derive(Clone)]
pub struct Target {
    /// Connections go to these in turn (several nodes on one database).
    addrs: Arc<Vec<SocketAddr>>,
    turn: Arc<std::sync::atomic::AtomicUsize>,
    config: Arc<rustls::ClientConfig>,
}

impl Target {
    pub fn new(addr: SocketAddr, ca: &Path, cert: &Path, key: &Path, proto: Proto) -> Target {
        let mut roots = rustls::RootCertStore::empty();
        for c in tokenvault::pem::certificates(ca).expect("CA certificate") {
            roots.add(c).expect("CA certificate parses");
        }
        let mut config =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_protocol_versions(&[&rustls::version::TLS13])
                .expect("TLS 1.3")
                .with_root_certificates(roots)
                .with_client_auth_cert(
                    tokenvault::pem::certificates(cert).expect("client certificate"),
                    tokenvault::pem::private_key(key).expect("client key"),
                )
                .expect("client auth");
        config.alpn_protocols = match proto {
            Proto::Http1 => vec![b"http/1.1".to_vec()],
            Proto::Http2 => vec![b"h2".to_vec()],
        };
        Target {
            addrs: Arc::new(vec![addr]),
            turn: Arc::default(),
            config: Arc::new(config),
        }
    }

    /// The same caller, its connections spread over `more` nodes too.
    pub fn spread_over(mut self, more: impl IntoIterator<Item = SocketAddr>) -> Target {
        let mut addrs = (*self.addrs).clone();
        addrs.extend(more);
        self.addrs = Arc::new(addrs);
        self
    }

    pub async fn connect(&self, proto: Proto) -> Result<Conn, String> {
        let turn = self.turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let addr = self.addrs[turn % self.addrs.len()];
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("static name");
        let tls = tokio_rustls::TlsConnector::from(Arc::clone(&self.config))
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        let io = TokioIo::new(tls);
        match proto {
            Proto::Http1 => {
                let (send, conn) = http1::handshake(io).await.map_err(|e| e.to_string())?;
                tokio::spawn(conn);
                Ok(Conn::Http1(send))
            }
            Proto::Http2 => {
                let (send, conn) = http2::handshake(TokioExecutor::new(), io)
                    .await
                    .map_err(|e| e.to_string())?;
                tokio::spawn(conn);
                Ok(Conn::Http2(send))
            }
        }
    }
}

/// One request, described without hyper types so scenarios stay simple.
pub struct Call {
    pub method: Method,
    pub path: String,
    pub body: Option<Vec<u8>>,
    pub idempotency_key: Option<String>,
}

impl Call {
    pub fn get(path: String) -> Call {
        Call {
            method: Method::GET,
            path,
            body: None,
            idempotency_key: None,
        }
    }

    pub fn post(path: &str, json: &serde_json::Value, idempotency_key: Option<String>) -> Call {
        Call {
            method: Method::POST,
            path: path.to_owned(),
            body: Some(serde_json::to_vec(json).expect("JSON encodes")),
            idempotency_key,
        }
    }
}

pub enum Conn {
    Http1(http1::SendRequest<Full<Bytes>>),
    Http2(http2::SendRequest<Full<Bytes>>),
}

impl Conn {
    /// Another handle on the same connection: HTTP/2 multiplexes streams;
    /// an HTTP/1.1 connection has one request in flight, so `None`.
    pub fn share(&self) -> Option<Conn> {
        match self {
            Conn::Http1(_) => None,
            Conn::Http2(send) => Some(Conn::Http2(send.clone())),
        }
    }

    /// Status and body; `Err` when the connection failed.
    pub async fn send(&mut self, call: Call) -> Result<(u16, Bytes), String> {
        let uri = match self {
            Conn::Http1(_) => call.path,
            Conn::Http2(_) => format!("https://localhost{}", call.path),
        };
        let mut request = Request::builder()
            .method(call.method)
            .uri(uri)
            .header("host", "localhost");
        if call.body.is_some() {
            request = request.header("content-type", "application/json");
        }
        if let Some(key) = call.idempotency_key {
            request = request.header("idempotency-key", key);
        }
        let request = request
            .body(Full::new(Bytes::from(call.body.unwrap_or_default())))
            .map_err(|e| e.to_string())?;
        let response = match self {
            Conn::Http1(send) => {
                send.ready().await.map_err(|e| e.to_string())?;
                send.send_request(request).await
            }
            Conn::Http2(send) => {
                send.ready().await.map_err(|e| e.to_string())?;
                send.send_request(request).await
            }
        }
        .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, body))
    }
}
