//! The rustls server configuration: mutual TLS against the configured CA,
//! CRLs checked on every handshake, no session resumption (so no connection
//! skips the revocation check), TLS 1.3 only unless 1.2 is configured.
//! Rebuilt from the files on reload; a failed reload keeps the old one.
//! A CRL past its `nextUpdate` is refused at start and reload, and a
//! handshake after it fails (fail closed). Each reload bumps a generation
//! that open connections watch, re-checking their peer's chain against the
//! new trust anchors and CRL (`still_trusts`).

use crate::pem::{self, PemError};
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::{RootCertStore, ServerConfig};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use tokio::sync::watch;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub crl: PathBuf,
    /// Accept TLS 1.2 as well as 1.3. Nothing older is ever offered.
    pub allow_tls12: bool,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error(transparent)]
    Pem(#[from] PemError),
    #[error("{what}: {reason}")]
    Config { what: &'static str, reason: String },
    #[error(
        "{path}: the CRL's nextUpdate ({next_update}, Unix seconds) has passed: issue a fresh CRL and reload"
    )]
    CrlExpired { path: String, next_update: i64 },
    #[error("{path}: a CRL that cannot be read: {reason}")]
    CrlUnreadable { path: String, reason: String },
}

fn config_err(what: &'static str) -> impl Fn(rustls::Error) -> TlsError {
    move |e| TlsError::Config {
        what,
        reason: e.to_string(),
    }
}

/// The earliest `nextUpdate` of the CRLs in `path` (Unix seconds), or
/// `None` for a CRL that names none. Refuses one that has passed.
pub fn crl_next_update(
    path: &Path,
    crls: &[CertificateRevocationListDer<'_>],
    now: i64,
) -> Result<Option<i64>, TlsError> {
    let mut earliest: Option<i64> = None;
    for der in crls {
        let (_, crl) = x509_parser::parse_x509_crl(der.as_ref()).map_err(|e| TlsError::CrlUnreadable {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        if let Some(next) = crl.next_update() {
            let next = next.timestamp();
            if next <= now {
                return Err(TlsError::CrlExpired {
                    path: path.display().to_string(),
                    next_update: next,
                });
            }
            earliest = Some(earliest.map_or(next, |e| e.min(next)));
        }
    }
    Ok(earliest)
}

/// How early a CRL's coming expiry is logged (the metric shows it always).
const CRL_WARN_S: i64 = 7 * 86_400;

fn now_unix() -> i64 {
    i64::try_from(UnixTime::now().as_secs()).unwrap_or(i64::MAX)
}

/// A CA's certificates as rustls roots.
pub fn roots(ca_cert: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for ca in pem::certificates(ca_cert)? {
        roots.add(ca).map_err(config_err("CA certificate"))?;
    }
    Ok(roots)
}

/// A verifier of a bank's server certificate: the configured CA, and the
/// configured CRL (refused once past its `nextUpdate`).
pub fn server_verifier(
    ca_cert: &Path,
    crl: Option<&Path>,
) -> Result<Arc<rustls::client::WebPkiServerVerifier>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut builder =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots(ca_cert)?), provider);
    if let Some(path) = crl {
        let crls = pem::crls(path)?;
        crl_next_update(path, &crls, now_unix())?;
        builder = builder.with_crls(crls).enforce_revocation_expiration();
    }
    let verifier = builder.build().map_err(|e| TlsError::Config {
        what: "bank certificate verifier",
        reason: e.to_string(),
    })?;
    Ok(verifier)
}

/// One load of the files: the configuration new connections use, the
/// verifier open connections are re-checked with, and the CRL's expiry.
pub struct Loaded {
    pub config: Arc<ServerConfig>,
    verifier: Arc<dyn ClientCertVerifier>,
    pub crl_next_update: Option<i64>,
}

pub fn build(files: &TlsFiles) -> Result<ServerConfig, TlsError> {
    load(files).map(|loaded| Arc::unwrap_or_clone(loaded.config))
}

fn load(files: &TlsFiles) -> Result<Loaded, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = roots(&files.ca_cert)?;
    let crls = pem::crls(&files.crl)?;
    let now = now_unix();
    let crl_next_update = crl_next_update(&files.crl, &crls, now)?;
    if let Some(next) = crl_next_update.filter(|next| next - now < CRL_WARN_S) {
        tracing::warn!(crl = %files.crl.display(), seconds_left = next - now, "the CRL expires within 7 days: issue a fresh one and reload, or every handshake will fail");
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
        .with_crls(crls)
        .enforce_revocation_expiration()
        .build()
        .map_err(|e| TlsError::Config {
            what: "client verifier",
            reason: e.to_string(),
        })?;
    let versions: &[&rustls::SupportedProtocolVersion] = if files.allow_tls12 {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13]
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(config_err("protocol versions"))?
        .with_client_cert_verifier(Arc::clone(&verifier))
        .with_single_cert(
            pem::certificates(&files.server_cert)?,
            pem::private_key(&files.server_key)?,
        )
        .map_err(config_err("server certificate"))?;
    // Every connection is a full handshake with a fresh revocation check.
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Loaded {
        config: Arc::new(config),
        verifier,
        crl_next_update,
    })
}

/// The configuration new connections use, swappable at run time.
pub struct ReloadableTls {
    files: TlsFiles,
    current: RwLock<Arc<Loaded>>,
    /// Bumped after each successful reload, once the new files are current.
    generation: watch::Sender<u64>,
}

/// Certificates, key and CRL read and checked by `ReloadableTls::prepare`.
pub struct PreparedTls(Arc<Loaded>);

impl ReloadableTls {
    pub fn load(files: TlsFiles) -> Result<Self, TlsError> {
        let loaded = Arc::new(load(&files)?);
        Ok(ReloadableTls {
            files,
            current: RwLock::new(loaded),
            generation: watch::Sender::new(0),
        })
    }

    fn loaded(&self) -> Arc<Loaded> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn current(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.loaded().config)
    }

    /// The earliest `nextUpdate` of the CRL in use (Unix seconds).
    pub fn crl_next_update(&self) -> Option<i64> {
        self.loaded().crl_next_update
    }

    /// Re-reads certificates, key and CRL. New connections use the new
    /// files at once; open ones are told (`generations`) and re-check their
    /// peer. On error nothing changes.
    pub fn reload(&self) -> Result<(), TlsError> {
        let prepared = self.prepare()?;
        self.apply(prepared);
        Ok(())
    }

    /// The files read and checked, not yet in use (`apply` puts them in).
    pub fn prepare(&self) -> Result<PreparedTls, TlsError> {
        Ok(PreparedTls(Arc::new(load(&self.files)?)))
    }

    pub fn apply(&self, prepared: PreparedTls) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = prepared.0;
        self.generation.send_modify(|g| *g += 1);
    }

    /// The reload count, and a receiver that wakes on each reload.
    pub fn generations(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    pub fn generation(&self) -> u64 {
        *self.generation.borrow()
    }

    /// Whether a peer chain (end entity first) verified at its handshake
    /// still verifies against the files now in use: its CA still trusted,
    /// its certificate not revoked, still within its validity.
    pub fn still_trusts(&self, chain: &[CertificateDer<'static>]) -> bool {
        let Some((end_entity, intermediates)) = chain.split_first() else {
            return false;
        };
        self.loaded()
            .verifier
            .verify_client_cert(end_entity, intermediates, UnixTime::now())
            .is_ok()
    }
}
