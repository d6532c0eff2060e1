//! What the layers above the vault may do with the store: read the key
//! families they own (`store::keyspace`), nothing else, and write only
//! through the vault's audited commit, again only to their own families.
//! The vault's own records (cards, identities, tokens, keys) and the audit
//! trail are out of their reach: there is no `Vault::store()`.

use super::{AuditObject, Vault, VaultError};
use crate::audit::{Actor, Outcome};
use crate::domain::operation::Operation;
use crate::store::{keyspace, Batch, Entry, Store, StoreError};

/// A layer above the vault, by the `owner` its key families name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    /// Bindings, payments and their indexes.
    Orchestration,
    /// The API's remembered answers (idempotency records).
    Api,
}

impl Layer {
    fn owner(self) -> &'static str {
        match self {
            Layer::Orchestration => "orchestration",
            Layer::Api => "api",
        }
    }

    /// Whether `key` belongs to one of this layer's families.
    fn owns(self, key: &[u8]) -> bool {
        keyspace::family_of(key).is_some_and(|family| family.owner == self.owner())
    }
}

/// Read-only access to one layer's families.
pub struct StoreView<'a, S> {
    store: &'a S,
    layer: Layer,
}

impl<S: Store> StoreView<'_, S> {
    pub async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.admit(key)?;
        self.store.get(key).await
    }

    /// `Store::get_many` of this layer's keys.
    pub async fn get_many(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        for key in keys {
            self.admit(key)?;
        }
        self.store.get_many(keys).await
    }

    /// `Store::scan_prefix` within one of this layer's families.
    pub async fn scan_prefix(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        self.admit(prefix)?;
        self.store.scan_prefix(prefix, after, limit).await
    }

    /// Calls `visit(key, value)` for every record under `prefix` (one of
    /// this layer's families), in key order, a page at a time.
    pub async fn for_each_under(
        &self,
        prefix: &[u8],
        visit: impl FnMut(&[u8], &[u8]) -> Result<(), VaultError>,
    ) -> Result<(), VaultError> {
        self.for_each_between(prefix, None, None, visit).await
    }

    /// `for_each_under`, for the keys after `after` and before `before`
    /// only (either open when `None`).
    pub async fn for_each_between(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        before: Option<&[u8]>,
        mut visit: impl FnMut(&[u8], &[u8]) -> Result<(), VaultError>,
    ) -> Result<(), VaultError> {
        const PAGE: usize = 256;
        let mut after: Option<Vec<u8>> = after.map(<[u8]>::to_vec);
        loop {
            let page = self.scan_prefix(prefix, after.as_deref(), PAGE).await?;
            for (key, value) in &page {
                if before.is_some_and(|end| key.as_slice() >= end) {
                    return Ok(());
                }
                visit(key, value)?;
            }
            match page.last() {
                Some((key, _)) if page.len() == PAGE => after = Some(key.clone()),
                _ => return Ok(()),
            }
        }
    }

    fn admit(&self, key: &[u8]) -> Result<(), StoreError> {
        if self.layer.owns(key) {
            Ok(())
        } else {
            Err(outside(&format!("the {} layer", self.layer.owner()), key))
        }
    }
}

fn outside(who: &str, key: &[u8]) -> StoreError {
    let family = keyspace::family_of(key).map_or("a key in no family", keyspace::Family::as_str);
    StoreError::Backend(format!("{who} may not touch {family}"))
}

/// Refuses a batch from above the vault that touches (writes, or makes a
/// precondition of) a key no layer above owns: the vault's and the audit
/// trail's records change only through the vault's own operations.
pub(super) fn from_above(batch: Batch) -> Result<Batch, VaultError> {
    let keys = batch.expectations.iter().map(|(key, _)| key);
    let keys = keys.chain(batch.writes.iter().map(|(key, _)| key));
    for key in keys {
        if !(Layer::Orchestration.owns(key) || Layer::Api.owns(key)) {
            return Err(VaultError::Store(outside("a write from above the vault", key)));
        }
    }
    Ok(batch)
}

