//! `tokenvault init` and `tokenvault revoke` for the development PKI.

use super::Report;
use crate::tls::pki::{self, DevCa, PkiLayout, Validity};
use crate::tls::Identity;
use clap::Subcommand;
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug)]
pub(super) enum PkiCommand {
    /// Issue a client certificate for a service identity,
    /// spiffe://tokenvault/ROLE, from the development CA: a fresh P-256 key,
    /// written as NAME.pem and NAME.key.pem (mode 0600) in --out, never over
    /// an existing file. The policy file for ROLE decides what it may call.
    /// To rotate without downtime, issue a successor under a new NAME while
    /// the old one is valid, deploy it, then revoke the old one
    /// (`tokenvault revoke`) and reload. With an organisation's CA, issue
    /// the same shape: a URI SAN spiffe://<trust domain>/<role>, client
    /// authentication, a P-256 key.
    Issue {
        /// The identity's path: spiffe://tokenvault/<ROLE> (a role with a
        /// policy file, or a custodian's name).
        #[arg(long)]
        role: String,
        /// The certificate's common name and file name: 1 to 64 letters,
        /// digits, '.', '_' or '-' (e.g. orchestrator-2027-01).
        #[arg(long)]
        name: String,
        /// Days the certificate is valid, 1 to 398.
        #[arg(long, default_value_t = 90)]
        days: u16,
        #[arg(long, default_value = "keys")]
        keys_dir: PathBuf,
        /// Folder for the certificate and key. Default: --keys-dir.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub(super) fn pki(command: PkiCommand) -> Result<Report, String> {
    let PkiCommand::Issue {
        role,
        name,
        days,
        keys_dir,
        out,
    } = command;
    let uri = format!("spiffe://{}/{role}", crate::tls::layout::TRUST_DOMAIN);
    let identity = Identity::parse(&uri).map_err(|e| format!("--role {role}: {e}"))?;
    let name_ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !name_ok {
        return Err(format!("--name {name}: 1 to 64 letters, digits, '.', '_' or '-'"));
    }
    if !(1..=398).contains(&days) {
        return Err(format!("--days {days}: 1 to 398"));
    }
    let out = out.unwrap_or_else(|| keys_dir.clone());
    let key_path = out.join(format!("{name}.key.pem"));
    let cert_path = out.join(format!("{name}.pem"));
    if let Some(taken) = [&key_path, &cert_path].into_iter().find(|p| p.exists()) {
        return Err(format!(
            "{} exists: never overwritten; choose another --name",
            taken.display()
        ));
    }
    let layout = PkiLayout::new(&keys_dir);
    let ca = DevCa::load(&layout).map_err(|e| e.to_string())?;
    let (cert, key) = ca
        .issue_client(Some(&uri), &name, Validity::days_from_now(i64::from(days)))
        .map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    for (path, contents, mode) in [
        (&key_path, key.as_bytes(), 0o600),
        (&cert_path, cert.as_bytes(), 0o644),
    ] {
        let written = crate::atomic_file::write_new(path, contents, mode)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        if !written {
            return Err(format!(
                "{} exists: never overwritten; choose another --name",
                path.display()
            ));
        }
    }
    Ok(Report::ok(format!(
        "{identity} certificate {} (key {}), valid {days} days",
        cert_path.display(),
        key_path.display()
    )))
}

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
