//! Starting the vault service: PKI, keys, store, vault, policies and the
//! mutual-TLS listener (see `listener`), with graceful shutdown.

mod hardening;
pub mod listener;

pub use hardening::forbid_core_dumps;

use crate::api::{self, App};
use crate::config::ServiceConfig;
use crate::orchestration::Orchestrator;
use crate::policy::PolicySet;
use crate::store::SledStore;
use crate::tls::pki;
use crate::tls::ReloadableTls;
use crate::vault::crypto::kek::Kek;
use crate::vault::gateway::Gateway;
use crate::vault::Vault;
use listener::{Limits, Listening, Serving};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

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
    #[error("gateway: {0}")]
    Gateway(#[from] crate::vault::gateway::GatewayError),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: SocketAddr, reason: String },
    #[error("cannot create {path}: {reason}")]
    Dir { path: String, reason: String },
}

/// A started service. Dropping it does not stop it; call `shutdown`.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    listening: Listening,
    settler: tokio::task::JoinHandle<()>,
}

/// Settles unsettled payments every `payment.poll_interval_ms` (see
/// `orchestration::payment::settler`), as the `local:settler` actor.
fn spawn_settler(app: Arc<App>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let actor = crate::audit::Actor::local("settler");
        let mut tick = tokio::time::interval(app.orchestrator.payments.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match app.orchestrator.settle_open(&app.vault, &actor).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(settled = n, "settler pass"),
                Err(e) => tracing::warn!(error = %e, "settler pass failed"),
            }
        }
    })
}

impl RunningServer {
    /// Stops accepting, lets open connections finish (up to 10 s), returns
    /// once the accept loop has ended.
    pub async fn shutdown(self) {
        self.listening.stop().await;
        self.settler.abort();
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
    let gateway = Gateway::new(&config.gateway_config()?)?;
    let orchestrator = Orchestrator::new(gateway, config.orchestration_config()?);
    let app = Arc::new(App::new(
        vault,
        orchestrator,
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
    let serving = Serving {
        router: api::router(Arc::clone(&app)),
        tls: Arc::clone(&app.tls),
        metrics: Arc::clone(&app.metrics),
        limits: Limits {
            connections: config.limits.max_connections,
            handshake: config.handshake_timeout(),
        },
    };
    let listening = listener::spawn(listener, serving).map_err(|e| ServeError::Listen {
        addr: config.listen,
        reason: e.to_string(),
    })?;
    let notify_base = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("https://{}", listening.addr));
    app.orchestrator.gateway.set_notify_base(notify_base);
    let settler = spawn_settler(Arc::clone(&app));
    Ok(RunningServer {
        addr: listening.addr,
        app,
        listening,
        settler,
    })
}
