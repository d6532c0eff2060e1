//! `[tls]`: the service's own certificates and CRL (default: the
//! development PKI in `keys_dir`). The TLS layer turns this into files
//! (`tls::TlsFiles::from_settings`).

use serde::Deserialize;
use std::path::PathBuf;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSection {
    /// Defaults: the development PKI files in `keys_dir`.
    pub ca_cert: Option<PathBuf>,
    pub server_cert: Option<PathBuf>,
    pub server_key: Option<PathBuf>,
    pub crl: Option<PathBuf>,
    /// TLS 1.3 only unless this is true; nothing below 1.2 is ever offered.
    pub allow_tls12: bool,
    /// Create the development PKI in `keys_dir` on first start when the
    /// configured files are missing. Default true; set false in production.
    pub create_dev_pki: bool,
}

impl Default for TlsSection {
    fn default() -> Self {
        TlsSection {
            ca_cert: None,
            server_cert: None,
            server_key: None,
            crl: None,
            allow_tls12: false,
            create_dev_pki: true,
        }
    }
}
