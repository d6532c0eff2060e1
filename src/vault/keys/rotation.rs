//! Key lifecycle: add a data-key version (by hand, at the end of a
//! cryptoperiod, or when a version's encryption budget is spent), retire a
//! version no record uses, report every version's state, and rotate the KEK
//! by rewrapping the keys it protects (never the records themselves).

use crate::audit::{Actor, Outcome};
use crate::domain::operation::Operation;
use crate::domain::time::Timestamp;
use crate::store::{Batch, Store};
use crate::vault::crypto::aad::RecordKind;
use crate::vault::crypto::CryptoError;
use crate::vault::keys::kek::Kek;
use crate::vault::keys::rewrap::RewrapProgress;
use crate::vault::keys::shares::Manifest;
use crate::vault::keys::versioned;
use crate::vault::records::{decode, encode, CustodyRecord, DataKeyRecord, FingerprintKeyRecord};
use crate::vault::retry::Retry;
use crate::vault::{keys, layout, Vault, VaultError};
use crate::versions::Versions;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyState {
    /// Seals every new write.
    Current,
    /// Opens records written under it; seals nothing new.
    Active,
    /// Erased: neither seals nor opens.
    Retired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Current => "current",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
        }
    }
}

/// One data-key version as `keys status` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataKeyStatus {
    pub version: u32,
    pub state: KeyState,
    pub created_at: Timestamp,
    pub retired_at: Option<Timestamp>,
    pub encryptions: u64,
    pub encryption_budget: u64,
    pub records: u64,
    pub kek_version: u32,
}

#[derive(Clone, Debug)]
pub struct KeyReport {
    pub kek_version: u32,
    pub custody: Option<Manifest>,
    pub cryptoperiod_s: u64,
    pub data_keys: Vec<DataKeyStatus>,
    pub rewrap: Option<RewrapProgress>,
    /// The newest audit key version this node holds.
    pub audit_key_version: u32,
    /// The newest pepper version, and how many stored passwords each
    /// version's hashes hold (they move to the newest at their next check).
    pub pepper_version: u32,
    pub passwords_per_pepper: std::collections::BTreeMap<u32, u64>,
    /// The fingerprint version new cards are indexed under, the oldest
    /// still looked up, and how many cards each version indexes.
    pub fingerprint_version: u32,
    pub fingerprint_floor: u32,
    pub cards_per_fingerprint: std::collections::BTreeMap<u32, u64>,
}

/// The custody record of `store`, if a share set was ever bound to it.
pub(crate) async fn load_custody<S: Store>(store: &S) -> Result<Option<CustodyRecord>, VaultError> {
    match store.get(layout::CUSTODY).await? {
        Some(bytes) => Ok(Some(decode(&bytes, "custody record")?)),
        None => Ok(None),
    }
}

impl<S: Store> Vault<S> {
    /// The KEK's custody record (who holds shares of which set), if any.
    pub(crate) async fn custody(&self) -> Result<Option<CustodyRecord>, VaultError> {
        load_custody(&*self.store).await
    }

    pub(crate) fn current_key_version(&self) -> Result<u32, VaultError> {
        Ok(self
            .keyring
            .current()
            .ok_or(CryptoError::UnknownKeyVersion(0))?
            .version())
    }

