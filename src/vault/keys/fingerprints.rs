//! The PAN fingerprint key's versions. A card's index entry
//! (`card-fp/<hex>`) is keyed by the fingerprint under the version its
//! record names; a rotation adds a version that new cards are indexed
//! under at once, the rewrap moves every stored card's entry to it, and
//! until then a PAN is looked up under every version from the floor (the
//! oldest any entry may still be under) to the newest, so a duplicate is
//! found whichever version indexed it.
//!
//! Several nodes: the store holds the current version in one record that
//! every new card's write is fenced on (as sealing writes are on the data
//! key's), so a node that has not seen a rotation cannot index a card
//! under the old version only; its write conflicts, it loads the new
//! version and looks again.
//!
//! Version 1's secret also keys the request digests (idempotency slots and
//! request MACs, one-time-code digests, audit-object digests) under
//! purposes of their own: that use never rotates with the fingerprint, so a
//! rotation breaks no remembered request or pending code.

use super::kek::Kek;
use super::versioned::{Rotation, FINGERPRINT};
use crate::audit::Actor;
use crate::domain::operation::Operation;
use crate::store::{keyspace, Batch, CommitError, Store};
use crate::vault::crypto::fingerprint::FingerprintKey;
use crate::vault::records::{decode, encode, CardRecord};
use crate::vault::retry::Retry;
use crate::vault::{layout, Vault, VaultError};
use crate::versions::Versions;
use secrecy::SecretBox;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

fn current_key() -> &'static [u8] {
    keyspace::FINGERPRINT_CURRENT.as_bytes()
}

fn floor_key() -> &'static [u8] {
    keyspace::FINGERPRINT_FLOOR.as_bytes()
}

fn decode_version(bytes: &[u8], what: &'static str) -> Result<u32, VaultError> {
    let bytes: [u8; 4] = bytes.try_into().map_err(|_| VaultError::Corrupt { what })?;
    Ok(u32::from_be_bytes(bytes))
}

/// The fingerprint versions this node holds, and the floor it knows of.
pub(crate) struct FingerprintKeys {
    keys: Versions<FingerprintKey>,
    floor: AtomicU32,
}

impl FingerprintKeys {
    /// The version new cards are indexed under.
    pub(crate) fn current(&self) -> Arc<FingerprintKey> {
        self.keys.newest().1
    }

    pub(crate) fn get(&self, version: u32) -> Option<Arc<FingerprintKey>> {
        self.keys.get(version)
    }

    /// Version 1, whose secret also keys the request digests under
    /// purposes of their own (it is never dropped).
    pub(crate) fn first(&self) -> Arc<FingerprintKey> {
        self.keys.first()
    }

    /// Every version an index entry may be under, newest first (never empty).
    pub(crate) fn in_use(&self) -> Vec<Arc<FingerprintKey>> {
        self.keys
            .newest_down_to(self.floor())
            .into_iter()
            .map(|(_, key)| key)
            .collect()
    }

    pub(crate) fn floor(&self) -> u32 {
        self.floor.load(Ordering::Acquire)
    }

    /// A floor only rises: a stale (lower) one costs a lookup, never a miss.
    fn raise_floor(&self, floor: u32) {
        self.floor.fetch_max(floor, Ordering::AcqRel);
    }
}

fn make(version: u32, raw: SecretBox<[u8; 32]>) -> Result<FingerprintKey, VaultError> {
    Ok(FingerprintKey::new(version, raw))
}

