//! The PostgreSQL store: the `Store` trait on one key-value table
//! (`migrations/`), for running past one machine. The semantics are sled's:
//!
//! - A write first locks every key it names, in key order, in two
//!   statements: keys that exist are read `FOR UPDATE`; keys that do not
//!   are claimed with a placeholder row (`INSERT … ON CONFLICT DO NOTHING`,
//!   counted by the rows it returns), so a concurrent writer of that key
//!   waits on the unique index until this transaction ends. Placeholders
//!   the write does not fill are deleted before COMMIT.
//! - Preconditions are then checked against what was locked, batch by
//!   batch, each against the state the batches before it left; a batch
//!   whose preconditions fail is skipped without touching the database
//!   (what a savepoint rolled back would leave, without the round trips),
//!   and a seal whose preconditions fail rolls the whole transaction back.
//!   The end state is written in one upsert and one delete.
//! - Locking in one key order is what keeps concurrent writers from
//!   deadlocking; the seal's keys (the audit chain's head and records) are
//!   locked after the rest, the same way by every writer.
//! - Serialization failures and deadlocks (40001, 40P01), and a connection
//!   lost before COMMIT, retry inside the store with a bound; `seal` is
//!   called again, which the trait allows.
//! - COMMIT with `synchronous_commit = on` is the durable acknowledgement.
//! - When the answer to COMMIT is lost (the connection died), the outcome
//!   is settled, never guessed: every transaction inserts a random write id
//!   with which batches applied; the store then inserts that same id itself
//!   on a fresh connection. The insert waits on the lost transaction if it
//!   is still running; if it succeeds, the lost one did not commit and now
//!   never can (its id is taken), so the write is retried; if the id is
//!   there, it committed, and its answer is what the row says.

mod connect;
mod schema;
mod session;

pub use schema::{Migrated, SCHEMA_VERSION};

use super::{Batch, CommitError, Durable, Entry, Store, StoreError};
use crate::config::PostgresSection;
use crate::domain::random;
use deadpool_postgres::Pool;
use session::{Failure, Session};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Attempts per write before the store gives up (each after a short,
/// random pause).
const ATTEMPTS: u32 = 8;
/// Attempts to settle a lost COMMIT before answering `OutcomeUnknown`.
const SETTLE_ATTEMPTS: u32 = 10;
/// Write ids older than this are deleted; a lost COMMIT is settled within
/// seconds, far inside it.
const WRITE_ID_AGE: &str = "15 minutes";
const PRUNE_EVERY: Duration = Duration::from_secs(60);

const GET: &str = "SELECT value FROM tokenvault_kv WHERE key = $1";
const GET_MANY: &str = "SELECT key, value FROM tokenvault_kv WHERE key = ANY($1)";
const SCAN_FROM: &str =
    "SELECT key, value FROM tokenvault_kv WHERE key >= $1 AND key < $2 ORDER BY key LIMIT $3";
const SCAN_AFTER: &str =
    "SELECT key, value FROM tokenvault_kv WHERE key > $1 AND key < $2 ORDER BY key LIMIT $3";
const SCAN_FROM_TO_END: &str = "SELECT key, value FROM tokenvault_kv WHERE key >= $1 ORDER BY key LIMIT $2";
const SCAN_AFTER_TO_END: &str = "SELECT key, value FROM tokenvault_kv WHERE key > $1 ORDER BY key LIMIT $2";
const LOCK: &str = "SELECT key, value FROM tokenvault_kv WHERE key = ANY($1) ORDER BY key FOR UPDATE";
/// A key locked before all others that this write only reads (the current
/// data-key version every sealing write is fenced on): shared, so writes on
/// several nodes that read it do not queue on it (`keyspace::locked_first`).
const LOCK_SHARED: &str = "SELECT key, value FROM tokenvault_kv WHERE key = ANY($1) ORDER BY key FOR SHARE";
const CLAIM: &str = "INSERT INTO tokenvault_kv (key, value) \
     SELECT k, '\\x'::bytea FROM unnest($1::bytea[]) AS k ORDER BY k \
     ON CONFLICT DO NOTHING RETURNING key";
const PUT: &str = "INSERT INTO tokenvault_kv (key, value) \
     SELECT * FROM unnest($1::bytea[], $2::bytea[]) \
     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value";
const DELETE: &str = "DELETE FROM tokenvault_kv WHERE key = ANY($1)";
const WRITE_ID: &str = "INSERT INTO tokenvault_writes (id, applied) VALUES ($1, $2)";
const FENCE: &str = "INSERT INTO tokenvault_writes (id, applied) VALUES ($1, NULL) ON CONFLICT DO NOTHING";
const LOOK_UP: &str = "SELECT applied FROM tokenvault_writes WHERE id = $1";

/// Cloning shares the pool.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    pruner: tokio::task::AbortHandle,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.pruner.abort();
    }
}

