//! The store the service, its CLI and its app run on, as one type: a
//! backend is chosen at start (`[store] backend`) and everything above
//! holds a `Backend`, never a concrete store. (An enum rather than
//! `dyn Store`: the trait's methods return `impl Future`, so it is not
//! object-safe, and an enum keeps every call statically dispatched.)

use super::{Batch, CommitError, Durable, Entry, PgStore, SledStore, Store, StoreError};
use crate::config::{BackendKind, StoreSection};
use std::path::Path;

#[derive(Clone)]
#[non_exhaustive]
pub enum Backend {
    /// One sled database in the data directory (`SledStore`).
    Sled(SledStore),
    /// A PostgreSQL database shared by any number of nodes (`PgStore`).
    Postgres(PgStore),
}

impl Backend {
    /// The embedded default: sled in `data_dir`, as `[store]` sets it.
    pub fn embedded(data_dir: &Path, settings: &StoreSection) -> Result<Self, StoreError> {
        Ok(Backend::Sled(SledStore::open_with(data_dir, settings.into())?))
    }

    /// Whether other processes may open this store too (PostgreSQL). A
    /// sled database is locked to one process, so nothing in it needs to
    /// be shared between nodes.
    pub fn is_shared(&self) -> bool {
        matches!(self, Backend::Postgres(_))
    }

    /// The backend `[store]` chooses: sled in `data_dir`, or PostgreSQL
    /// (connected, its schema checked against this build's).
    pub async fn open(data_dir: &Path, settings: &StoreSection) -> Result<Self, StoreError> {
        match settings.backend {
            BackendKind::Sled => Backend::embedded(data_dir, settings),
            BackendKind::Postgres => Ok(Backend::Postgres(PgStore::open(&settings.postgres).await?)),
        }
    }

    /// Which backend, for the log.
    pub fn describe(&self) -> &'static str {
        match self {
            Backend::Sled(_) => "sled (embedded)",
            Backend::Postgres(_) => "postgres",
        }
    }
}

impl Store for Backend {
    async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Backend::Sled(store) => store.get(key).await,
            Backend::Postgres(store) => store.get(key).await,
        }
    }

    async fn get_many(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        match self {
            Backend::Sled(store) => store.get_many(keys).await,
            Backend::Postgres(store) => store.get_many(keys).await,
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
            Backend::Postgres(store) => store.scan_prefix(prefix, after, limit).await,
        }
    }

    async fn apply(&self, batch: Batch) -> Result<Durable, CommitError> {
        match self {
            Backend::Sled(store) => store.apply(batch).await,
            Backend::Postgres(store) => store.apply(batch).await,
        }
    }

    async fn apply_sequence(
        &self,
        batches: &[Batch],
        seal: &(dyn Fn(&[bool]) -> Result<Batch, StoreError> + Sync),
    ) -> Result<Vec<Option<Durable>>, CommitError> {
        match self {
            Backend::Sled(store) => store.apply_sequence(batches, seal).await,
            Backend::Postgres(store) => store.apply_sequence(batches, seal).await,
        }
    }
}
