//! Data keys and the fingerprint key in the store: created on first use,
//! wrapped by the KEK, and the durable reservations behind each version's
//! encryption budget (see `crypto::keyring`). Rotation happens here when a
//! version's budget is spent.

use crate::audit::anchor::AnchorKey;
use crate::audit::Actor;
use crate::domain::random;
use crate::domain::time::Timestamp;
use crate::store::{Batch, CommitError, Store};
use crate::vault::crypto::aad::{Binding, RecordKind};
use crate::vault::crypto::envelope::SealingKey;
use crate::vault::crypto::CryptoError;
use crate::vault::keys::kek::Kek;
use crate::vault::keys::keyring::{DataKey, Keyring, SealOutcome};
use crate::vault::records::{decode, encode, DataKeyRecord, FingerprintKeyRecord};
use crate::vault::retry::Retry;
use crate::vault::{layout, Vault, VaultError};
use secrecy::SecretBox;
use zeroize::Zeroizing;

/// The fingerprint and anchor keys have one version: they are rewrapped
/// when the KEK rotates, but not themselves rotated (see SECURITY.md). The
/// audit key's and the pepper's first versions are this one too.
pub(super) const SECRET_VERSION: u32 = 1;

pub(super) fn random_key() -> Result<SecretBox<[u8; 32]>, CryptoError> {
    // Filled in place inside the box, so no copy of the key is left on the stack.
    let mut raw = Box::new([0u8; 32]);
    random::fill(&mut raw[..])?;
    Ok(SecretBox::new(raw))
}

/// What a data key version's wrapped key is bound to (its version, as text).
pub(in crate::vault) fn data_key_binding(version_id: &str) -> Binding<'_> {
    Binding {
        kind: RecordKind::DataKey,
        record_id: version_id,
        field: "key",
    }
}

/// The data key `record` wraps, opened with `kek` (which fails for another KEK).
pub(in crate::vault) fn unwrap_data_key(kek: &Kek, record: &DataKeyRecord) -> Result<DataKey, VaultError> {
    let id = record.version.to_string();
    let raw = kek.unwrap(&data_key_binding(&id), &record.wrapped)?;
    Ok(DataKey::new(
        SealingKey::new(record.version, &raw),
        record.reserved_through,
        record.created_at,
    ))
}

pub(in crate::vault) async fn load_or_create<S: Store>(store: &S, kek: &Kek) -> Result<Keyring, VaultError> {
    let fingerprints = super::fingerprints::load(store, kek).await?;
    let mut keys = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = store
            .scan_prefix(layout::DATA_KEY_PREFIX, after.as_deref(), 256)
            .await?;
        for (_, value) in &page {
            let record: DataKeyRecord = decode(value, "data key")?;
            if record.retired_at.is_none() {
                keys.push(unwrap_data_key(kek, &record)?);
            }
        }
        match page.last() {
            Some((key, _)) if page.len() == 256 => after = Some(key.clone()),
            _ => break,
        }
    }
    let keyring = Keyring::new(keys, fingerprints);
    match keyring.current() {
        None => create_data_key(store, kek, &keyring, 1).await?,
        Some(current) if store.get(super::fence::current_key()).await?.is_none() => {
            // A store from before the fence: record its current version.
            let mut batch = Batch::new();
            batch.expect_absent(super::fence::current_key()).put(
                super::fence::current_key(),
                super::fence::encode_version(current.version()),
            );
            match store.commit(batch).await {
                Ok(()) | Err(CommitError::Conflict) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Some(_) => {}
    }
    Ok(keyring)
}

/// A single-version secret (fingerprint key, audit MAC key) wrapped by the
/// KEK under `store_key`, created on first use.
pub(super) async fn load_or_create_secret<S: Store>(
    store: &S,
    kek: &Kek,
    store_key: &[u8],
    kind: RecordKind,
) -> Result<SecretBox<[u8; 32]>, VaultError> {
    let id = SECRET_VERSION.to_string();
    let binding = secret_binding(kind, &id);
    if let Some(bytes) = store.get(store_key).await? {
        let record: FingerprintKeyRecord = decode(&bytes, "wrapped key")?;
        return Ok(kek.unwrap(&binding, &record.wrapped)?);
    }
    let raw = random_key()?;
    let record = FingerprintKeyRecord {
        version: SECRET_VERSION,
        kek_version: kek.version(),
        wrapped: kek.wrap(&binding, &raw)?,
        created_at: Timestamp::now(),
    };
    let mut batch = Batch::new();
    batch.expect_absent(store_key).put(store_key, encode(&record)?);
    match store.commit(batch).await {
        Ok(()) => Ok(raw),
        // Another opener created it first: use theirs.
        Err(CommitError::Conflict) => Box::pin(load_or_create_secret(store, kek, store_key, kind)).await,
        Err(e) => Err(e.into()),
    }
}

/// Where a KEK-wrapped secret of `kind` and version `id` is bound.
pub(super) fn secret_binding(kind: RecordKind, id: &str) -> Binding<'_> {
    Binding {
        kind,
        record_id: id,
        field: "key",
    }
}

