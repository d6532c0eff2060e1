//! The rustls server configuration: mutual TLS against the configured CA,
//! CRLs checked on every handshake, no session resumption (so no connection
//! skips the revocation check), TLS 1.3 only unless 1.2 is configured.
//! Rebuilt from the files on reload; a failed reload keeps the old one.

use super::pem::{self, PemError};
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::{RootCertStore, ServerConfig};
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};

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
}

fn config_err(what: &'static str) -> impl Fn(rustls::Error) -> TlsError {
    move |e| TlsError::Config {
        what,
        reason: e.to_string(),
    }
}

pub fn build(files: &TlsFiles) -> Result<ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for ca in pem::certificates(&files.ca_cert)? {
        roots.add(ca).map_err(config_err("CA certificate"))?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
        .with_crls(pem::crls(&files.crl)?)
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
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            pem::certificates(&files.server_cert)?,
            pem::private_key(&files.server_key)?,
        )
        .map_err(config_err("server certificate"))?;
    // Every connection is a full handshake with a fresh revocation check.
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The configuration new connections use, swappable at run time.
pub struct ReloadableTls {
    files: TlsFiles,
    current: RwLock<Arc<ServerConfig>>,
}

impl ReloadableTls {
    pub fn load(files: TlsFiles) -> Result<Self, TlsError> {
        let config = Arc::new(build(&files)?);
        Ok(ReloadableTls {
            files,
            current: RwLock::new(config),
        })
    }

    pub fn current(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Re-reads certificates, key and CRL. Existing connections keep going;
    /// new ones use the new files. On error nothing changes.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = Arc::new(build(&self.files)?);
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = fresh;
        Ok(())
    }
}
