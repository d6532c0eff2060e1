//! Starting the vault service: PKI, keys, store, vault, policies and the
//! mutual-TLS listener (see `listener`), with graceful shutdown.

mod admission;
mod core;
pub mod failed_handshakes;
mod hardening;
mod leases;
pub mod listener;
mod maintenance;
mod period;
mod sealed;
pub mod settings;
mod standing;
pub mod trail_copies;

pub use hardening::forbid_core_dumps;

use crate::api::{App, Metrics};
use crate::config::{KekCustody, ServiceConfig};
use crate::policy::PolicySet;
use crate::store::Backend;
#[cfg(feature = "dev-pki")]
use crate::tls::pki;
use crate::tls::{ReloadableTls, TlsFiles};
use crate::vault::keys::kek::Kek;
use listener::{Limits, Listening, Serving};
use settings::LayerSettings;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[cfg(feature = "dev-pki")]
    #[error("development PKI: {0}")]
    Pki(#[from] pki::PkiError),
    #[error("key-encrypting key: {0}")]
    Kek(#[from] crate::vault::crypto::CryptoError),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Lease(#[from] leases::LeaseError),
    #[error(transparent)]
    AuditSink(#[from] crate::audit::SinkError),
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
    core: Arc<core::ServiceCore>,
    listening: Listening,
}

impl RunningServer {
    /// The open service, or `None` while it is sealed.
    pub fn app(&self) -> Option<Arc<App>> {
        self.core.app()
    }

    /// Stops accepting, lets open connections finish (up to 10 s), returns
    /// once the accept loop has ended.
    pub async fn shutdown(self) {
        self.listening.stop().await;
        self.core.stop_tasks();
        self.core.audit_stop().await;
    }
}

/// SIGHUP while sealed: certificates and CRL only.
pub fn reload_tls_while_sealed(server: &RunningServer) -> Result<(), crate::tls::TlsError> {
    server.core.tls().reload()
}

/// The connection lifetimes `[limits]` sets.
fn lifetimes(limits: &crate::config::LimitsSection) -> listener::Lifetimes {
    let ms = std::time::Duration::from_millis;
    listener::Lifetimes {
        idle: ms(limits.idle_timeout_ms),
        max_age: ms(limits.max_connection_age_ms),
        revoked_close: ms(limits.revoked_close_ms),
        keepalive_interval: ms(limits.http2_keepalive_interval_ms),
        keepalive_timeout: ms(limits.http2_keepalive_timeout_ms),
    }
}

fn ensure_dir(path: &std::path::Path) -> Result<(), ServeError> {
    std::fs::create_dir_all(path).map_err(|e| ServeError::Dir {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// Opens the vault (or starts sealed, with share custody) and listens.
pub async fn start(config: &ServiceConfig) -> Result<RunningServer, ServeError> {
    let files = TlsFiles::from_settings(&config.tls, &config.keys_dir);
    #[cfg(feature = "dev-pki")]
    {
        let dev_pki = pki::PkiLayout::new(&config.keys_dir);
        if TlsFiles::all_development(&config.tls) && config.tls.create_dev_pki && !dev_pki.is_complete() {
            ensure_dir(&config.keys_dir)?;
            tracing::warn!(dir = %config.keys_dir.display(), "creating a DEVELOPMENT PKI (CA, server and client certificates, CRL): not for production");
            pki::init(&dev_pki, false)?;
        } else if TlsFiles::all_development(&config.tls) && dev_pki.is_complete() {
            // The development CRL lives 30 days; a fresh signature at each
            // start keeps a checkout working (an expired CRL is refused).
            pki::refresh_crl(&dev_pki)?;
        }
    }
    // A build without the development PKI never writes certificates; with
    // none in place the TLS files fail to load below, naming the file.
    let tls = Arc::new(ReloadableTls::load(files)?);
    let policies = PolicySet::load_dir(&config.policies_dir)?;
    ensure_dir(&config.keys_dir)?;
    ensure_dir(&config.data_dir)?;
    if let Some(dir) = &config.audit.anchor_dir {
        ensure_dir(dir)?;
    }
    // Validated before the listener opens, so a bad file fails the start.
    let layers = LayerSettings::build(config)?;
    let store = Backend::open(&config.data_dir, &config.store).await?;
    tracing::info!(backend = store.describe(), "store opened");
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
    let metrics = Arc::new(Metrics::default());
    let core = Arc::new(core::ServiceCore::new(
        config.clone(),
        layers,
        store,
        Arc::clone(&tls),
        Arc::clone(&metrics),
        addr,
    ));
    match config.kek.custody {
        KekCustody::DevFile => {
            let kek = Kek::from_dev_file(&config.kek_file())?;
            core.open(kek, &[]).await?;
        }
        KekCustody::Shares => {
            let custody = crate::vault::load_custody(core.store())
                .await?
                .map(|c| (c.kek_version, c.manifest));
            tracing::warn!(
                "SEALED: data operations answer 503 until custodians submit enough KEK shares (tokenvault keys unseal)"
            );
            let limits = sealed::UnsealLimits {
                per_identity: config.kek.unseal_per_identity,
                per_node: config.kek.unseal_per_node,
                window: std::time::Duration::from_secs(config.kek.unseal_window_s),
            };
            core.seal(sealed::Sealed::new(Arc::clone(&core), policies, custody, limits));
        }
    }
    let serving = Serving {
        router: core.router_slot(),
        tls,
        metrics,
        limits: Limits {
            connections: config.limits.max_connections,
            handshakes: config.limits.max_handshakes,
            per_source: config.limits.per_source_connections,
            handshake: config.handshake_timeout(),
            lifetimes: lifetimes(&config.limits),
        },
        failed_handshakes: core.failed_handshakes(),
    };
    let listening = listener::spawn(listener, serving).map_err(|e| ServeError::Listen {
        addr: config.listen,
        reason: e.to_string(),
    })?;
    Ok(RunningServer {
        addr: listening.addr,
        core,
        listening,
    })
}