/// The key that signs audit anchors (`audit::anchor`) from its seed.
pub(in crate::vault) fn anchor_key(seed: SecretBox<[u8; 32]>) -> Result<AnchorKey, VaultError> {
    AnchorKey::new(seed).map_err(|_| VaultError::Corrupt { what: "anchor key" })
}

/// A new data key `version`, wrapped, as a batch that creates its record
/// (only if absent), with the raw key for the keyring.
pub(in crate::vault) struct NewDataKey {
    pub(in crate::vault) batch: Batch,
    raw: SecretBox<[u8; 32]>,
    version: u32,
    created_at: Timestamp,
}

impl NewDataKey {
    pub(in crate::vault) fn make(kek: &Kek, version: u32) -> Result<Self, VaultError> {
        let id = version.to_string();
        let binding = data_key_binding(&id);
        let raw = random_key()?;
        let created_at = Timestamp::now();
        let record = DataKeyRecord {
            version,
            kek_version: kek.version(),
            wrapped: kek.wrap(&binding, &raw)?,
            reserved_through: 0,
            created_at,
            retired_at: None,
        };
        let key = layout::data_key(version);
        let mut batch = Batch::new();
        batch.expect_absent(key.clone()).put(key, encode(&record)?);
        Ok(NewDataKey {
            batch,
            raw,
            version,
            created_at,
        })
    }

    /// After the batch committed: new writes use this version.
    pub(in crate::vault) fn install(self, keyring: &Keyring) {
        tracing::info!(version = self.version, "created data key version");
        keyring.add(DataKey::new(
            SealingKey::new(self.version, &self.raw),
            0,
            self.created_at,
        ));
    }
}

/// Creates the first data key `version` (and the current-version record),
/// or loads it if another node created it first.
pub(in crate::vault) async fn create_data_key<S: Store>(
    store: &S,
    kek: &Kek,
    keyring: &Keyring,
    version: u32,
) -> Result<(), VaultError> {
    let mut new = NewDataKey::make(kek, version)?;
    new.batch
        .expect_absent(super::fence::current_key())
        .put(super::fence::current_key(), super::fence::encode_version(version));
    match store.commit(std::mem::take(&mut new.batch)).await {
        Ok(()) => {
            new.install(keyring);
            Ok(())
        }
        Err(CommitError::Conflict) => load_data_key(store, kek, keyring, version).await,
        Err(e) => Err(e.into()),
    }
}

