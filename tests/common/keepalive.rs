//! One kept-open client connection (HTTP/1.1 keep-alive or HTTP/2) over
//! mutual TLS, through hyper's client connection API: for tests about what
//! happens to connections opened before a change.

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub enum Conn {
    H1(http1::SendRequest<Empty<Bytes>>),
    H2(http2::SendRequest<Empty<Bytes>>),
}

impl Conn {
    /// A mutual-TLS connection to `addr` as `cert`, speaking HTTP/2 when
    /// `h2`, else HTTP/1.1 keep-alive.
    pub async fn open(addr: SocketAddr, ca: &Path, cert: &Path, key: &Path, h2: bool) -> Conn {
        let mut roots = rustls::RootCertStore::empty();
        for c in tokenvault::pem::certificates(ca).unwrap() {
            roots.add(c).unwrap();
        }
        let mut config =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_protocol_versions(&[&rustls::version::TLS13])
                .unwrap()
                .with_root_certificates(roots)
                .with_client_auth_cert(
                    tokenvault::pem::certificates(cert).unwrap(),
                    tokenvault::pem::private_key(key).unwrap(),
                )
                .unwrap();
        config.alpn_protocols = vec![if h2 { b"h2".to_vec() } else { b"http/1.1".to_vec() }];
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .unwrap();
        let io = TokioIo::new(tls);
        if h2 {
            let (send, conn) = http2::handshake(TokioExecutor::new(), io).await.unwrap();
            tokio::spawn(conn);
            Conn::H2(send)
        } else {
            let (send, conn) = http1::handshake(io).await.unwrap();
            tokio::spawn(conn);
            Conn::H1(send)
        }
    }

    /// One GET on this connection: its status, or why it could not be sent.
    pub async fn get(&mut self, path: &str) -> Result<(u16, String), String> {
        let request = hyper::Request::get(path)
            .header("host", "localhost")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let response = match self {
            Conn::H1(send) => {
                send.ready().await.map_err(|e| e.to_string())?;
                send.send_request(request).await.map_err(|e| e.to_string())?
            }
            Conn::H2(send) => {
                send.ready().await.map_err(|e| e.to_string())?;
                send.send_request(request).await.map_err(|e| e.to_string())?
            }
        };
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.map_err(|e| e.to_string())?;
        Ok((status, String::from_utf8_lossy(&body.to_bytes()).into_owned()))
    }

    pub fn is_closed(&self) -> bool {
        match self {
            Conn::H1(send) => send.is_closed(),
            Conn::H2(send) => send.is_closed(),
        }
    }

    /// Waits until the service has closed this connection; false if it is
    /// still open after `within`.
    pub async fn closed_within(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.is_closed() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.is_closed()
    }
}
