//! The embedded default store: one sled database, made durable by group
//! commit. Nothing sled-specific crosses the `Store` trait.
//!
//! sled keeps the first I/O error it meets (a full disk, say) and fails
//! every later call until the database is reopened. So an error marks the
//! database broken, and the next call (at most one attempt a second)
//! closes and reopens it in-process: once the disk can take writes again,
//! the service recovers without a restart. What was applied but never made
//! durable was never acknowledged; the committer re-reads the chain head
//! from the store after any failure.

use super::group_commit::GroupCommit;
use super::{Batch, CommitError, Durable, Entry, Expect, Store, StoreError};
use crate::config::StoreSection;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// How often a broken database is tried again.
const REOPEN_EVERY: Duration = Duration::from_secs(1);

/// Cloning shares the same database.
#[derive(Clone)]
pub struct SledStore {
    inner: Arc<Inner>,
}

struct Inner {
    // Field order matters: the flusher is stopped (and its last flush done)
    // before the database is closed.
    group: GroupCommit,
    db: Arc<DbSlot>,
}

/// How the sled database is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SledSettings {
    /// sled's page cache, in bytes (its own default is 1 GiB). The cache
    /// holds tree nodes; RSS grows with it up to about this plus the
    /// process's own memory (README, Benchmarks, scale).
    pub cache_bytes: u64,
}

impl Default for SledSettings {
    fn default() -> Self {
        SledSettings::from(&StoreSection::default())
    }
}

impl From<&StoreSection> for SledSettings {
    fn from(section: &StoreSection) -> Self {
        SledSettings {
            cache_bytes: section.cache_bytes(),
        }
    }
}

/// The open database, or none while a reopen has not succeeded yet.
struct DbSlot {
    path: PathBuf,
    settings: SledSettings,
    /// Calls hold the read side while they use the database, so a reopen
    /// (the write side) runs only when none is in flight and the old
    /// database, with its file lock, is really closed first.
    db: RwLock<Option<sled::Db>>,
    broken: AtomicBool,
    last_attempt: Mutex<Option<Instant>>,
    reopens: AtomicU64,
}

fn open_db(path: &Path, settings: SledSettings) -> sled::Result<sled::Db> {
    sled::Config::new()
        .path(path)
        .mode(sled::Mode::HighThroughput)
        .cache_capacity(settings.cache_bytes)
        .open()
}

impl DbSlot {
    /// Runs `f` on the open database; a broken one is reopened first.
    fn with<T>(&self, f: impl FnOnce(&sled::Db) -> T) -> Result<T, StoreError> {
        if self.broken.load(Ordering::Acquire) {
            self.try_reopen();
        }
        let guard = self.db.read().unwrap_or_else(PoisonError::into_inner);
        match guard.as_ref() {
            Some(db) => Ok(f(db)),
            None => Err(StoreError::Backend(
                "the database is being reopened after an I/O error".to_owned(),
            )),
        }
    }

    /// Marks the database broken after sled reported an error.
    fn failed(&self, error: &sled::Error) -> StoreError {
        if !self.broken.swap(true, Ordering::AcqRel) {
            tracing::error!(error = %error, "storage error: the database will be reopened once writes can succeed");
        }
        StoreError::Backend(error.to_string())
    }

    fn try_reopen(&self) {
        {
            let mut last = self.last_attempt.lock().unwrap_or_else(PoisonError::into_inner);
            if last.is_some_and(|t| t.elapsed() < REOPEN_EVERY) {
                return;
            }
            *last = Some(Instant::now());
        }
        let mut slot = self.db.write().unwrap_or_else(PoisonError::into_inner);
        if !self.broken.load(Ordering::Acquire) {
            return;
        }
        // Closed before reopening: sled holds a lock on its files.
        drop(slot.take());
        // If the disk still cannot take writes, the next write fails and
        // marks it broken again.
        match open_db(&self.path, self.settings) {
            Ok(db) => {
                *slot = Some(db);
                self.broken.store(false, Ordering::Release);
                self.reopens.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("storage recovered: the database was reopened after an I/O error");
            }
            Err(e) => tracing::warn!(error = %e, "storage still failing; retrying in a second"),
        }
    }
}

