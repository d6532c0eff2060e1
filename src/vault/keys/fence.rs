//! Key-version fencing for several nodes on one store. The store holds the
//! current data-key version in one record; every write that seals carries a
//! precondition that it still names the version the write sealed under, and
//! a rotation moves it in the same write that creates the new version. So a
//! node that has not seen a rotation (another node made it) cannot commit
//! anything sealed under the superseded version: its write conflicts, the
//! node loads the new version (`Vault::after_conflict`), and the operation
//! seals again (`Vault::resealing`). Retiring a version needs it superseded
//! first, so once a retirement has begun no record can commit under it.

use super::super::{Vault, VaultError};
use crate::store::{keyspace, Batch, Expect, Store};

/// How often one operation seals again after finding its version superseded
/// (each time a rotation committed between its seal and its write).
const RESEALS: usize = 3;

pub(in crate::vault) fn current_key() -> &'static [u8] {
    keyspace::DATA_KEY_CURRENT.as_bytes()
}

pub(in crate::vault) fn encode_version(version: u32) -> Vec<u8> {
    version.to_be_bytes().to_vec()
}

fn decode_version(bytes: &[u8]) -> Result<u32, VaultError> {
    let bytes: [u8; 4] = bytes.try_into().map_err(|_| VaultError::Corrupt {
        what: "current data-key version",
    })?;
    Ok(u32::from_be_bytes(bytes))
}

/// Makes `batch` apply only while `version` is current. A batch already
/// fenced on another version (two seals straddling a rotation) is stale.
pub(in crate::vault) fn fence(batch: &mut Batch, version: u32) -> Result<(), VaultError> {
    match fenced_on(batch) {
        None => {
            batch.expect_equals(current_key(), encode_version(version));
            Ok(())
        }
        Some(v) if v == version => Ok(()),
        Some(_) => Err(VaultError::KeySuperseded),
    }
}

/// The version `batch` is fenced on, if any.
pub(in crate::vault) fn fenced_on(batch: &Batch) -> Option<u32> {
    batch.expectations.iter().find_map(|(key, expect)| match expect {
        Expect::Equals(value) if key == current_key() => decode_version(value).ok(),
        _ => None,
    })
}

impl<S: Store> Vault<S> {
    /// The current version as the store records it, every version up to it
    /// loaded into this node's keyring.
    pub(in crate::vault) async fn refresh_current_version(&self) -> Result<u32, VaultError> {
        let Some(bytes) = self.store.get(current_key()).await? else {
            return self.current_key_version();
        };
        let current = decode_version(&bytes)?;
        let known = self.current_key_version()?;
        for version in known + 1..=current {
            super::data_keys::load_data_key(&*self.store, &self.kek(), &self.keyring, version).await?;
        }
        Ok(current)
    }

    /// After a write fenced on `fenced` conflicted: `Err(KeySuperseded)`
    /// when the reason may be a rotation this node had not seen (now
    /// loaded), so the operation seals again rather than retrying stale
    /// ciphertext.
    pub(in crate::vault) async fn after_conflict(&self, fenced: Option<u32>) -> Result<(), VaultError> {
        let Some(fenced) = fenced else { return Ok(()) };
        if self.refresh_current_version().await? != fenced {
            return Err(VaultError::KeySuperseded);
        }
        Ok(())
    }

    /// Runs a sealing operation, again (from its reads) while it finds the
    /// version it sealed under superseded.
    pub(in crate::vault) async fn resealing<T, F>(
        &self,
        mut operation: impl FnMut() -> F,
    ) -> Result<T, VaultError>
    where
        F: std::future::Future<Output = Result<T, VaultError>>,
    {
        let mut left = RESEALS;
        loop {
            match operation().await {
                Err(VaultError::KeySuperseded) if left > 0 => left -= 1,
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_fenced_once_and_a_second_version_is_stale() {
        let mut batch = Batch::new();
        assert_eq!(fenced_on(&batch), None);
        fence(&mut batch, 3).unwrap();
        fence(&mut batch, 3).unwrap();
        assert_eq!(
            batch.expectations.len(),
            1,
            "one precondition for any number of seals"
        );
        assert_eq!(fenced_on(&batch), Some(3));
        assert!(matches!(fence(&mut batch, 4), Err(VaultError::KeySuperseded)));
    }
}