pub(in crate::vault) async fn load_data_key<S: Store>(
    store: &S,
    kek: &Kek,
    keyring: &Keyring,
    version: u32,
) -> Result<(), VaultError> {
    let bytes = store
        .get(&layout::data_key(version))
        .await?
        .ok_or(CryptoError::UnknownKeyVersion(version))?;
    let record: DataKeyRecord = decode(&bytes, "data key")?;
    if record.retired_at.is_some() {
        return Err(CryptoError::RetiredKeyVersion(version).into());
    }
    keyring.add(unwrap_data_key(kek, &record)?);
    Ok(())
}

impl<S: Store> Vault<S> {
    /// Encrypts under the current data key for a write in `batch`, which
    /// is fenced on that version (`keys::fence`).
    pub(in crate::vault) async fn seal(
        &self,
        batch: &mut Batch,
        binding: &Binding<'_>,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, VaultError> {
        let (sealed, version) = self.seal_versioned(binding, plaintext).await?;
        super::fence::fence(batch, version)?;
        Ok(sealed)
    }

    /// Encrypts under the current data key, reserving budget (or rotating to
    /// a new version) in the store when the current block is used up; the
    /// version, which the write must be fenced on.
    pub(in crate::vault) async fn seal_versioned(
        &self,
        binding: &Binding<'_>,
        plaintext: &[u8],
    ) -> Result<(Vec<u8>, u32), VaultError> {
        loop {
            match self.keyring.try_seal(binding, plaintext)? {
                SealOutcome::Sealed { sealed, version } => return Ok((sealed, version)),
                SealOutcome::NeedsBudget { version } => self.extend_budget(version).await?,
            }
        }
    }