/// Counters for tests and benchmarks.
#[derive(Clone, Copy, Debug)]
pub struct SledStoreStats {
    /// How many fsyncs the flusher has made; fewer than acknowledged writes
    /// when group commit is sharing them.
    pub flushes: u64,
    /// How often the database was reopened after an I/O error.
    pub reopens: u64,
}

impl SledStore {
    /// Opens (or creates) the database at `path` with sled's defaults.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        SledStore::open_with(path, SledSettings::default())
    }

    pub fn open_with(path: &Path, settings: SledSettings) -> Result<Self, StoreError> {
        let db = open_db(path, settings).map_err(|e| StoreError::Backend(e.to_string()))?;
        let slot = Arc::new(DbSlot {
            path: path.to_owned(),
            settings,
            db: RwLock::new(Some(db)),
            broken: AtomicBool::new(false),
            last_attempt: Mutex::new(None),
            reopens: AtomicU64::new(0),
        });
        let flusher_slot = Arc::clone(&slot);
        let group = GroupCommit::start(move || match flusher_slot.with(|db| db.flush()) {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(flusher_slot.failed(&e).to_string()),
            Err(e) => Err(e.to_string()),
        })
        .map_err(|e| StoreError::Backend(format!("cannot start the flusher thread: {e}")))?;
        Ok(SledStore {
            inner: Arc::new(Inner { group, db: slot }),
        })
    }

    pub fn stats(&self) -> SledStoreStats {
        SledStoreStats {
            flushes: self.inner.group.flushes(),
            reopens: self.inner.db.reopens.load(Ordering::Relaxed),
        }
    }

    /// The durability of what was applied so far (call right after the
    /// write). The flush is asked for when the future is first polled, not
    /// now, so writes whose flush nobody waits for yet (plain reads' audit
    /// records) start none; and not at all if one has started since the
    /// write, so the writes of one group polled one by one share a flush.
    fn durable(&self) -> Durable {
        let applied = self.inner.group.applied();
        let inner = Arc::clone(&self.inner);
        Durable::new(async move { inner.group.ticket(applied).await })
    }

    /// Runs a sled call; its error marks the database broken.
    fn call<T>(&self, f: impl FnOnce(&sled::Db) -> sled::Result<T>) -> Result<T, StoreError> {
        self.inner.db.with(f)?.map_err(|e| self.inner.db.failed(&e))
    }

    /// Applies the batch in one sled transaction; preconditions and writes
    /// see one consistent state.
    fn apply_now(&self, batch: &Batch) -> Result<(), CommitError> {
        if batch.expectations.is_empty() {
            let mut writes = sled::Batch::default();
            for (key, value) in &batch.writes {
                match value {
                    Some(v) => writes.insert(key.as_slice(), v.as_slice()),
                    None => writes.remove(key.as_slice()),
                }
            }
            return Ok(self.call(|db| db.apply_batch(writes))?);
        }
        let outcome = self.inner.db.with(|db| {
            db.transaction(|tx| {
                if !holds(tx, batch)? {
                    return Err(ConflictableTransactionError::Abort(Aborted::Conflict));
                }
                write(tx, batch)?;
                Ok(())
            })
        })?;
        outcome.map_err(|e| self.aborted(e))
    }

    fn aborted(&self, e: TransactionError<Aborted>) -> CommitError {
        match e {
            TransactionError::Abort(Aborted::Conflict) => CommitError::Conflict,
            TransactionError::Abort(Aborted::Seal(e)) => CommitError::Store(e),
            TransactionError::Storage(e) => self.inner.db.failed(&e).into(),
        }
    }

    fn apply_sequence_now(
        &self,
        batches: &[Batch],
        seal: &(dyn Fn(&[bool]) -> Result<Batch, StoreError> + Sync),
    ) -> Result<Vec<bool>, CommitError> {
        let outcome = self.inner.db.with(|db| {
            db.transaction(|tx| {
                let mut applied = Vec::with_capacity(batches.len());
                for batch in batches {
                    // sled's transactional reads see this transaction's own
                    // earlier writes, so later batches are checked against
                    // the state the earlier ones left.
                    let ok = holds(tx, batch)?;
                    if ok {
                        write(tx, batch)?;
                    }
                    applied.push(ok);
                }
                let sealed =
                    seal(&applied).map_err(|e| ConflictableTransactionError::Abort(Aborted::Seal(e)))?;
                if !holds(tx, &sealed)? {
                    return Err(ConflictableTransactionError::Abort(Aborted::Conflict));
                }
                write(tx, &sealed)?;
                Ok(applied)
            })
        })?;
        outcome.map_err(|e| self.aborted(e))
    }
}

