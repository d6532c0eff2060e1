//! The embedded default store: one sled database, made durable by group
//! commit. Nothing sled-specific crosses the `Store` trait.

use super::group_commit::GroupCommit;
use super::{Batch, CommitError, Durable, Entry, Expect, Store, StoreError};
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
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
            .mode(sled::Mode::HighThroughput)
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
            if !holds(tx, batch)? {
                return Err(ConflictableTransactionError::Abort(Aborted::Conflict));
            }
            write(tx, batch)?;
            Ok(())
        });
        outcome.map_err(aborted)
    }

    fn apply_sequence_now(
        &self,
        batches: &[Batch],
        seal: &(dyn Fn(&[bool]) -> Result<Batch, StoreError> + Sync),
    ) -> Result<Vec<bool>, CommitError> {
        self.inner
            .db
            .transaction(|tx| {
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
            .map_err(aborted)
    }
}

/// Why a transaction was abandoned on purpose.
enum Aborted {
    Conflict,
    Seal(StoreError),
}

fn aborted(e: TransactionError<Aborted>) -> CommitError {
    match e {
        TransactionError::Abort(Aborted::Conflict) => CommitError::Conflict,
        TransactionError::Abort(Aborted::Seal(e)) => CommitError::Store(e),
        TransactionError::Storage(e) => StoreError::Backend(e.to_string()).into(),
    }
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

    async fn apply_sequence(
        &self,
        batches: &[Batch],
        seal: &(dyn Fn(&[bool]) -> Result<Batch, StoreError> + Sync),
    ) -> Result<Vec<Option<Durable>>, CommitError> {
        let applied = self.apply_sequence_now(batches, seal)?;
        Ok(applied
            .into_iter()
            .map(|ok| ok.then(|| Durable::new(self.inner.group.ticket())))
            .collect())
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
