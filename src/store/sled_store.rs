//! The embedded default store: one sled database, made durable by group
//! commit. Nothing sled-specific crosses the `Store` trait.

use super::group_commit::GroupCommit;
use super::{Batch, CommitError, Durable, Entry, Expect, Store, StoreError};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

/// Cloning shares the same database.
#[derive(Clone)]
pub struct SledStore {
    inner: Arc<Inner>,
}

struct Inner {
    // Field order matters: the flusher is stopped (and its last flush done)
    // before the database is closed.
    group: GroupCommit,
    db: sled::Db,
}

/// Counters for tests and benchmarks.
#[derive(Clone, Copy, Debug)]
pub struct SledStoreStats {
    /// How many fsyncs the flusher has made; fewer than acknowledged writes
    /// when group commit is sharing them.
    pub flushes: u64,
}

impl SledStore {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(path)
            .open()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let flusher_db = db.clone();
        let group = GroupCommit::start(move || flusher_db.flush().map(drop).map_err(|e| e.to_string()))
            .map_err(|e| StoreError::Backend(format!("cannot start the flusher thread: {e}")))?;
        Ok(SledStore {
            inner: Arc::new(Inner { group, db }),
        })
    }

    pub fn stats(&self) -> SledStoreStats {
        SledStoreStats {
            flushes: self.inner.group.flushes(),
        }
    }

    /// Applies the batch in one sled transaction; preconditions and writes
    /// see one consistent state.
    fn apply_now(&self, batch: &Batch) -> Result<(), CommitError> {
        let db = &self.inner.db;
        if batch.expectations.is_empty() {
            let mut writes = sled::Batch::default();
            for (key, value) in &batch.writes {
                match value {
                    Some(v) => writes.insert(key.as_slice(), v.as_slice()),
                    None => writes.remove(key.as_slice()),
                }
            }
            return db
                .apply_batch(writes)
                .map_err(|e| StoreError::Backend(e.to_string()).into());
        }
        let outcome = db.transaction(|tx| {
            for (key, expect) in &batch.expectations {
                let current = tx.get(key)?;
                let holds = match expect {
                    Expect::Absent => current.is_none(),
                    Expect::Equals(v) => current.as_deref() == Some(v.as_slice()),
                };
                if !holds {
                    return Err(ConflictableTransactionError::Abort(()));
                }
            }
            for (key, value) in &batch.writes {
                match value {
                    Some(v) => tx.insert(key.as_slice(), v.as_slice())?,
                    None => tx.remove(key.as_slice())?,
                };
            }
            Ok(())
        });
        match outcome {
            Ok(()) => Ok(()),
            Err(TransactionError::Abort(())) => Err(CommitError::Conflict),
            Err(TransactionError::Storage(e)) => Err(StoreError::Backend(e.to_string()).into()),
        }
    }
}

impl Store for SledStore {
    async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner
            .db
            .get(key)
            .map(|v| v.map(|iv| iv.to_vec()))
            .map_err(|e| StoreError::Backend(e.to_string()))
    }

    async fn scan_prefix(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        let start = match after {
            Some(a) if a >= prefix => Bound::Excluded(a.to_vec()),
            _ => Bound::Included(prefix.to_vec()),
        };
        let mut out = Vec::new();
        for item in self.inner.db.range::<Vec<u8>, _>((start, Bound::Unbounded)) {
            let (k, v) = item.map_err(|e| StoreError::Backend(e.to_string()))?;
            if !k.starts_with(prefix) || out.len() == limit {
                break;
            }
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    async fn apply(&self, batch: Batch) -> Result<Durable, CommitError> {
        if batch.is_empty() {
            return Ok(Durable::ready());
        }
        self.apply_now(&batch)?;
        Ok(Durable::new(self.inner.group.ticket()))
    }
}
