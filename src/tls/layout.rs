//! Where the certificates and keys of a PKI live in a keys folder, and the
//! names of the roles and services it issues for. Always compiled: the
//! service reads these files whoever made them; only the development PKI
//! that writes them (`pki`) is optional.

use crate::ed25519::SigningKey;
use secrecy::SecretBox;
use std::path::PathBuf;

/// The roles a development PKI issues client certificates for.
pub const ROLES: [&str; 8] = [
    "card-capture",
    "orchestrator",
    "auditor",
    "key-admin",
    "monitor",
    "break-glass",
    "reveal-approver",
    "reconciler",
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

    /// The seed (hex, mode 0600) of the key bank-sim signs its
    /// notifications with (`channel::signature`).
    pub fn bank_sim_signing_seed(&self) -> PathBuf {
        self.dir.join("bank-sim-signing.seed")
    }

    /// Its public key (PEM): what a channel's `notify_public_key` pins.
    pub fn bank_sim_signing_public(&self) -> PathBuf {
        self.dir.join("bank-sim-signing.pub.pem")
    }

    /// bank-sim's signing key, made (seed and public key) when the folder
    /// has none yet. Two processes making it at once keep the first seed:
    /// the seed file is created only if absent.
    pub fn bank_sim_signing_key(&self) -> Result<SigningKey, SigningKeyError> {
        let seed_path = self.bank_sim_signing_seed();
        let err = |e: std::io::Error| SigningKeyError::Io {
            path: seed_path.display().to_string(),
            reason: e.to_string(),
        };
        if !seed_path.exists() {
            // Only if absent (another process may make it first): a reader
            // never sees half a seed.
            let fresh = zeroize::Zeroizing::new(
                crate::domain::random::array::<32>().map_err(|_| SigningKeyError::Random)?,
            );
            let text = zeroize::Zeroizing::new(crate::hex::encode(&fresh[..]));
            crate::atomic_file::write_new(&seed_path, text.as_bytes(), 0o600).map_err(err)?;
        }
        let text = zeroize::Zeroizing::new(std::fs::read_to_string(&seed_path).map_err(err)?);
        let mut seed = Box::new([0u8; 32]);
        crate::hex::decode_into(text.trim(), &mut seed[..]).ok_or(SigningKeyError::Seed {
            path: seed_path.display().to_string(),
        })?;
        let key = SigningKey::from_seed(SecretBox::new(seed)).map_err(|_| SigningKeyError::Seed {
            path: seed_path.display().to_string(),
        })?;
        let public_path = self.bank_sim_signing_public();
        let pem = key.public_key().to_pem();
        if std::fs::read_to_string(&public_path).ok().as_deref() != Some(pem.as_str()) {
            crate::atomic_file::write(&public_path, pem.as_bytes(), 0o644).map_err(|e| {
                SigningKeyError::Io {
                    path: public_path.display().to_string(),
                    reason: e.to_string(),
                }
            })?;
        }
        Ok(key)
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SigningKeyError {
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
    #[error("{path}: not an Ed25519 seed of 64 hex digits")]
    Seed { path: String },
    #[error("the operating system's random generator failed")]
    Random,
}