    /// Decrypts with whichever version sealed it, loading a version another
    /// vault node created since this one started.
    pub(in crate::vault) async fn open_sealed(
        &self,
        binding: &Binding<'_>,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        match self.keyring.open(binding, sealed) {
            Err(CryptoError::UnknownKeyVersion(v)) => {
                load_data_key(&*self.store, &self.kek(), &self.keyring, v).await?;
                Ok(self.keyring.open(binding, sealed)?)
            }
            other => Ok(other?),
        }
    }

    async fn extend_budget(&self, version: u32) -> Result<(), VaultError> {
        let _only_one_extender = self.budget_lock.lock().await;
        let key = self
            .keyring
            .get(version)
            .ok_or(CryptoError::UnknownKeyVersion(version))?;
        let is_current = self.keyring.current().is_some_and(|c| c.version() == version);
        if !is_current || key.has_room() {
            return Ok(()); // someone else extended or rotated while we waited
        }
        let budget = self.config.key_budget;
        let store_key = layout::data_key(version);
        let mut retry = Retry::new();
        loop {
            let stored = self
                .store
                .get(&store_key)
                .await?
                .ok_or(CryptoError::UnknownKeyVersion(version))?;
            let mut record: DataKeyRecord = decode(&stored, "data key")?;
            if record.reserved_through >= budget.encryptions_per_key {
                tracing::warn!(
                    version,
                    "data key version reached its encryption budget; rotating"
                );
                // A key operation like any other: the new version and its
                // audit record are one write, by the budget as the actor.
                let reason = format!(
                    "version {version} spent its encryption budget of {}",
                    budget.encryptions_per_key
                );
                self.rotate_data_key_locked(&Actor::local("key-budget"), &reason)
                    .await?;
                return Ok(());
            }
            let block_start = record.reserved_through;
            record.reserved_through =
                (block_start + budget.reservation_block).min(budget.encryptions_per_key);
            let mut batch = Batch::new();
            batch
                .expect_equals(store_key.clone(), stored)
                .put(store_key.clone(), encode(&record)?);
            match self.store.commit(batch).await {
                Ok(()) => {
                    key.begin_block(block_start, record.reserved_through);
                    return Ok(());
                }
                Err(CommitError::Conflict) => retry.after_conflict().await?,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{Batch, SledStore, Store};
    use crate::vault::crypto::CryptoError;
    use crate::vault::keys::kek::Kek;
    use crate::vault::keys::keyring::KeyBudget;
    use crate::vault::{layout, records, Vault, VaultConfig, VaultError};
    use secrecy::SecretBox;

    fn kek() -> Kek {
        Kek::from_bytes(SecretBox::new(Box::new([42u8; 32])))
    }

    fn small_budget() -> VaultConfig {
        let mut config = VaultConfig::embedded().unwrap();
        config.key_budget = KeyBudget {
            encryptions_per_key: 10,
            reservation_block: 4,
        };
        config
    }

    fn pan(i: u64) -> String {
        let body = format!("621799{i:09}");
        format!(
            "{body}{}",
            char::from(crate::vault::card::luhn::check_digit(body.as_bytes()))
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn budgets_rotate_keys_and_every_version_stays_readable() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let vault = Vault::open(store.clone(), kek(), small_budget()).await.unwrap();
        let mut cards = Vec::new();
        for i in 0..35 {
            cards.push((
                pan(i),
                vault
                    .store_card(&crate::audit::Actor::local("test"), &pan(i))
                    .await
                    .unwrap()
                    .card_ref,
            ));
        }
        let versions = vault.key_versions();
        assert!(versions.len() >= 4, "35 encryptions at 10 per key: {versions:?}");
        // Every rotation the budget forced is a key operation on the trail.
        let actor = crate::audit::Actor::local("test");
        let rotations: Vec<_> = vault
            .audit_export(&actor)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.operation == "keys.rotate")
            .collect();
        assert_eq!(rotations.len(), versions.len() - 1, "{rotations:?}");
        assert!(rotations.iter().all(|r| r.identity == "local:key-budget"
            && r.detail
                .as_deref()
                .is_some_and(|d| d.contains("spent its encryption budget of 10"))));
        assert!(versions.iter().all(|v| v.encryptions <= 10), "{versions:?}");
        assert_eq!(versions.iter().map(|v| v.encryptions).sum::<u64>(), 35);
        for (digits, card_ref) in &cards {
            assert_eq!(vault.open_pan(card_ref).await.unwrap().expose_digits(), digits);
        }
        drop(vault);

        // A restart counts every reserved encryption as used: budgets only shrink.
        let reopened = Vault::open(store.clone(), kek(), small_budget()).await.unwrap();
        let before = reopened.key_versions();
        assert!(before.iter().all(|v| v.encryptions <= 10));
        for i in 100..120 {
            reopened
                .store_card(&crate::audit::Actor::local("test"), &pan(i))
                .await
                .unwrap();
        }
        let after = reopened.key_versions();
        assert!(after.len() > before.len());
        assert!(after.iter().all(|v| v.encryptions <= 10), "{after:?}");
        for (digits, card_ref) in &cards {
            assert_eq!(reopened.open_pan(card_ref).await.unwrap().expose_digits(), digits);
        }

        // A ciphertext naming a version the vault never had is a clear error.
        let key = layout::card(&cards[0].1);
        let mut record: records::CardRecord =
            records::decode(&store.get(&key).await.unwrap().unwrap(), "card").unwrap();
        record.pan[1..5].copy_from_slice(&999u32.to_be_bytes());
        let mut batch = Batch::new();
        batch.put(key, records::encode(&record).unwrap());
        store.commit(batch).await.unwrap();
        assert!(matches!(
            reopened.open_pan(&cards[0].1).await,
            Err(VaultError::Crypto(CryptoError::UnknownKeyVersion(999)))
        ));
    }

    #[tokio::test]
    async fn a_different_kek_cannot_open_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        drop(Vault::open(store.clone(), kek(), small_budget()).await.unwrap());
        let other = Kek::from_bytes(SecretBox::new(Box::new([7u8; 32])));
        assert!(matches!(
            Vault::open(store, other, small_budget()).await,
            Err(VaultError::Crypto(CryptoError::WrongKek))
        ));
    }
}
