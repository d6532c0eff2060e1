//! `tokenvault bank-sim`: a bank quick-pay channel (and SMS carrier) as its
//! own mutual-TLS server, with its own cardholder records and fault
//! injection. The vault's gateway talks to it over the network exactly as it
//! would to a bank; state is in memory and starts afresh with the process.

mod bank;
pub mod cardholders;
pub mod faults;
mod notify;
mod payments;
mod routes;
pub mod seed;
pub mod statement;

pub use faults::{Faults, PayMode, VerifyMode};

use crate::api::Metrics;
use crate::server::listener::{self, Limits, Listening, Serving};
use crate::tls::{ReloadableTls, TlsFiles};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    #[error("cardholders: {0}")]
    Cardholders(#[from] cardholders::CardholderError),
    #[error("TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("faults: {0}")]
    Faults(&'static str),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: SocketAddr, reason: String },
}

pub struct SimConfig {
    pub listen: SocketAddr,
    pub tls: TlsFiles,
    /// `None`: the embedded sample cardholders.
    pub cardholders: Option<PathBuf>,
    pub faults: Faults,
    /// Serve the SMS outbox on the admin API (tests only).
    pub expose_sms: bool,
    /// The identity allowed to make quick-pay and carrier calls.
    pub client_identity: String,
    /// The identity allowed to call `/sim/admin/*`.
    pub admin_identity: String,
    /// The key notifications are signed with (`channel::signature`).
    pub signing_key: crate::ed25519::SigningKey,
}

pub struct RunningSim {
    pub addr: SocketAddr,
    listening: Listening,
    tls: Arc<ReloadableTls>,
}

impl RunningSim {
    /// Re-reads the simulator's certificate, CA and CRL (SIGHUP): new
    /// handshakes use them, and open connections of a now-revoked client
    /// are closed, as in the service.
    pub fn reload_tls(&self) -> Result<(), crate::tls::TlsError> {
        self.tls.reload()
    }

    pub async fn stop(self) {
        self.listening.stop().await;
    }
}

pub async fn start(config: SimConfig) -> Result<RunningSim, SimError> {
    config.faults.check().map_err(SimError::Faults)?;
    let holders = match &config.cardholders {
        Some(path) => cardholders::from_file(path)?,
        None => cardholders::embedded()?,
    };
    // The bank posts notifications with the certificate it serves with
    // (it carries the clientAuth usage and the bank's SPIFFE identity).
    let notify_tls = crate::channel::ClientTls {
        ca_cert: config.tls.ca_cert.clone(),
        crl: Some(config.tls.crl.clone()),
        cert: config.tls.server_cert.clone(),
        key: config.tls.server_key.clone(),
    };
    let sim = Arc::new(routes::Sim {
        bank: bank::Bank::new(holders, config.faults),
        client_identity: config.client_identity,
        admin_identity: config.admin_identity,
        expose_sms: config.expose_sms,
        notify_tls,
        signing_key: config.signing_key,
    });
    let tls = Arc::new(ReloadableTls::load(config.tls)?);
    let serving = Serving {
        router: std::sync::Arc::new(crate::server::listener::RouterSlot::new(routes::router(sim))),
        tls: Arc::clone(&tls),
        metrics: Arc::new(Metrics::default()),
        limits: Limits {
            connections: 1024,
            handshakes: 256,
            per_source: 0,
            handshake: Duration::from_secs(5),
            lifetimes: crate::server::listener::Lifetimes::default(),
        },
        // The simulator keeps no audit trail: counted and dropped.
        failed_handshakes: Arc::default(),
    };
    let listen_err = |e: std::io::Error| SimError::Listen {
        addr: config.listen,
        reason: e.to_string(),
    };
    let tcp = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(listen_err)?;
    let listening = listener::spawn(tcp, serving).map_err(listen_err)?;
    Ok(RunningSim {
        addr: listening.addr,
        listening,
        tls,
    })
}
