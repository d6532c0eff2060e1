//! The audit anchors' signing key, by version. The newest signs; every
//! version's public half stays known, so an anchor signed before a rotation
//! still verifies (it names its public key, which must be one pinned).
//! Other nodes take up a rotation at their next anchor.

use super::data_keys::anchor_key;
use super::kek::Kek;
use super::versioned::ANCHOR;
use crate::audit::anchor::{AnchorKey, AnchorPublicKey};
use crate::audit::{Actor, Outcome};
use crate::domain::operation::Operation;
use crate::store::Store;
use crate::vault::retry::Retry;
use crate::vault::{Vault, VaultError};
use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

pub(crate) struct AnchorKeys(RwLock<BTreeMap<u32, Arc<AnchorKey>>>);

impl AnchorKeys {
    /// The newest version and its key.
    pub(crate) fn newest(&self) -> (u32, Arc<AnchorKey>) {
        let keys = self.0.read().unwrap_or_else(PoisonError::into_inner);
        // Invariant: version 1 is loaded at open and never removed.
        let (version, key) = keys.iter().next_back().unwrap_or_else(|| unreachable!());
        (*version, Arc::clone(key))
    }

    /// Every version's public half, oldest first.
    pub(crate) fn public_keys(&self) -> Vec<(u32, AnchorPublicKey)> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(version, key)| (*version, key.public_key()))
            .collect()
    }

    fn holds(&self, version: u32) -> bool {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(&version)
    }

    fn add(&self, version: u32, key: AnchorKey) {
        self.0
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(version)
            .or_insert_with(|| Arc::new(key));
    }
}

/// Every anchor key version in `store`, version 1 made on first use.
pub(in crate::vault) async fn load<S: Store>(store: &S, kek: &Kek) -> Result<AnchorKeys, VaultError> {
    let keys = AnchorKeys(RwLock::new(BTreeMap::from([(
        1,
        Arc::new(anchor_key(ANCHOR.first(store, kek).await?)?),
    )])));
    load_missing(store, kek, &keys).await?;
    Ok(keys)
}

async fn load_missing<S: Store>(store: &S, kek: &Kek, keys: &AnchorKeys) -> Result<u32, VaultError> {
    for (version, seed) in ANCHOR.load_missing(store, kek, |v| keys.holds(v)).await? {
        keys.add(version, anchor_key(seed)?);
    }
    Ok(keys.newest().0)
}

impl<S: Store> Vault<S> {
    /// Takes up anchor key versions another node made; returns the newest.
    pub(in crate::vault) async fn load_new_anchor_keys(&self) -> Result<u32, VaultError> {
        load_missing(&*self.store, &self.kek(), &self.anchor).await
    }

    /// Adds an anchor signing key version: anchors are signed with it from
    /// now on (on other nodes from their next anchor). Older versions'
    /// public halves stay known, so anchors they signed still verify. The
    /// new key and its audit record are one write.
    pub async fn rotate_anchor_key(&self, actor: &Actor) -> Result<u32, VaultError> {
        let _no_kek_rotation_meanwhile = self.budget_lock.lock().await;
        let mut retry = Retry::new();
        loop {
            let version = self.load_new_anchor_keys().await? + 1;
            let (batch, seed) = ANCHOR.new_version(&self.kek(), version)?;
            let key = anchor_key(seed)?;
            let detail = format!(
                "anchor key version {version}: anchors are signed with it; its public key is {}",
                key.public_key().to_hex()
            );
            if self
                .commit_with_audit(
                    batch,
                    actor,
                    Operation::KeyRotateAnchor,
                    None,
                    Outcome::Success,
                    Some(detail),
                )
                .await?
            {
                self.anchor.add(version, key);
                return Ok(version);
            }
            // Another node stored this version first: go past it.
            retry.after_conflict().await?;
        }
    }

    /// Every anchor key version's public half, oldest first, for auditors
    /// to pin (`audit anchor-key`).
    pub fn anchor_public_keys(&self) -> Vec<(u32, AnchorPublicKey)> {
        self.anchor.public_keys()
    }
}
