//! The store the service, its CLI and its app run on, as one type: a
//! backend is chosen at start and everything above holds a `Backend`, never
//! a concrete store. Today it has one variant, the embedded sled database;
//! the PostgreSQL store joins as a second, and nothing above this file
//! changes. (An enum rather than `dyn Store`: the trait's methods return
//! `impl Future`, so it is not object-safe, and an enum keeps every call
//! statically dispatched.)

use super::{Batch, CommitError, Durable, Entry, SledStore, Store, StoreError};
use crate::config::StoreSection;
use std::path::Path;

#[derive(Clone)]
#[non_exhaustive]
pub enum Backend {
    /// One sled database in the data directory (`SledStore`).
    Sled(SledStore),
}

impl Backend {
    /// The embedded default: sled in `data_dir`, as `[store]` sets it.
    pub fn embedded(data_dir: &Path, settings: &StoreSection) -> Result<Self, StoreError> {
        Ok(Backend::Sled(SledStore::open_with(data_dir, settings.into())?))
    }
}

impl Store for Backend {
    async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Backend::Sled(store) => store.get(key).await,
        }
    }

    async fn scan_prefix(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        match self {
            Backend::Sled(store) => store.scan_prefix(prefix, after, limit).await,
        }
    }

    async fn apply(&self, batch: Batch) -> Result<Durable, CommitError> {
        match self {
            Backend::Sled(store) => store.apply(batch).await,
        }
    }

    async fn apply_sequence(
        &self,
        batches: &[Batch],
        seal: &(dyn Fn(&[bool]) -> Result<Batch, StoreError> + Sync),
    ) -> Result<Vec<Option<Durable>>, CommitError> {
        match self {
            Backend::Sled(store) => store.apply_sequence(batches, seal).await,
        }
    }
}
