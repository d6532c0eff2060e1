//! The audit anchors' signing key, by version. The newest signs; every
//! version's public half stays known, so an anchor signed before a rotation
//! still verifies (it names its public key, which must be one pinned).
//! Other nodes take up a rotation at their next anchor.

use super::data_keys::anchor_key;
use super::kek::Kek;
use super::versioned::{Rotation, ANCHOR};
use crate::audit::anchor::{AnchorKey, AnchorPublicKey};
use crate::audit::Actor;
use crate::domain::operation::Operation;
use crate::store::{Batch, Store};
use crate::vault::{Vault, VaultError};
use crate::versions::Versions;
use secrecy::SecretBox;

pub(crate) type AnchorKeys = Versions<AnchorKey>;

fn make(_version: u32, seed: SecretBox<[u8; 32]>) -> Result<AnchorKey, VaultError> {
    anchor_key(seed)
}

/// Every anchor key version in `store`, version 1 made on first use.
pub(in crate::vault) async fn load<S: Store>(store: &S, kek: &Kek) -> Result<AnchorKeys, VaultError> {
    ANCHOR.load(store, kek, make).await
}

impl<S: Store> Vault<S> {
    /// Takes up anchor key versions another node made; returns the newest.
    pub(in crate::vault) async fn load_new_anchor_keys(&self) -> Result<u32, VaultError> {
        ANCHOR
            .load_into(&*self.store, &self.kek(), &self.anchor, make)
            .await
    }

    /// Adds an anchor signing key version: anchors are signed with it from
    /// now on (on other nodes from their next anchor). Older versions'
    /// public halves stay known, so anchors they signed still verify. The
    /// new key and its audit record are one write.
    pub async fn rotate_anchor_key(&self, actor: &Actor) -> Result<u32, VaultError> {
        let rotation = Rotation {
            which: &ANCHOR,
            operation: Operation::KeyRotateAnchor,
            make,
            describe: |version, key: &AnchorKey| {
                format!(
                    "anchor key version {version}: anchors are signed with it; its public key is {}",
                    key.public_key().to_hex()
                )
            },
            fence: |_: &mut Batch, _| {},
        };
        self.add_version(actor, &self.anchor, rotation).await
    }

    /// Every anchor key version's public half, oldest first, for auditors
    /// to pin (`audit anchor-key`).
    pub fn anchor_public_keys(&self) -> Vec<(u32, AnchorPublicKey)> {
        let mut keys: Vec<_> = self
            .anchor
            .newest_down_to(1)
            .into_iter()
            .map(|(version, key)| (version, key.public_key()))
            .collect();
        keys.reverse();
        keys
    }
}
