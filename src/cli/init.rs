//! `tokenvault init` and `tokenvault revoke` for the development PKI.

use super::Report;
use crate::tls::pki::{self, PkiLayout};
use std::path::Path;

pub(super) fn run(keys_dir: &Path, force: bool) -> Result<Report, String> {
    let layout = PkiLayout::new(keys_dir);
    pki::init(&layout, force).map_err(|e| e.to_string())?;
    Ok(Report::ok(format!(
        "development PKI written to {dir}: ca.pem, server.pem, crl.pem and client certificates for {roles} \
         (private keys *.key.pem, mode 0600). Not for production.",
        dir = keys_dir.display(),
        roles = pki::ROLES.join(", ")
    )))
}

pub(super) fn revoke(keys_dir: &Path, cert: &Path) -> Result<Report, String> {
    pki::revoke(&PkiLayout::new(keys_dir), cert).map_err(|e| e.to_string())?;
    Ok(Report::ok(format!(
        "{} revoked in {}; reload the service (SIGHUP or POST /v1/admin/reload) to apply",
        cert.display(),
        PkiLayout::new(keys_dir).crl().display()
    )))
}