/// A database error as the log and the 503 show it: its code and message,
/// never its detail (which can quote a key).
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!(
            "PostgreSQL {} {}: {}",
            db.severity(),
            db.code().code(),
            db.message()
        ),
        // The driver's own text names only the step ("error performing
        // TLS handshake"); the cause (an unknown issuer, a refused
        // connection) is in its sources.
        None => {
            let mut text = format!("PostgreSQL: {e}");
            let mut source = std::error::Error::source(e);
            while let Some(cause) = source {
                text.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            text
        }
    }
}

fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => StoreError::Backend(describe(&e)),
        other => StoreError::Backend(format!("PostgreSQL connection pool: {other}")),
    }
}

impl PgStore {
    /// Connects once (so a wrong URL, an unreachable server or a failed TLS
    /// check is an error now, not at the first request). The schema is
    /// not checked: `open` does, `migrate` needs not.
    pub async fn connect(settings: &PostgresSection) -> Result<Self, StoreError> {
        let pool = connect::pool(settings)?;
        drop(pool.get().await.map_err(pool_error)?);
        let inner = Arc::new_cyclic(|weak: &Weak<Inner>| Inner {
            pool,
            pruner: tokio::spawn(prune_write_ids(weak.clone())).abort_handle(),
        });
        Ok(PgStore { inner })
    }

    /// `connect`, then refuse a schema other than this build's.
    pub async fn open(settings: &PostgresSection) -> Result<Self, StoreError> {
        let store = PgStore::connect(settings).await?;
        store.check_schema().await?;
        Ok(store)
    }

    async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        self.inner.pool.get().await.map_err(pool_error)
    }

    /// A read. One whose connection turns out dead (the database restarted
    /// since it was pooled) is asked once more on a fresh connection: a
    /// read changes nothing, so asking again is safe.
    async fn read(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let mut tries = 0;
        loop {
            tries += 1;
            let client = self.client().await?;
            let outcome = match client.prepare_cached(sql).await {
                Ok(statement) => client.query(&statement, params).await,
                Err(e) => Err(e),
            };
            match outcome {
                Ok(rows) => return Ok(rows),
                Err(e) if tries < 2 && session::is_connection_lost(&e) => {
                    // Closed rather than returned: the pool makes a new one.
                    drop(deadpool_postgres::Object::take(client));
                }
                Err(e) => return Err(StoreError::Backend(describe(&e))),
            }
        }
    }

    /// Runs `batches` then the seal in one transaction, retrying what may
    /// be retried and settling a lost COMMIT. Returns which batches applied.
    async fn write(&self, batches: &[&Batch], seal: Seal<'_>) -> Result<Vec<bool>, CommitError> {
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            if attempt > 1 {
                pause(attempt).await;
            }
            let id = random::array::<16>().map_err(|e| StoreError::Backend(e.to_string()))?;
            let session = Session::begin(self.client().await?).await;
            let failure = match session {
                Ok(session) => match session.run(batches, seal, &id).await {
                    Ok(applied) => return Ok(applied),
                    Err(failure) => failure,
                },
                Err(failure) => failure,
            };
            match failure {
                Failure::Refused(e) => return Err(e),
                Failure::Retry(reason) => last = reason,
                Failure::CommitUnknown(reason) => match self.settle(&id).await {
                    Ok(Some(applied)) => return Ok(applied),
                    Ok(None) => last = reason,
                    Err(e) => {
                        return Err(StoreError::OutcomeUnknown(format!(
                            "{reason}; and its outcome could not be checked: {e}"
                        ))
                        .into())
                    }
                },
            }
        }
        Err(StoreError::Backend(format!("gave up after {ATTEMPTS} attempts: {last}")).into())
    }

    /// After a lost COMMIT: whether the write with `id` committed, and if
    /// so which batches applied. Fences the id first, so a transaction
    /// still in flight with it either has committed or never will.
    async fn settle(&self, id: &[u8]) -> Result<Option<Vec<bool>>, StoreError> {
        let mut last = StoreError::Closed;
        for attempt in 1..=SETTLE_ATTEMPTS {
            if attempt > 1 {
                pause(attempt).await;
            }
            match self.fence(id).await {
                Ok(outcome) => return Ok(outcome),
                Err(e) => {
                    tracing::warn!(error = %e, attempt, "cannot yet check whether a write whose COMMIT answer was lost committed");
                    last = e;
                }
            }
        }
        Err(last)
    }

    async fn fence(&self, id: &[u8]) -> Result<Option<Vec<bool>>, StoreError> {
        let client = self.client().await?;
        let fail = |e: tokio_postgres::Error| StoreError::Backend(describe(&e));
        let fence = client.prepare_cached(FENCE).await.map_err(fail)?;
        if client.execute(&fence, &[&id]).await.map_err(fail)? == 1 {
            return Ok(None);
        }
        let look_up = client.prepare_cached(LOOK_UP).await.map_err(fail)?;
        let row = client.query_one(&look_up, &[&id]).await.map_err(fail)?;
        // NULL: the id was fenced (by an earlier try of this settle whose
        // own answer was lost), so the write never committed.
        Ok(row
            .get::<_, Option<Vec<u8>>>(0)
            .map(|flags| flags.iter().map(|f| *f == 1).collect()))
    }
}

