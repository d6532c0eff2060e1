//! The listener: mutual TLS on every connection, a cap on open connections,
//! a handshake deadline, the caller's identity fixed per connection, HTTP/1.1
//! and HTTP/2 by ALPN, and graceful shutdown through a channel.

mod hardening;

pub use hardening::forbid_core_dumps;

use crate::api::{self, App, Peer};
use crate::config::ServiceConfig;
use crate::policy::PolicySet;
use crate::store::SledStore;
use crate::tls::pki;
use crate::tls::{Identity, IdentityError, ReloadableTls};
use crate::vault::crypto::kek::Kek;
use crate::vault::Vault;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// How long connections get to finish their requests at shutdown.
const DRAIN: Duration = Duration::from_secs(10);
/// A client must send a request's headers within this (slow-client guard).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("development PKI: {0}")]
    Pki(#[from] pki::PkiError),
    #[error("key-encrypting key: {0}")]
    Kek(#[from] crate::vault::crypto::CryptoError),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("vault: {0}")]
    Vault(#[from] crate::vault::VaultError),
    #[error("policies: {0}")]
    Policy(#[from] crate::policy::PolicyError),
    #[error("TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: SocketAddr, reason: String },
    #[error("cannot create {path}: {reason}")]
    Dir { path: String, reason: String },
}

/// A started service. Dropping it does not stop it; call `shutdown`.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    stop: watch::Sender<bool>,
    accept_loop: JoinHandle<()>,
}

impl RunningServer {
    /// Stops accepting, lets open connections finish (up to 10 s), returns
    /// once the accept loop has ended.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.accept_loop.await;
    }
}

fn ensure_dir(path: &std::path::Path) -> Result<(), ServeError> {
    std::fs::create_dir_all(path).map_err(|e| ServeError::Dir {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// Opens the vault and starts listening.
pub async fn start(config: &ServiceConfig) -> Result<RunningServer, ServeError> {
    let files = config.tls_files();
    let using_dev_pki = config.tls.ca_cert.is_none()
        && config.tls.server_cert.is_none()
        && config.tls.server_key.is_none()
        && config.tls.crl.is_none();
    if using_dev_pki && config.tls.create_dev_pki && !config.pki_layout().is_complete() {
        ensure_dir(&config.keys_dir)?;
        tracing::warn!(dir = %config.keys_dir.display(), "creating a DEVELOPMENT PKI (CA, server and client certificates, CRL): not for production");
        pki::init(&config.pki_layout(), false)?;
    }
    let tls = Arc::new(ReloadableTls::load(files)?);
    let policies = PolicySet::load_dir(&config.policies_dir)?;
    ensure_dir(&config.keys_dir)?;
    ensure_dir(&config.data_dir)?;
    let kek = Kek::from_dev_file(&config.kek_file())?;
    let store = SledStore::open(&config.data_dir)?;
    let vault = Vault::open(store, kek, config.vault_config()?).await?;
    let app = Arc::new(App::new(
        vault,
        policies,
        config.policies_dir.clone(),
        tls,
        config.limits.reveals_per_hour,
        config.limits.body_limit_bytes,
        config.request_timeout(),
    ));
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| ServeError::Listen {
            addr: config.listen,
            reason: e.to_string(),
        })?;
    let addr = listener.local_addr().map_err(|e| ServeError::Listen {
        addr: config.listen,
        reason: e.to_string(),
    })?;
    let (stop, stopped) = watch::channel(false);
    let limits = Limits {
        connections: config.limits.max_connections,
        handshake: config.handshake_timeout(),
    };
    let accept_loop = tokio::spawn(accept_loop(listener, Arc::clone(&app), limits, stopped));
    Ok(RunningServer {
        addr,
        app,
        stop,
        accept_loop,
    })
}

#[derive(Clone, Copy)]
struct Limits {
    connections: usize,
    handshake: Duration,
}

async fn accept_loop(
    listener: TcpListener,
    app: Arc<App>,
    limits: Limits,
    mut stopped: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(limits.connections));
    let router = api::router(Arc::clone(&app));
    loop {
        let (tcp, origin) = tokio::select! {
            _ = stopped.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            app.metrics.connection_refused();
            drop(tcp);
            continue;
        };
        let acceptor = TlsAcceptor::from(app.tls.current());
        tokio::spawn(connection(
            Arc::clone(&app),
            router.clone(),
            acceptor,
            tcp,
            origin,
            slot,
            limits.handshake,
            stopped.clone(),
        ));
    }
    drop(listener);
    // Every slot back means every connection has ended.
    let all = u32::try_from(limits.connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(DRAIN, slots.acquire_many(all)).await;
}

#[allow(clippy::too_many_arguments)]
async fn connection(
    app: Arc<App>,
    router: axum::Router,
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    origin: SocketAddr,
    _slot: OwnedSemaphorePermit,
    handshake: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    let _ = tcp.set_nodelay(true);
    let tls = match tokio::time::timeout(handshake, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            app.metrics.handshake_failed();
            tracing::info!(%origin, error = %e, "TLS handshake refused");
            return;
        }
        Err(_) => {
            app.metrics.handshake_failed();
            tracing::info!(%origin, "TLS handshake timed out");
            return;
        }
    };
    let identity = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map_or(Err(IdentityError::NoIdentity), |cert| {
            Identity::from_certificate(cert.as_ref())
        });
    if let Err(e) = &identity {
        tracing::warn!(%origin, error = %e, "client certificate verified but carries no usable identity");
    }
    let peer = Peer { identity, origin };
    let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(peer.clone());
        router.clone().oneshot(request)
    });
    app.metrics.connection_opened();
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder.http2().timer(TokioTimer::new());
    let serving = builder.serve_connection(TokioIo::new(tls), service);
    tokio::pin!(serving);
    tokio::select! {
        result = serving.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(%origin, error = %e, "connection ended with an error");
            }
        }
        _ = stopped.changed() => {
            serving.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(DRAIN, serving.as_mut()).await;
        }
    }
    app.metrics.connection_closed();
}
