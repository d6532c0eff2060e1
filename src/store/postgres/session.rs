//! One write's transaction on one pooled connection: every key locked in
//! key order, preconditions checked against what was locked, the end state
//! written, the write id, COMMIT; and what each failure means for the
//! caller (give up, retry, or settle a lost COMMIT).

use super::{describe, Seal, CLAIM, DELETE, LOCK, LOCK_SHARED, PUT, WRITE_ID};
use crate::store::{keyspace, Batch, CommitError, Expect, StoreError};
use deadpool_postgres::{Client, Object};
use std::collections::{BTreeMap, BTreeSet};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

/// How often a key set is locked again when keys appear or vanish between
/// the claim and the lock (another writer committed in between).
const LOCK_ROUNDS: usize = 4;

/// Why an attempt did not commit.
pub(super) enum Failure {
    /// Final: a precondition failed, the seal failed, or the database
    /// refused the write for a reason a retry would not change.
    Refused(CommitError),
    /// Nothing was committed, and trying again may succeed.
    Retry(String),
    /// COMMIT was sent and its answer lost: it may or may not have committed.
    CommitUnknown(String),
}

pub(super) fn is_connection_lost(e: &tokio_postgres::Error) -> bool {
    match e.code() {
        // No SQLSTATE: the socket failed or closed.
        None => true,
        Some(code) => {
            code.code().starts_with("08")
                || [
                    SqlState::ADMIN_SHUTDOWN,
                    SqlState::CRASH_SHUTDOWN,
                    SqlState::CANNOT_CONNECT_NOW,
                ]
                .contains(code)
        }
    }
}

/// A failure before COMMIT: nothing was committed.
fn before_commit(e: &tokio_postgres::Error) -> Failure {
    let retriable = e
        .code()
        .is_some_and(|c| *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED);
    if retriable || is_connection_lost(e) {
        Failure::Retry(describe(e))
    } else {
        Failure::Refused(StoreError::Backend(describe(e)).into())
    }
}

/// What one key held when it was locked, and holds now in this transaction.
struct Locked {
    /// `None`: absent (a placeholder row of ours stands in for it).
    was: Option<Vec<u8>>,
    now: Option<Vec<u8>>,
}

/// A connection inside a transaction. Dropped without `finish` (an error,
/// or the caller's future dropped), the connection is taken out of the
/// pool and closed, and the server rolls the transaction back: it is never
/// handed to another caller mid-transaction.
pub(super) struct Session {
    client: Option<Client>,
    locked: BTreeMap<Vec<u8>, Locked>,
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            drop(Object::take(client));
        }
    }
}

impl Session {
    pub(super) async fn begin(client: Client) -> Result<Session, Failure> {
        let session = Session {
            client: Some(client),
            locked: BTreeMap::new(),
        };
        session
            .client()?
            .batch_execute("BEGIN")
            .await
            .map_err(|e| before_commit(&e))?;
        Ok(session)
    }

    /// The connection; it is there from `begin` until `finish` or drop,
    /// which take the session by value, so the error is never seen.
    fn client(&self) -> Result<&Client, Failure> {
        self.client
            .as_ref()
            .ok_or_else(|| Failure::Retry("the session had already ended".to_owned()))
    }

    /// Returns the connection to the pool, outside any transaction.
    fn finish(mut self) {
        drop(self.client.take());
    }

    async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, Failure> {
        let client = self.client()?;
        let statement = client.prepare_cached(sql).await.map_err(|e| before_commit(&e))?;
        client
            .execute(&statement, params)
            .await
            .map_err(|e| before_commit(&e))
    }

    /// Abandons the transaction on purpose and returns the connection.
    async fn roll_back(self, why: CommitError) -> Failure {
        let rolled_back = match self.client() {
            Ok(client) => client.batch_execute("ROLLBACK").await.map_err(|e| describe(&e)),
            Err(_) => Err("no connection".to_owned()),
        };
        match rolled_back {
            Ok(()) => self.finish(),
            // The connection is dropped instead; the server rolls back.
            Err(e) => tracing::debug!(error = %e, "rollback failed; closing the connection"),
        }
        Failure::Refused(why)
    }