/// Every fingerprint version in `store`, version 1 made on first use.
/// Records the current version when a store from before rotation lacks it.
pub(in crate::vault) async fn load<S: Store>(store: &S, kek: &Kek) -> Result<FingerprintKeys, VaultError> {
    if store.get(current_key()).await?.is_none() {
        let mut batch = Batch::new();
        batch
            .expect_absent(current_key())
            .put(current_key(), 1u32.to_be_bytes().to_vec());
        match store.commit(batch).await {
            Ok(()) | Err(CommitError::Conflict) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let keys = FingerprintKeys {
        keys: FINGERPRINT.load(store, kek, make).await?,
        floor: AtomicU32::new(1),
    };
    load_floor(store, &keys).await?;
    Ok(keys)
}

async fn load_floor<S: Store>(store: &S, keys: &FingerprintKeys) -> Result<(), VaultError> {
    if let Some(bytes) = store.get(floor_key()).await? {
        keys.raise_floor(decode_version(&bytes, "fingerprint floor")?);
    }
    Ok(())
}

/// Makes `batch` apply only while `version` is the store's current one.
pub(in crate::vault) fn fence(batch: &mut Batch, version: u32) {
    batch.expect_equals(current_key(), version.to_be_bytes().to_vec());
}

impl<S: Store> Vault<S> {
    /// Loads what another node's rotation or rewrap changed: new versions
    /// and a higher floor. Returns the current version.
    pub(in crate::vault) async fn refresh_fingerprints(&self) -> Result<u32, VaultError> {
        let keys = self.keyring.fingerprints();
        let current = FINGERPRINT
            .load_into(&*self.store, &self.kek(), &keys.keys, make)
            .await?;
        load_floor(&*self.store, keys).await?;
        Ok(current)
    }

    /// The index keys a PAN (or a number that must not be one) may be
    /// under, with their versions, the current version first (never empty:
    /// `FingerprintKeys::in_use`).
    pub(in crate::vault) fn fingerprint_index_keys(&self, digits: &str) -> Vec<(u32, Vec<u8>)> {
        self.keyring
            .fingerprints()
            .in_use()
            .iter()
            .map(|key| {
                let fingerprint =
                    key.fingerprint(crate::vault::card::store::PAN_FINGERPRINT, digits.as_bytes());
                (key.version(), layout::card_fingerprint(&fingerprint.to_hex()))
            })
            .collect()
    }

    /// The index key of `digits` under `version`, loading that version
    /// when this node has not seen it.
    pub(in crate::vault) async fn fingerprint_index_key(
        &self,
        digits: &str,
        version: u32,
    ) -> Result<Vec<u8>, VaultError> {
        if self.keyring.fingerprints().get(version).is_none() {
            self.refresh_fingerprints().await?;
        }
        let key = self
            .keyring
            .fingerprints()
            .get(version)
            .ok_or(VaultError::Corrupt {
                what: "card fingerprint version",
            })?;
        let fingerprint = key.fingerprint(crate::vault::card::store::PAN_FINGERPRINT, digits.as_bytes());
        Ok(layout::card_fingerprint(&fingerprint.to_hex()))
    }

    /// Adds fingerprint version current+1, which new cards are indexed
    /// under at once; `keys rewrap` moves stored cards to it. The new key,
    /// the current-version record and the audit record are one write.
    pub async fn rotate_fingerprint_key(&self, actor: &Actor) -> Result<u32, VaultError> {
        let rotation = Rotation {
            which: &FINGERPRINT,
            operation: Operation::KeyRotateFingerprint,
            make,
            describe: |version, _: &FingerprintKey| {
                format!(
                    "fingerprint version {version}: new cards are indexed under it; `keys rewrap` moves stored cards to it, and duplicates are found under every version meanwhile"
                )
            },
            fence: |batch: &mut Batch, version: u32| {
                fence(batch, version - 1);
                batch.put(current_key(), version.to_be_bytes().to_vec());
            },
        };
        self.add_version(actor, &self.keyring.fingerprints().keys, rotation)
            .await
    }

    /// Moves one card's index entry to the current fingerprint version (as
    /// this node knows it: the rewrap refreshes it once per page).
    /// `Ok(false)` when it is there already or the card is gone.
    pub(in crate::vault) async fn refingerprint_card(
        &self,
        key: &[u8],
        bytes: Vec<u8>,
    ) -> Result<bool, VaultError> {
        let mut retry = Retry::new();
        let mut bytes = bytes;
        let mut current = self.keyring.fingerprints().current().version();
        loop {
            let mut record: CardRecord = decode(&bytes, "card")?;
            if record.fingerprint_version >= current {
                return Ok(false);
            }
            let pan = self.open_pan_of(&record).await?;
            let old = self
                .fingerprint_index_key(pan.expose_digits(), record.fingerprint_version)
                .await?;
            let new = self.fingerprint_index_key(pan.expose_digits(), current).await?;
            drop(pan);
            record.fingerprint_version = current;
            let mut batch = Batch::new();
            fence(&mut batch, current);
            batch
                .expect_equals(key.to_vec(), bytes.clone())
                .put(key.to_vec(), encode(&record)?)
                .expect_equals(old.clone(), record.card_ref.as_str())
                .delete(old)
                .expect_absent(new.clone())
                .put(new, record.card_ref.as_str());
            match self.store.commit(batch).await {
                Ok(()) => return Ok(true),
                Err(CommitError::Conflict) => {
                    // The card changed, or another node rotated again.
                    retry.after_conflict().await?;
                    current = self.refresh_fingerprints().await?;
                    match self.store.get(key).await? {
                        Some(now) => bytes = now,
                        None => return Ok(false),
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// How many stored cards each fingerprint version indexes. A full
    /// scan of the cards: O(cards).
    pub async fn cards_per_fingerprint_version(&self) -> Result<BTreeMap<u32, u64>, VaultError> {
        let mut counts = BTreeMap::new();
        self.for_each_under(layout::CARD_PREFIX, |_, value| {
            let record: CardRecord = decode(value, "card")?;
            *counts.entry(record.fingerprint_version).or_insert(0) += 1;
            Ok(())
        })
        .await?;
        Ok(counts)
    }

    /// After a rewrap: raises the stored floor to the oldest version any
    /// card is indexed under, so lookups stop trying older ones. Returns
    /// the floor. A card indexed meanwhile is under the current version,
    /// never below what the count saw.
    pub(in crate::vault) async fn settle_fingerprint_floor(&self) -> Result<u32, VaultError> {
        let current = self.refresh_fingerprints().await?;
        let counts = self.cards_per_fingerprint_version().await?;
        let floor = counts.keys().next().copied().unwrap_or(current).min(current);
        let stored = self.store.get(floor_key()).await?;
        let stored_floor = match &stored {
            Some(bytes) => decode_version(bytes, "fingerprint floor")?,
            None => 1,
        };
        if floor <= stored_floor {
            return Ok(stored_floor);
        }
        let mut batch = Batch::new();
        match stored {
            Some(bytes) => batch.expect_equals(floor_key(), bytes),
            None => batch.expect_absent(floor_key()),
        };
        batch.put(floor_key(), floor.to_be_bytes().to_vec());
        match self.store.commit(batch).await {
            // Another node raised it first: what it wrote is loaded next.
            Ok(()) | Err(CommitError::Conflict) => {}
            Err(e) => return Err(e.into()),
        }
        self.refresh_fingerprints().await?;
        Ok(self.keyring.fingerprints().floor())
    }
}
