//! The service's TLS files from the `[tls]` settings: each one configured,
//! or the development PKI's in `keys_dir`.

use super::layout::PkiLayout;
use super::TlsFiles;
use crate::config::TlsSection;
use std::path::Path;

impl TlsFiles {
    pub fn from_settings(tls: &TlsSection, keys_dir: &Path) -> Self {
        let dev = PkiLayout::new(keys_dir);
        TlsFiles {
            ca_cert: tls.ca_cert.clone().unwrap_or_else(|| dev.ca_cert()),
            server_cert: tls.server_cert.clone().unwrap_or_else(|| dev.server_cert()),
            server_key: tls.server_key.clone().unwrap_or_else(|| dev.server_key()),
            crl: tls.crl.clone().unwrap_or_else(|| dev.crl()),
            allow_tls12: tls.allow_tls12,
        }
    }

    /// True when no TLS file is configured: the development PKI is used.
    pub fn all_development(tls: &TlsSection) -> bool {
        tls.ca_cert.is_none() && tls.server_cert.is_none() && tls.server_key.is_none() && tls.crl.is_none()
    }
}