    /// Locks every key of `batches` not locked yet. First the keys every
    /// transaction locks before any other (`keyspace::locked_first`: the
    /// current data-key and fingerprint versions, which sealing writes
    /// read): `FOR SHARE` when no batch of this call writes them, so sealing
    /// writes on several nodes do not queue on those rows, and `FOR UPDATE`
    /// for the rotation that moves one (a rotation moves one and reads
    /// neither, so two of these locks never wait on each other in a cycle). Then the rest in key order: absent ones
    /// claimed with a placeholder, present ones read `FOR UPDATE`. Every
    /// transaction takes its locks in that one order (those keys, then key
    /// order), so writers queue rather than deadlock.
    async fn lock<'a>(&mut self, batches: impl Iterator<Item = &'a Batch>) -> Result<(), Failure> {
        let mut wanted: BTreeSet<&[u8]> = BTreeSet::new();
        let mut written: BTreeSet<&[u8]> = BTreeSet::new();
        for batch in batches {
            written.extend(batch.writes.iter().map(|(k, _)| k.as_slice()));
            let keys = batch
                .expectations
                .iter()
                .map(|(k, _)| k)
                .chain(batch.writes.iter().map(|(k, _)| k));
            wanted.extend(keys.map(Vec::as_slice).filter(|k| !self.locked.contains_key(*k)));
        }
        let first: Vec<&[u8]> = wanted
            .iter()
            .copied()
            .filter(|k| keyspace::locked_first(k))
            .collect();
        let mut got: Vec<(Vec<u8>, Locked)> = Vec::new();
        // Prepared first (a cache hit after a connection's first use), so
        // that each query below is sent when it is first polled: the
        // pipelined queries reach the server, and run, in the order
        // written.
        let client = self.client()?;
        let prepare = |sql| async move { client.prepare_cached(sql).await.map_err(|e| before_commit(&e)) };
        let (claim, lock, lock_shared) = (
            prepare(CLAIM).await?,
            prepare(LOCK).await?,
            prepare(LOCK_SHARED).await?,
        );
        let mut rounds = 0;
        while !wanted.is_empty() {
            if rounds == LOCK_ROUNDS {
                return Err(Failure::Retry("keys kept changing while being locked".to_owned()));
            }
            // The first-locked keys go first, in the first round only (an
            // absent one, a store's very first write, is claimed later).
            let first_keys: &[&[u8]] = if rounds == 0 { &first } else { &[] };
            rounds += 1;
            let first_lock = if first_keys.iter().any(|k| written.contains(k)) {
                &lock
            } else {
                &lock_shared
            };
            let keys: Vec<&[u8]> = wanted
                .iter()
                .copied()
                .filter(|k| !first_keys.contains(k))
                .collect();
            // One round trip: the first-locked key, then the claim and the
            // lock of the rest (the lock may see our own placeholders, which
            // the claim's answer names).
            let first_keys = first_keys.to_vec();
            let first_params: [&(dyn ToSql + Sync); 1] = [&first_keys];
            let params: [&(dyn ToSql + Sync); 1] = [&keys];
            let (locked_first, claimed, present) = tokio::join!(
                client.query(first_lock, &first_params),
                client.query(&claim, &params),
                client.query(&lock, &params),
            );
            // After a failure the later queries fail as "transaction
            // aborted": the first failure in order is the cause.
            let mut rows = locked_first.map_err(|e| before_commit(&e))?;
            let claimed = claimed.map_err(|e| before_commit(&e))?;
            rows.extend(present.map_err(|e| before_commit(&e))?);
            let claimed: BTreeSet<Vec<u8>> = claimed.into_iter().map(|row| row.get(0)).collect();
            for row in rows {
                let key: Vec<u8> = row.get(0);
                if claimed.contains(&key) {
                    continue;
                }
                let value: Vec<u8> = row.get(1);
                wanted.remove(key.as_slice());
                let was = Some(value);
                got.push((
                    key,
                    Locked {
                        now: was.clone(),
                        was,
                    },
                ));
            }
            for key in claimed {
                wanted.remove(key.as_slice());
                got.push((key, Locked { was: None, now: None }));
            }
            // Left: keys another writer inserted or deleted, and committed,
            // between the claim and the lock; locked again next round.
        }
        self.locked.extend(got);
        Ok(())
    }

    /// Whether `batch`'s preconditions hold in this transaction's state.
    fn holds(&self, batch: &Batch) -> bool {
        batch.expectations.iter().all(|(key, expect)| {
            let now = self.locked.get(key).and_then(|l| l.now.as_deref());
            match expect {
                Expect::Absent => now.is_none(),
                Expect::Equals(value) => now == Some(value.as_slice()),
            }
        })
    }

    /// Applies `batch`'s writes to this transaction's state, in order.
    fn apply(&mut self, batch: &Batch) {
        for (key, value) in &batch.writes {
            if let Some(locked) = self.locked.get_mut(key) {
                locked.now.clone_from(value);
            }
        }
    }

    /// Writes what changed (one upsert, one delete, placeholders left
    /// unfilled among the deletes) and the write id with which batches
    /// applied.
    async fn write_end_state(&self, applied: &[bool], id: &[u8]) -> Result<(), Failure> {
        let (mut put_keys, mut put_values, mut deletes) = (Vec::new(), Vec::new(), Vec::new());
        for (key, locked) in &self.locked {
            match (&locked.was, &locked.now) {
                (was, Some(now)) if was.as_ref() != Some(now) => {
                    put_keys.push(key.as_slice());
                    put_values.push(now.as_slice());
                }
                // Absent now: deleted, or a placeholder nobody filled.
                (_, None) => deletes.push(key.as_slice()),
                _ => {}
            }
        }
        // Every statement is in this transaction whatever order they reach
        // the server in, so they travel together: one round trip.
        let put = async {
            if put_keys.is_empty() {
                return Ok(0);
            }
            self.execute(PUT, &[&put_keys, &put_values]).await
        };
        let delete = async {
            if deletes.is_empty() {
                return Ok(0);
            }
            self.execute(DELETE, &[&deletes]).await
        };
        let flags: Vec<u8> = applied.iter().map(|ok| u8::from(*ok)).collect();
        let write_id_params: [&(dyn ToSql + Sync); 2] = [&id, &flags];
        let write_id = self.execute(WRITE_ID, &write_id_params);
        tokio::try_join!(put, delete, write_id)?;
        Ok(())
    }

    /// The whole write: lock, check and apply each batch, seal, write the
    /// end state and the write id, COMMIT. Returns which batches applied.
    pub(super) async fn run(
        mut self,
        batches: &[&Batch],
        seal: Seal<'_>,
        id: &[u8],
    ) -> Result<Vec<bool>, Failure> {
        self.lock(batches.iter().copied()).await?;
        let mut applied = Vec::with_capacity(batches.len());
        for batch in batches {
            let ok = self.holds(batch);
            if ok {
                self.apply(batch);
            }
            applied.push(ok);
        }
        let sealed = match seal(&applied) {
            Ok(sealed) => sealed,
            Err(e) => return Err(self.roll_back(CommitError::Store(e)).await),
        };
        self.lock(std::iter::once(&sealed)).await?;
        if !self.holds(&sealed) {
            return Err(self.roll_back(CommitError::Conflict).await);
        }
        self.apply(&sealed);
        self.write_end_state(&applied, id).await?;
        match self.client()?.batch_execute("COMMIT").await {
            Ok(()) => {
                self.finish();
                Ok(applied)
            }
            Err(e) if is_connection_lost(&e) => Err(Failure::CommitUnknown(describe(&e))),
            Err(e) => Err(before_commit(&e)),
        }
    }
}