    async fn data_key_records(&self) -> Result<Vec<(Vec<u8>, Vec<u8>, DataKeyRecord)>, VaultError> {
        let mut out = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = self
                .store
                .scan_prefix(layout::DATA_KEY_PREFIX, after.as_deref(), 256)
                .await?;
            let full = page.len() == 256;
            let last = page.last().map(|(k, _)| k.clone());
            for (key, value) in page {
                let record = decode(&value, "data key")?;
                out.push((key, value, record));
            }
            match last {
                Some(k) if full => after = Some(k),
                _ => return Ok(out),
            }
        }
    }

    /// Adds data-key version current+1; every new write uses it from now on.
    /// The new key and its audit record are one write.
    pub async fn rotate_data_key(&self, actor: &Actor, reason: &str) -> Result<u32, VaultError> {
        let _one_rotation_at_a_time = self.budget_lock.lock().await;
        self.rotate_data_key_locked(actor, reason).await
    }

    /// `rotate_data_key`, for a caller that holds `budget_lock` (the
    /// budget's own rotation, when a version has spent it).
    pub(in crate::vault) async fn rotate_data_key_locked(
        &self,
        actor: &Actor,
        reason: &str,
    ) -> Result<u32, VaultError> {
        let version = self.current_key_version()? + 1;
        let kek = self.kek();
        let mut new = keys::data_keys::NewDataKey::make(&kek, version)?;
        let detail = format!("data key version {version} created ({reason})");
        let mut batch = std::mem::take(&mut new.batch);
        // The fence moves in the same write: from now on nothing sealed
        // under the version before commits, on any node.
        let fence = keys::fence::current_key();
        batch
            .expect_equals(fence, keys::fence::encode_version(version - 1))
            .put(fence, keys::fence::encode_version(version));
        let object = Some(self.audit_object(&version));
        if self
            .commit_with_audit(
                batch,
                actor,
                Operation::KeyRotate,
                object,
                Outcome::Success,
                Some(detail),
            )
            .await?
        {
            new.install(&self.keyring);
            Ok(version)
        } else {
            // Another node rotated first: its version is current now.
            self.refresh_current_version().await
        }
    }

    /// Rotates when the current version is older than its cryptoperiod.
    pub async fn rotate_if_due(&self, actor: &Actor) -> Result<Option<u32>, VaultError> {
        let Some(current) = self.keyring.current() else {
            return Ok(None);
        };
        let age = Timestamp::now().seconds() - current.created_at().seconds();
        let period = i64::try_from(self.config.cryptoperiod_s).unwrap_or(i64::MAX);
        if age < period {
            return Ok(None);
        }
        let reason = format!("cryptoperiod of {} s reached", self.config.cryptoperiod_s);
        self.rotate_data_key(actor, &reason).await.map(Some)
    }

    /// Retires `version`: refused while it is current or any record uses
    /// it. The wrapped key is erased from the store, so the version can
    /// never seal again, on this node or any other.
    pub async fn retire_data_key(&self, actor: &Actor, version: u32) -> Result<(), VaultError> {
        let outcome = self.try_retire(actor, version).await;
        if let Err(e) = &outcome {
            let detail = format!("retire version {version} refused: {e}");
            let object = Some(self.audit_object(&version));
            self.record_outcome(
                actor,
                Operation::KeyRetire,
                object,
                Outcome::Refused,
                Some(detail),
            )
            .await?;
        }
        outcome
    }

    async fn try_retire(&self, actor: &Actor, version: u32) -> Result<(), VaultError> {
        let _no_rotation_meanwhile = self.budget_lock.lock().await;
        // The store's word, not this node's: another node may have rotated.
        if self.refresh_current_version().await? == version {
            return Err(VaultError::KeyVersionCurrent { version });
        }
        let key = layout::data_key(version);
        let stored = self.store.get(&key).await?.ok_or(VaultError::NotFound {
            what: "data key version",
        })?;
        let mut record: DataKeyRecord = decode(&stored, "data key")?;
        if record.retired_at.is_some() {
            return Ok(());
        }
        let records = self
            .records_per_version()
            .await?
            .get(&version)
            .copied()
            .unwrap_or(0);
        if records > 0 {
            return Err(VaultError::KeyVersionInUse { version, records });
        }
        record.retired_at = Some(Timestamp::now());
        record.wrapped.clear();
        let mut batch = Batch::new();
        batch
            .expect_equals(key.clone(), stored)
            .put(key, encode(&record)?);
        let detail = format!("data key version {version} retired; its key erased");
        let object = Some(self.audit_object(&version));
        if !self
            .commit_with_audit(
                batch,
                actor,
                Operation::KeyRetire,
                object,
                Outcome::Success,
                Some(detail),
            )
            .await?
        {
            return Err(VaultError::Contention);
        }
        self.keyring.remove(version);
        Ok(())
    }

    pub async fn key_report(&self) -> Result<KeyReport, VaultError> {
        let records = self.records_per_version().await?;
        let current = self.current_key_version()?;
        let budget = self.config.key_budget.encryptions_per_key;
        let data_keys = self
            .data_key_records()
            .await?
            .into_iter()
            .map(|(_, _, r)| DataKeyStatus {
                version: r.version,
                state: match (r.retired_at, r.version == current) {
                    (Some(_), _) => KeyState::Retired,
                    (None, true) => KeyState::Current,
                    (None, false) => KeyState::Active,
                },
                created_at: r.created_at,
                retired_at: r.retired_at,
                encryptions: self
                    .keyring
                    .get(r.version)
                    .map_or(r.reserved_through, |k| k.encryptions()),
                encryption_budget: budget,
                records: records.get(&r.version).copied().unwrap_or(0),
                kek_version: r.kek_version,
            })
            .collect();
        Ok(KeyReport {
            kek_version: self.kek().version(),
            custody: load_custody(&*self.store).await?.map(|c| c.manifest),
            cryptoperiod_s: self.config.cryptoperiod_s,
            data_keys,
            rewrap: self.rewrap_progress().await?,
            audit_key_version: self.audit.keys.newest(),
            pepper_version: self.load_new_peppers().await?,
            passwords_per_pepper: self.passwords_per_pepper().await?,
            fingerprint_version: self.refresh_fingerprints().await?,
            fingerprint_floor: self.keyring.fingerprints().floor(),
            cards_per_fingerprint: self.cards_per_fingerprint_version().await?,
        })
    }

    /// Moves the audit key to a new version: stored (wrapped by the KEK)
    /// in one write with this node's rotation record, the first record
    /// MACed with it. Other nodes' chains follow within
    /// `audit.checkpoint_interval_s` (`follow_audit_key`). Old versions are
    /// kept: they verify the records written under them.
    pub async fn rotate_audit_key(&self, actor: &Actor) -> Result<u32, VaultError> {
        let _no_kek_rotation_meanwhile = self.budget_lock.lock().await;
        let keys = self.audit.keys.held();
        let mut retry = Retry::new();
        loop {
            let version = self.load_new_audit_keys().await? + 1;
            let (batch, raw) = versioned::AUDIT_KEY.new_version(&self.kek(), version)?;
            // The rotation record is sealed with it, so it is held first.
            keys.add(version, crate::audit::AuditKey::new(raw));
            let detail = crate::audit::audit_key_rotation_detail(version);
            let committed = self
                .commit_with_audit(
                    batch,
                    actor,
                    Operation::KeyRotateAudit,
                    None,
                    Outcome::Success,
                    Some(detail),
                )
                .await;
            if let Ok(true) = committed {
                return Ok(version);
            }
            // Not stored here: another node stored this version first, or
            // the write failed (and may have applied). The store says
            // which key of this number, if any, the chain may be at.
            keys.forget(version);
            self.load_new_audit_keys().await?;
            committed?;
            retry.after_conflict().await?;
        }
    }

    /// Adds a pepper version: new passwords are hashed with it at once
    /// (on other nodes at their next hash), and each stored password moves
    /// to it at its next successful check. Old versions are kept while any
    /// hash names them (`KeyReport::passwords_per_pepper`).
    pub async fn rotate_pepper(&self, actor: &Actor) -> Result<u32, VaultError> {
        let rotation = versioned::Rotation {
            which: &versioned::PEPPER,
            operation: Operation::KeyRotatePepper,
            make: |_, raw| Ok(raw),
            describe: |version, _: &_| {
                format!("pepper version {version}: new hashes use it; each password moves to it at its next successful check")
            },
            fence: |_: &mut Batch, _| {},
        };
        self.add_version(actor, &self.peppers, rotation).await
    }

    /// Adds version newest+1 of `rotation.which` to `held`: its wrapped
    /// key, what `rotation.fence` adds and the audit record are one write;
    /// when another node made that version first, goes past it.
    pub(in crate::vault) async fn add_version<T, M, D, F>(
        &self,
        actor: &Actor,
        held: &Versions<T>,
        rotation: versioned::Rotation<'_, M, D, F>,
    ) -> Result<u32, VaultError>
    where
        M: Fn(u32, secrecy::SecretBox<[u8; 32]>) -> Result<T, VaultError>,
        D: Fn(u32, &T) -> String,
        F: Fn(&mut Batch, u32),
    {
        let _no_kek_rotation_meanwhile = self.budget_lock.lock().await;
        let which = rotation.which;
        let mut retry = Retry::new();
        loop {
            let kek = self.kek();
            let version = which.load_into(&*self.store, &kek, held, &rotation.make).await? + 1;
            let (mut batch, raw) = which.new_version(&kek, version)?;
            let value = (rotation.make)(version, raw)?;
            (rotation.fence)(&mut batch, version);
            let detail = (rotation.describe)(version, &value);
            if self
                .commit_with_audit(
                    batch,
                    actor,
                    rotation.operation,
                    None,
                    Outcome::Success,
                    Some(detail),
                )
                .await?
            {
                held.add(version, value);
                return Ok(version);
            }
            retry.after_conflict().await?;
        }
    }

    /// Takes up audit key versions another node made; returns the newest.
    pub(in crate::vault) async fn load_new_audit_keys(&self) -> Result<u32, VaultError> {
        versioned::AUDIT_KEY
            .load_into(
                &*self.store,
                &self.kek(),
                self.audit.keys.held(),
                versioned::audit_key,
            )
            .await
    }

    /// Moves this node's chain to the newest audit key version in the
    /// store when another node rotated it. Returns the version moved to.
    pub async fn follow_audit_key(&self, actor: &Actor) -> Result<Option<u32>, VaultError> {
        let newest = self.load_new_audit_keys().await?;
        let head = crate::audit::read::head(&*self.store, &self.audit.name).await?;
        if crate::audit::key_version_of(&head.mac).is_some_and(|at| at >= newest) {
            return Ok(None);
        }
        self.record_admin(
            actor,
            Operation::KeyRotateAudit,
            Outcome::Success,
            &crate::audit::audit_key_rotation_detail(newest),
        )
        .await?;
        Ok(Some(newest))
    }

    /// Rewraps every key the KEK protects (data keys, fingerprint key, every
    /// audit key version, pepper and anchor keys) under `next`, and records `manifest` as the share set
    /// now holding the KEK, in one atomic batch; then uses `next`. Records
    /// sealed by the data keys are not touched.
    pub async fn rotate_kek(&self, actor: &Actor, next: Kek, manifest: Manifest) -> Result<u32, VaultError> {
        let _no_key_created_meanwhile = self.budget_lock.lock().await;
        let old = self.kek();
        if next.version() != old.version() + 1 {
            return Err(VaultError::Corrupt {
                what: "next KEK version",
            });
        }
        let mut batch = Batch::new();
        for (key, stored, mut record) in self.data_key_records().await? {
            if record.retired_at.is_none() {
                let id = record.version.to_string();
                let binding = keys::data_keys::data_key_binding(&id);
                let raw = old.unwrap(&binding, &record.wrapped)?;
                record.wrapped = next.wrap(&binding, &raw)?;
            }
            record.kek_version = next.version();
            batch
                .expect_equals(key.clone(), stored)
                .put(key, encode(&record)?);
        }
        let mut wrapped_secrets: Vec<(Vec<u8>, RecordKind)> = Vec::new();
        for secret in versioned::ALL {
            for (key, _) in self.store.scan_prefix(secret.prefix(), None, 4096).await? {
                wrapped_secrets.push((key, secret.kind()));
            }
        }
        for (key, kind) in wrapped_secrets {
            let Some(stored) = self.store.get(&key).await? else {
                continue;
            };
            let mut record: FingerprintKeyRecord = decode(&stored, "wrapped key")?;
            let id = record.version.to_string();
            let binding = keys::data_keys::secret_binding(kind, &id);
            let raw = old.unwrap(&binding, &record.wrapped)?;
            record.wrapped = next.wrap(&binding, &raw)?;
            record.kek_version = next.version();
            batch
                .expect_equals(key.clone(), stored)
                .put(key, encode(&record)?);
        }
        let version = next.version();
        let custody = CustodyRecord {
            kek_version: version,
            manifest,
            updated_at: Timestamp::now(),
        };
        batch.put(layout::CUSTODY, encode(&custody)?);
        let detail = format!(
            "KEK rotated to version {version}; share set {} ({}-of-{}); data, fingerprint, audit, pepper and anchor keys rewrapped",
            custody.manifest.set_id, custody.manifest.threshold, custody.manifest.shares
        );
        if !self
            .commit_with_audit(
                batch,
                actor,
                Operation::KekRotate,
                None,
                Outcome::Success,
                Some(detail),
            )
            .await?
        {
            return Err(VaultError::Contention);
        }
        *self
            .kek
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = std::sync::Arc::new(next);
        Ok(version)
    }

    /// Takes up the KEK another node rotated the store to: `next` must be
    /// the store's KEK version and open its data keys. Audited.
    pub async fn adopt_kek(&self, actor: &Actor, next: Kek) -> Result<u32, VaultError> {
        let _no_key_created_meanwhile = self.budget_lock.lock().await;
        let custody = load_custody(&*self.store).await?.ok_or(VaultError::NotFound {
            what: "KEK custody record",
        })?;
        if custody.kek_version != next.version() {
            return Err(VaultError::Corrupt {
                what: "next KEK version",
            });
        }
        // The assembled KEK must open what the store holds: a wrong share
        // set (or a forged custody record) is refused here.
        for (_, _, record) in self.data_key_records().await? {
            if record.retired_at.is_none() {
                keys::data_keys::unwrap_data_key(&next, &record)?;
            }
        }
        let version = next.version();
        // Audited first: no record, no change.
        let detail = format!("KEK version {version} adopted on this node (rotated by another node)");
        self.record_outcome(actor, Operation::KekRotate, None, Outcome::Success, Some(detail))
            .await?;
        *self
            .kek
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = std::sync::Arc::new(next);
        Ok(version)
    }

    /// Binds `manifest` to this store at its first unseal from shares.
    pub(crate) async fn adopt_custody(&self, manifest: &Manifest) -> Result<(), VaultError> {
        if load_custody(&*self.store).await?.is_some() {
            return Ok(());
        }
        let record = CustodyRecord {
            kek_version: self.kek().version(),
            manifest: manifest.clone(),
            updated_at: Timestamp::now(),
        };
        let mut batch = Batch::new();
        batch
            .expect_absent(layout::CUSTODY)
            .put(layout::CUSTODY, encode(&record)?);
        self.store.commit(batch).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::audit::Actor;
    use crate::store::{SledStore, Store};
    use crate::vault::crypto::CryptoError;
    use crate::vault::keys::kek::Kek;
    use crate::vault::keys::shares::split_new_kek;
    use crate::vault::{layout, Vault, VaultConfig, VaultError};
    use secrecy::SecretBox;

    fn kek() -> Kek {
        Kek::from_bytes(SecretBox::new(Box::new([9u8; 32])))
    }

    fn pan(i: u64) -> String {
        let body = format!("622202{i:09}");
        format!(
            "{body}{}",
            char::from(crate::vault::card::luhn::check_digit(body.as_bytes()))
        )
    }

    async fn open(store: &SledStore, kek: Kek) -> Vault<SledStore> {
        Vault::open(store.clone(), kek, VaultConfig::embedded().unwrap())
            .await
            .unwrap()
    }

    async fn rewrap_all(vault: &Vault<SledStore>, page: usize) -> u64 {
        let me = Actor::local("test");
        let mut steps = 0;
        while let Some(p) = vault.rewrap_step(&me, page).await.unwrap() {
            steps += 1;
            if p.finished_at.is_some() {
                return p.rewrapped;
            }
        }
        panic!("no job after {steps} steps");
    }

    #[tokio::test]
    async fn rotate_rewrap_retire_and_every_version_stays_readable() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let vault = open(&store, kek()).await;
        let me = Actor::local("test");
        let mut cards = Vec::new();
        for round in 0..3u64 {
            for i in 0..7 {
                let digits = pan(round * 100 + i);
                cards.push((
                    digits.clone(),
                    vault.store_card(&me, &digits).await.unwrap().card_ref,
                ));
            }
            vault.rotate_data_key(&me, "test").await.unwrap();
        }
        assert_eq!(vault.current_key_version().unwrap(), 4);
        let per_version = vault.records_per_version().await.unwrap();
        assert_eq!(per_version.get(&1), Some(&7));
        assert_eq!(per_version.get(&3), Some(&7));
        for (digits, card) in &cards {
            assert_eq!(vault.open_pan(card).await.unwrap().expose_digits(), digits);
        }

        // Current and in-use versions cannot be retired.
        assert!(matches!(
            vault.retire_data_key(&me, 4).await,
            Err(VaultError::KeyVersionCurrent { version: 4 })
        ));
        assert!(matches!(
            vault.retire_data_key(&me, 2).await,
            Err(VaultError::KeyVersionInUse {
                version: 2,
                records: 7
            })
        ));

        // A rewrap interrupted after two pages of cards resumes after a
        // restart. (The first step finds no agreements.)
        vault.start_rewrap(&me).await.unwrap();
        for _ in 0..3 {
            vault.rewrap_step(&me, 3).await.unwrap();
        }
        let partial = vault.records_per_version().await.unwrap();
        assert_eq!(partial.get(&4), Some(&6), "{partial:?}");
        drop(vault);
        let vault = open(&store, kek()).await;
        assert_eq!(vault.rewrap_progress().await.unwrap().unwrap().scanned, 6);
        rewrap_all(&vault, 4).await;
        let done = vault.records_per_version().await.unwrap();
        assert_eq!(done.into_iter().collect::<Vec<_>>(), vec![(4, 21)]);

        for version in 1..=3 {
            vault.retire_data_key(&me, version).await.unwrap();
        }
        for (digits, card) in &cards {
            assert_eq!(vault.open_pan(card).await.unwrap().expose_digits(), digits);
        }
        // A retired version's key is gone from the store: it can never seal
        // (or open) again, and its number is never reused.
        let record: crate::vault::records::DataKeyRecord =
            crate::vault::decode(&store.get(&layout::data_key(2)).await.unwrap().unwrap(), "k").unwrap();
        assert!(record.wrapped.is_empty() && record.retired_at.is_some());
        drop(vault);
        let vault = open(&store, kek()).await;
        assert!(vault.keyring.get(2).is_none());
        assert!(matches!(
            crate::vault::keys::data_keys::load_data_key(&store, &vault.kek(), &vault.keyring, 2).await,
            Err(VaultError::Crypto(CryptoError::RetiredKeyVersion(2)))
        ));
        assert_eq!(vault.rotate_data_key(&me, "test").await.unwrap(), 5);
        let report = vault.key_report().await.unwrap();
        let states: Vec<_> = report
            .data_keys
            .iter()
            .map(|k| (k.version, k.state.as_str()))
            .collect();
        assert_eq!(
            states,
            vec![
                (1, "retired"),
                (2, "retired"),
                (3, "retired"),
                (4, "active"),
                (5, "current")
            ]
        );
    }

    #[tokio::test]
    async fn kek_rotation_rewraps_keys_and_only_the_new_kek_opens_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let vault = open(&store, kek()).await;
        let me = Actor::local("test");
        let card = vault.store_card(&me, &pan(1)).await.unwrap().card_ref;
        let sealed_before = store.get(&layout::card(&card)).await.unwrap();
        let (raw, files) = split_new_kek(2, 3).unwrap();
        let next = Kek::with_version(2, &raw);
        assert_eq!(
            vault
                .rotate_kek(&me, next, files[0].manifest.clone())
                .await
                .unwrap(),
            2
        );
        assert_eq!(vault.open_pan(&card).await.unwrap().expose_digits(), pan(1));
        assert_eq!(
            store.get(&layout::card(&card)).await.unwrap(),
            sealed_before,
            "records untouched"
        );
        drop(vault);
        assert!(matches!(
            Vault::open(store.clone(), kek(), VaultConfig::embedded().unwrap()).await,
            Err(VaultError::Crypto(CryptoError::WrongKek))
        ));
        let reopened = open(&store, Kek::with_version(2, &raw)).await;
        assert_eq!(reopened.open_pan(&card).await.unwrap().expose_digits(), pan(1));
        let custody = super::load_custody(&store).await.unwrap().unwrap();
        assert_eq!(custody.kek_version, 2);
        let report = reopened.audit_verify(&me).await.unwrap();
        assert!(report.intact(), "the audit key survived the KEK rotation");
    }
}
