//! The key-encrypting key. It wraps the data keys, the fingerprint, audit and
//! pepper keys, and nothing else. Production assembles it from custodian
//! shares (`shares`, `crate::vault::keys::custody`); this module also provides the
//! development key file, which says so loudly at every start.

use crate::domain::random;
use crate::vault::crypto::aad::Binding;
use crate::vault::crypto::envelope::SealingKey;
use crate::vault::crypto::CryptoError;
use secrecy::SecretBox;
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use zeroize::Zeroizing;

/// The development file's KEK, and the first KEK of a share set, is version
/// 1; each KEK rotation adds one. The version is part of the wrapping AAD so
/// a later KEK cannot be confused with an earlier one.
const FIRST_KEK_VERSION: u32 = 1;

pub struct Kek {
    sealer: SealingKey,
}

impl Kek {
    pub fn from_bytes(bytes: SecretBox<[u8; 32]>) -> Self {
        Self::with_version(FIRST_KEK_VERSION, &bytes)
    }

    pub fn with_version(version: u32, bytes: &SecretBox<[u8; 32]>) -> Self {
        Kek {
            sealer: SealingKey::new(version, bytes),
        }
    }

    pub fn version(&self) -> u32 {
        self.sealer.version()
    }

    /// A fresh random KEK, for tests and first-time development set-up.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut raw = Box::new([0u8; 32]);
        random::fill(&mut raw[..])?;
        Ok(Self::from_bytes(SecretBox::new(raw)))
    }

    /// Reads the development KEK from `path`, creating it (mode 0600) when
    /// missing. Refuses a file that group or others can read. Logs a warning
    /// every time: a KEK on the same disk as the data protects nothing against
    /// someone who copies the disk.
    pub fn from_dev_file(path: &Path) -> Result<Self, CryptoError> {
        tracing::warn!(
            path = %path.display(),
            "DEVELOPMENT KEY-ENCRYPTING KEY read from a plain file next to the data: \
             not for production, where the KEK is assembled from custodian shares"
        );
        let kek_err = |what: &'static str| move |e: std::io::Error| CryptoError::KekFile { what, source: e };
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(mut file) => {
                let raw = random::array::<32>()?;
                let text = Zeroizing::new(format!("{}\n", crate::hex::encode(&raw)));
                file.write_all(text.as_bytes()).map_err(kek_err("write"))?;
                file.sync_all().map_err(kek_err("sync"))?;
                tracing::warn!(path = %path.display(), "created a new development KEK");
                return Ok(Self::from_bytes(SecretBox::new(Box::new(raw))));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(kek_err("create")(e)),
        }
        let mut file = OpenOptions::new()
            .read(true)
            .open(path)
            .map_err(kek_err("open"))?;
        let mode = file.metadata().map_err(kek_err("stat"))?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(CryptoError::KekFilePermissions { mode: mode & 0o777 });
        }
        let mut text = Zeroizing::new(String::new());
        file.read_to_string(&mut text).map_err(kek_err("read"))?;
        let mut raw = Box::new([0u8; 32]);
        crate::hex::decode_into(text.trim(), &mut raw[..]).ok_or(CryptoError::KekFileFormat)?;
        Ok(Self::from_bytes(SecretBox::new(raw)))
    }

    pub(in crate::vault) fn wrap(
        &self,
        binding: &Binding<'_>,
        key: &SecretBox<[u8; 32]>,
    ) -> Result<Vec<u8>, CryptoError> {
        use secrecy::ExposeSecret;
        self.sealer.seal(binding, key.expose_secret())
    }

    /// Any failure here means the KEK is not the one that wrapped the key.
    pub(in crate::vault) fn unwrap(
        &self,
        binding: &Binding<'_>,
        wrapped: &[u8],
    ) -> Result<SecretBox<[u8; 32]>, CryptoError> {
        let plain = self
            .sealer
            .open(binding, wrapped)
            .map_err(|_| CryptoError::WrongKek)?;
        let mut raw = Box::new([0u8; 32]);
        if plain.len() != raw.len() {
            return Err(CryptoError::WrongKek);
        }
        raw.copy_from_slice(&plain);
        Ok(SecretBox::new(raw))
    }
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_file_is_created_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev-kek.hex");
        let first = Kek::from_dev_file(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let second = Kek::from_dev_file(&path).unwrap();
        let b = Binding {
            kind: crate::vault::crypto::aad::RecordKind::DataKey,
            record_id: "1",
            field: "key",
        };
        let dek = SecretBox::new(Box::new([5u8; 32]));
        let wrapped = first.wrap(&b, &dek).unwrap();
        assert!(second.unwrap(&b, &wrapped).is_ok(), "same file, same KEK");
        let other = Kek::generate().unwrap();
        assert!(matches!(other.unwrap(&b, &wrapped), Err(CryptoError::WrongKek)));
    }

    #[test]
    fn readable_by_others_or_garbled_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev-kek.hex");
        Kek::from_dev_file(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            Kek::from_dev_file(&path),
            Err(CryptoError::KekFilePermissions { mode: 0o644 })
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, "not hex").unwrap();
        assert!(matches!(
            Kek::from_dev_file(&path),
            Err(CryptoError::KekFileFormat)
        ));
    }
}
