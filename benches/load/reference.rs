//! The durable-write reference: a minimal server, run as a child process of
//! the harness (this binary again, with `--reference-server KEYS_DIR`), on
//! the service's stack and TLS settings (tokio, hyper-util serving HTTP/1.1
//! and HTTP/2, axum, the service's own rustls configuration: mutual TLS,
//! CRL checked, no resumption). Per `POST /v1/cards` it does only what a
//! durable card store cannot avoid: parse the JSON, HMAC-SHA256 the PAN,
//! AES-256-GCM seal it, one sled insert, and the same group-commit
//! durability wait as the vault's store (`SledStore::commit`). No audit
//! record, no idempotency record, no policy: the row it gives is the
//! machine's own bound for durable writes on this stack, and store card is
//! reported as a share of it.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use ring::rand::{SecureRandom, SystemRandom};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use tokenvault::store::{Batch, SledStore, Store};
use tokenvault::tls::layout::PkiLayout;
use tokenvault::tls::TlsFiles;
use tower::ServiceExt;

pub const FLAG: &str = "--reference-server";
const ANNOUNCE: &str = "reference listening on ";

struct Reference {
    store: SledStore,
    cipher: Aes256Gcm,
    mac_key: ring::hmac::Key,
    rng: SystemRandom,
}

#[derive(serde::Deserialize)]
struct CardBody {
    pan: String,
}

/// The reference server as a child process, and its address.
pub struct Running {
    child: Child,
    pub addr: SocketAddr,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the reference with the service's PKI in `keys_dir`, its sled
/// store under `data_dir`.
pub fn spawn(keys_dir: &Path, data_dir: &Path) -> Running {
    let exe = std::env::current_exe().expect("the harness binary");
    let mut child = Command::new(exe)
        .arg(FLAG)
        .arg(keys_dir)
        .arg(data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("reference server starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("reference announces its address");
    let addr = line
        .trim()
        .strip_prefix(ANNOUNCE)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("reference server said {line:?}"));
    Running { child, addr }
}

/// The child's main: serves until killed.
pub fn serve(keys_dir: &Path, data_dir: &Path) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let keys = PkiLayout::new(keys_dir);
        let tls = tokenvault::tls::build(&TlsFiles {
            ca_cert: keys.ca_cert(),
            server_cert: keys.server_cert(),
            server_key: keys.server_key(),
            crl: keys.crl(),
            allow_tls12: false,
        })
        .expect("the service's TLS configuration");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let rng = SystemRandom::new();
        let mut key = [0u8; 32];
        rng.fill(&mut key).expect("random key");
        let reference = Arc::new(Reference {
            store: SledStore::open(data_dir).expect("reference sled store"),
            cipher: Aes256Gcm::new_from_slice(&key).expect("32-byte key"),
            mac_key: ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &rng).expect("MAC key"),
            rng,
        });
        let router = Router::new()
            .route("/v1/cards", axum::routing::post(store_card))
            .with_state(reference);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        println!("{ANNOUNCE}{}", listener.local_addr().expect("address"));
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let (acceptor, router) = (acceptor.clone(), router.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |request| router.clone().oneshot(request));
                let _ = Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
}

async fn store_card(State(r): State<Arc<Reference>>, body: Bytes) -> Response {
    let Ok(card) = serde_json::from_slice::<CardBody>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let fingerprint = ring::hmac::sign(&r.mac_key, card.pan.as_bytes());
    let card_ref: String = fingerprint.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let key = format!("card/{card_ref}");
    let mut nonce = [0u8; 12];
    if r.rng.fill(&mut nonce).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let Ok(sealed) = r.cipher.encrypt(
        Nonce::from_slice(&nonce),
        Payload {
            msg: card.pan.as_bytes(),
            aad: key.as_bytes(),
        },
    ) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut value = nonce.to_vec();
    value.extend_from_slice(&sealed);
    let mut batch = Batch::new();
    batch.put(key, value);
    match r.store.commit(batch).await {
        Ok(()) => (
            StatusCode::CREATED,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            format!("{{\"card_ref\":\"{card_ref}\"}}"),
        )
            .into_response(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}