/// Why a transaction was abandoned on purpose.
enum Aborted {
    Conflict,
    Seal(StoreError),
}

type TxResult<T> = Result<T, ConflictableTransactionError<Aborted>>;

fn holds(tx: &TransactionalTree, batch: &Batch) -> TxResult<bool> {
    for (key, expect) in &batch.expectations {
        let current = tx.get(key)?;
        let ok = match expect {
            Expect::Absent => current.is_none(),
            Expect::Equals(v) => current.as_deref() == Some(v.as_slice()),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn write(tx: &TransactionalTree, batch: &Batch) -> TxResult<()> {
    for (key, value) in &batch.writes {
        match value {
            Some(v) => tx.insert(key.as_slice(), v.as_slice())?,
            None => tx.remove(key.as_slice())?,
        };
    }
    Ok(())
}

impl Store for SledStore {
    async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.call(|db| db.get(key).map(|v| v.map(|iv| iv.to_vec())))
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
        self.call(|db| {
            let mut out = Vec::new();
            for item in db.range::<Vec<u8>, _>((start, Bound::Unbounded)) {
                let (k, v) = item?;
                if !k.starts_with(prefix) || out.len() == limit {
                    break;
                }
                out.push((k.to_vec(), v.to_vec()));
            }
            Ok(out)
        })
    }

    async fn apply(&self, batch: Batch) -> Result<Durable, CommitError> {
        if batch.is_empty() {
            return Ok(Durable::ready());
        }
        self.apply_now(&batch)?;
        Ok(self.durable())
    }

    async fn apply_sequence(
        &self,
        batches: &[Batch],
        seal: &(dyn Fn(&[bool]) -> Result<Batch, StoreError> + Sync),
    ) -> Result<Vec<Option<Durable>>, CommitError> {
        let applied = self.apply_sequence_now(batches, seal)?;
        Ok(applied.into_iter().map(|ok| ok.then(|| self.durable())).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(expect_absent: &[u8], put: &[u8]) -> Batch {
        let mut b = Batch::new();
        b.expect_absent(expect_absent.to_vec())
            .put(put.to_vec(), b"v".to_vec());
        b
    }

    #[tokio::test]
    async fn a_sequence_checks_each_batch_against_the_ones_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        // The second batch expects `a` absent, but the first wrote it: skipped.
        let batches = [batch(b"a", b"a"), batch(b"a", b"b"), batch(b"c", b"c")];
        let seen = std::sync::Mutex::new(Vec::new());
        let seal = |applied: &[bool]| {
            seen.lock().unwrap().push(applied.to_vec());
            let mut b = Batch::new();
            b.put(
                b"sealed".to_vec(),
                vec![applied.iter().filter(|x| **x).count() as u8],
            );
            Ok(b)
        };
        let durables = store.apply_sequence(&batches, &seal).await.unwrap();
        assert_eq!(
            durables.iter().map(Option::is_some).collect::<Vec<_>>(),
            [true, false, true]
        );
        for d in durables.into_iter().flatten() {
            d.await.unwrap();
        }
        assert_eq!(seen.lock().unwrap().last().unwrap(), &[true, false, true]);
        assert!(
            store.get(b"b").await.unwrap().is_none(),
            "skipped batch wrote nothing"
        );
        assert_eq!(store.get(b"sealed").await.unwrap(), Some(vec![2]));

        // A seal whose own precondition fails writes nothing at all.
        let refuse = |_: &[bool]| {
            let mut b = Batch::new();
            b.expect_absent(b"a".to_vec());
            Ok(b)
        };
        let outcome = store.apply_sequence(&[batch(b"x", b"x")], &refuse).await;
        assert!(matches!(outcome, Err(CommitError::Conflict)));
        assert!(store.get(b"x").await.unwrap().is_none());
    }
}