/// Backs off a little more each attempt, randomised so that writers that
/// deadlocked with each other do not meet again.
async fn pause(attempt: u32) {
    // 10 ms, 20 ms, … up to 640 ms, plus as much again at random.
    let base = 5u64 << attempt.min(7);
    let jitter = random::below(base).unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(base + jitter)).await;
}

async fn prune_write_ids(store: Weak<Inner>) {
    let sql = format!("DELETE FROM tokenvault_writes WHERE committed_at < now() - interval '{WRITE_ID_AGE}'");
    loop {
        tokio::time::sleep(PRUNE_EVERY).await;
        let Some(inner) = store.upgrade() else { return };
        let outcome = match inner.pool.get().await {
            Ok(client) => client.execute(&sql, &[]).await.map_err(|e| describe(&e)),
            Err(e) => Err(e.to_string()),
        };
        drop(inner);
        if let Err(e) = outcome {
            tracing::warn!(error = %e, "could not prune old write ids; will try again");
        }
    }
}

/// The seal of a write: the batch that joins it once the others are known.
type Seal<'a> = &'a (dyn Fn(&[bool]) -> Result<Batch, StoreError> + Sync);

/// The smallest key greater than every key starting with `prefix`, if any.
fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut upper = prefix.to_vec();
    while let Some(last) = upper.pop() {
        if last < u8::MAX {
            upper.push(last + 1);
            return Some(upper);
        }
    }
    None
}

impl Store for PgStore {
    async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let rows = self.read(GET, &[&key]).await?;
        Ok(rows.first().map(|r| r.get(0)))
    }

    async fn get_many(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
        let rows = self.read(GET_MANY, &[&wanted]).await?;
        let found: std::collections::HashMap<Vec<u8>, Vec<u8>> =
            rows.into_iter().map(|r| (r.get(0), r.get(1))).collect();
        Ok(keys.iter().map(|key| found.get(key).cloned()).collect())
    }

    async fn scan_prefix(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        // From the prefix itself, or after `after`; up to the prefix's
        // successor, or the end of the key space when it has none.
        let (start, inclusive) = match after {
            Some(a) if a >= prefix => (a, false),
            _ => (prefix, true),
        };
        let upper = successor(prefix);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = match (&upper, inclusive) {
            (Some(upper), true) => self.read(SCAN_FROM, &[&start, upper, &limit]).await,
            (Some(upper), false) => self.read(SCAN_AFTER, &[&start, upper, &limit]).await,
            (None, true) => self.read(SCAN_FROM_TO_END, &[&start, &limit]).await,
            (None, false) => self.read(SCAN_AFTER_TO_END, &[&start, &limit]).await,
        }?;
        Ok(rows
            .into_iter()
            .map(|row| (row.get(0), row.get(1)))
            .filter(|(k, _): &Entry| k.starts_with(prefix))
            .collect())
    }

    async fn apply(&self, batch: Batch) -> Result<Durable, CommitError> {
        // As on sled: a batch without writes applies trivially.
        if batch.is_empty() {
            return Ok(Durable::ready());
        }
        // The batch is the seal of a write with no other batches: its
        // preconditions failing is a conflict, and nothing is written.
        let seal = |_: &[bool]| Ok(batch.clone());
        self.write(&[], &seal).await?;
        Ok(Durable::ready())
    }

    async fn apply_sequence(
        &self,
        batches: &[Batch],
        seal: &(dyn Fn(&[bool]) -> Result<Batch, StoreError> + Sync),
    ) -> Result<Vec<Option<Durable>>, CommitError> {
        let batches: Vec<&Batch> = batches.iter().collect();
        let applied = self.write(&batches, seal).await?;
        Ok(applied.into_iter().map(|ok| ok.then(Durable::ready)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_successor_bounds_exactly_the_keys_with_the_prefix() {
        assert_eq!(successor(b"card/"), Some(b"card0".to_vec()));
        assert_eq!(successor(&[1, 0xff, 0xff]), Some(vec![2]));
        assert_eq!(successor(&[0xff, 0xff]), None);
        assert_eq!(successor(b""), None);
    }
}
