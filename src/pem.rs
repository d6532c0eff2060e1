//! Reading certificates, keys and CRLs from PEM files, with errors that name
//! the file.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PemError {
    #[error("{path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{path}: holds no {what}")]
    Empty { path: String, what: &'static str },
}

fn read_err(path: &Path, e: impl std::fmt::Display) -> PemError {
    PemError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| read_err(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| read_err(path, e))?;
    if certs.is_empty() {
        return Err(PemError::Empty {
            path: path.display().to_string(),
            what: "certificate",
        });
    }
    Ok(certs)
}

pub fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, PemError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| read_err(path, e))
}

/// An absent CRL file is an error: running without revocation must be a
/// decision, not an accident of a missing file.
pub fn crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, PemError> {
    CertificateRevocationListDer::pem_file_iter(path)
        .map_err(|e| read_err(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| read_err(path, e))
}