impl<S: Store> Vault<S> {
    /// Read access to `layer`'s own families.
    pub fn store_view(&self, layer: Layer) -> StoreView<'_, S> {
        StoreView {
            store: &*self.store,
            layer,
        }
    }

    /// A write of a layer above, with its audit record, to that layer's own
    /// families only. `Ok(false)`: a precondition failed, nothing written.
    pub(crate) async fn commit_from_above(
        &self,
        batch: Batch,
        actor: &Actor,
        operation: Operation,
        object: Option<AuditObject>,
        outcome: Outcome,
        detail: Option<String>,
    ) -> Result<bool, VaultError> {
        self.commit_with_audit(from_above(batch)?, actor, operation, object, outcome, detail)
            .await
    }

    /// `commit_from_above` for a write several successful records describe
    /// (a reconciliation run and each line that did not match), all in the
    /// same atomic write. `Ok(false)`: a precondition failed.
    pub(crate) async fn commit_from_above_records(
        &self,
        batch: Batch,
        actor: &Actor,
        records: Vec<super::JoinedRecord>,
    ) -> Result<bool, VaultError> {
        let entries = records.into_iter().map(super::JoinedRecord::entry).collect();
        self.apply_with_records(from_above(batch)?, actor, entries).await
    }

    /// Whether the store serves (`/ready`): no commit has waited on it past
    /// `committer::STALLED_AFTER` (a frozen or hung disk), it answers a read
    /// of the chain head and, after a write failed, takes a durable probe
    /// write (so a full or failed disk is not ready, and a recovered one is).
    pub async fn ping(&self) -> Result<(), VaultError> {
        if let Some(stalled) = self.committer.stalled_for() {
            return Err(VaultError::Store(StoreError::Backend(format!(
                "a commit has waited on the store for {} ms",
                stalled.as_millis()
            ))));
        }
        self.store.get(&self.audit.name().head_key()).await?;
        if let Some(custody) = self.custody().await? {
            if custody.kek_version > self.kek_version() {
                return Err(VaultError::Store(StoreError::Backend(format!(
                    "this node holds KEK version {}, the store is at {}: custodians must submit the new set's shares to this node",
                    self.kek_version(),
                    custody.kek_version
                ))));
            }
        }
        if self.committer.last_failed() {
            let mut probe = Batch::new();
            let now = crate::domain::time::Timestamp::now().seconds().to_be_bytes();
            probe.put(keyspace::READY_PROBE.as_bytes(), now.to_vec());
            self.store.commit(probe).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layer_owns_its_families_and_nothing_of_the_vault_or_the_trail() {
        assert!(Layer::Orchestration.owns(&keyspace::PAYMENT.key("p1")));
        assert!(Layer::Api.owns(&keyspace::IDEMPOTENCY.key("k")));
        assert!(!Layer::Api.owns(&keyspace::PAYMENT.key("p1")));
        for vaults in [&keyspace::CARD, &keyspace::DATA_KEY, &keyspace::AUDIT_RECORD] {
            assert!(!Layer::Orchestration.owns(&vaults.key("1")));
            assert!(!Layer::Api.owns(&vaults.key("1")));
        }
        assert!(!Layer::Orchestration.owns(keyspace::AUDIT_HEAD.as_bytes()));
    }

    #[test]
    fn a_batch_from_above_may_not_touch_the_vaults_records() {
        let mut ours = Batch::new();
        ours.put(keyspace::PAYMENT.key("p1"), b"x".to_vec());
        assert!(from_above(ours).is_ok());
        let mut theirs = Batch::new();
        theirs.expect_absent(keyspace::BINDING.key("b1"));
        theirs.delete(keyspace::AUDIT_HEAD.as_bytes().to_vec());
        assert!(from_above(theirs).is_err());
    }
}
