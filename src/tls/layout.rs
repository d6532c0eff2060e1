//! Where the certificates and keys of a PKI live in a keys folder, and the
//! names of the roles and services it issues for. Always compiled: the
//! service reads these files whoever made them; only the development PKI
//! that writes them (`pki`) is optional.

use std::path::PathBuf;

/// The roles a development PKI issues client certificates for.
pub const ROLES: [&str; 6] = [
    "card-capture",
    "orchestrator",
    "auditor",
    "key-admin",
    "monitor",
    "break-glass",
];
/// Client certificates for the vault's own outbound identities: `gateway`
/// (the vault calling bank channels) and `sim-admin` (tests and operators
/// driving the bank simulator's fault injection).
pub const SERVICE_CLIENTS: [&str; 2] = ["gateway", "sim-admin"];
/// The bank simulator's certificate: it serves (localhost, 127.0.0.1) and
/// also calls the vault with it (asynchronous notifications).
pub const BANK_SIM: &str = "bank-sim";
pub const TRUST_DOMAIN: &str = "tokenvault";

#[derive(Clone, Debug)]
pub struct PkiLayout {
    pub dir: PathBuf,
}

impl PkiLayout {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        PkiLayout { dir: dir.into() }
    }
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key.pem")
    }
    pub fn server_cert(&self) -> PathBuf {
        self.dir.join("server.pem")
    }
    pub fn server_key(&self) -> PathBuf {
        self.dir.join("server.key.pem")
    }
    pub fn client_cert(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.pem"))
    }
    pub fn client_key(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.key.pem"))
    }
    pub fn crl(&self) -> PathBuf {
        self.dir.join("crl.pem")
    }

    pub(super) fn all_files(&self) -> Vec<PathBuf> {
        let mut files = vec![
            self.ca_cert(),
            self.ca_key(),
            self.server_cert(),
            self.server_key(),
            self.crl(),
        ];
        for name in ROLES.into_iter().chain(SERVICE_CLIENTS).chain([BANK_SIM]) {
            files.push(self.client_cert(name));
            files.push(self.client_key(name));
        }
        files
    }

    /// Whether a complete development PKI is present.
    pub fn is_complete(&self) -> bool {
        self.all_files().iter().all(|f| f.exists())
    }
}
