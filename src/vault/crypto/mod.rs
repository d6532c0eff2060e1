//! Envelope encryption: a key-encrypting key wraps versioned data keys; data
//! keys seal fields with AES-256-GCM; a separate key makes fingerprints.

pub(in crate::vault) mod aad;
pub(in crate::vault) mod envelope;
pub(in crate::vault) mod fingerprint;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    #[error(transparent)]
    Random(#[from] crate::domain::random::RandomUnavailable),
    #[error("encryption failed")]
    Seal,
    #[error("ciphertext does not open: it belongs to another record, field or key version, or was altered")]
    Open,
    #[error("ciphertext is malformed")]
    Malformed,
    #[error("data key version {0} is unknown to this vault")]
    UnknownKeyVersion(u32),
    #[error("data key version {0} is retired: it can neither seal nor open")]
    RetiredKeyVersion(u32),
    #[error("the key-encrypting key does not open the stored keys: wrong KEK for this data directory")]
    WrongKek,
    #[error("development KEK file: cannot {what}: {source}")]
    KekFile {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("development KEK file is readable by group or others (mode {mode:o}); chmod 600 it")]
    KekFilePermissions { mode: u32 },
    #[error("development KEK file must hold 64 hex digits")]
    KekFileFormat,
}
