//! One write's transaction on one pooled connection: preconditions, writes,
//! savepoints, the write id, COMMIT, and what each failure means for the
//! caller (give up, retry, or settle a lost COMMIT).

use super::{checks, describe, end_state, EndState, Seal, CLAIM_ABSENT, DELETE, LOCK_EQUALS, PUT, WRITE_ID};
use crate::store::{Batch, CommitError, StoreError};
use deadpool_postgres::{Client, Object};
use std::collections::BTreeSet;
use tokio_postgres::error::SqlState;

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

fn is_connection_lost(e: &tokio_postgres::Error) -> bool {
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

/// A connection inside a transaction. Dropped without `finish` (an error,
/// or the caller's future dropped), the connection is taken out of the
/// pool and closed, and the server rolls the transaction back: it is never
/// handed to another caller mid-transaction.
pub(super) struct Session {
    client: Option<Client>,
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
        let session = Session { client: Some(client) };
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

    async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, Failure> {
        let client = self.client()?;
        let statement = client.prepare_cached(sql).await.map_err(|e| before_commit(&e))?;
        client
            .execute(&statement, params)
            .await
            .map_err(|e| before_commit(&e))
    }

    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, Failure> {
        let client = self.client()?;
        let statement = client.prepare_cached(sql).await.map_err(|e| before_commit(&e))?;
        client
            .query(&statement, params)
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

    /// Whether `batch`'s preconditions hold, taking the locks that keep
    /// them true until COMMIT. Keys it claims as absent join `claimed`.
    async fn holds(&self, batch: &Batch, claimed: &mut BTreeSet<Vec<u8>>) -> Result<bool, Failure> {
        let Some(checks) = checks(batch, claimed) else {
            return Ok(false);
        };
        if !checks.equals.is_empty() {
            let keys: Vec<&[u8]> = checks.equals.keys().copied().collect();
            let rows = self.query(LOCK_EQUALS, &[&keys]).await?;
            if rows.len() != keys.len() {
                return Ok(false);
            }
            for row in rows {
                let key: &[u8] = row.get(0);
                let value: &[u8] = row.get(1);
                if checks.equals.get(key) != Some(&value) {
                    return Ok(false);
                }
            }
        }
        if !checks.absent.is_empty() {
            let keys: Vec<&[u8]> = checks.absent.iter().copied().collect();
            let rows = self.query(CLAIM_ABSENT, &[&keys]).await?;
            let held = rows.len() == keys.len();
            // Claimed even when not all were: a skipped batch's savepoint
            // rollback removes its placeholders, and a failed seal ends
            // the whole transaction.
            claimed.extend(rows.into_iter().map(|row| row.get::<_, Vec<u8>>(0)));
            return Ok(held);
        }
        Ok(true)
    }

    async fn write(&self, batch: &Batch, claimed: &mut BTreeSet<Vec<u8>>) -> Result<(), Failure> {
        let EndState {
            put_keys,
            put_values,
            deletes,
        } = end_state(batch);
        if !put_keys.is_empty() {
            self.execute(PUT, &[&put_keys, &put_values]).await?;
        }
        if !deletes.is_empty() {
            self.execute(DELETE, &[&deletes]).await?;
        }
        for key in put_keys.iter().chain(&deletes) {
            claimed.remove(*key);
        }
        Ok(())
    }

    /// The whole write: each batch (under a savepoint when it has
    /// preconditions and others share the transaction), the seal, the
    /// placeholders removed, the write id, COMMIT.
    pub(super) async fn run(
        self,
        batches: &[&Batch],
        seal: Seal<'_>,
        id: &[u8],
    ) -> Result<Vec<bool>, Failure> {
        let mut claimed = BTreeSet::new();
        let mut applied = Vec::with_capacity(batches.len());
        for batch in batches {
            let guarded = !batch.expectations.is_empty();
            if guarded {
                self.client()?
                    .batch_execute("SAVEPOINT batch")
                    .await
                    .map_err(|e| before_commit(&e))?;
            }
            let before = claimed.clone();
            let ok = self.holds(batch, &mut claimed).await?;
            if ok {
                self.write(batch, &mut claimed).await?;
            } else if guarded {
                self.client()?
                    .batch_execute("ROLLBACK TO SAVEPOINT batch")
                    .await
                    .map_err(|e| before_commit(&e))?;
                claimed = before;
            }
            if guarded {
                self.client()?
                    .batch_execute("RELEASE SAVEPOINT batch")
                    .await
                    .map_err(|e| before_commit(&e))?;
            }
            applied.push(ok);
        }
        let sealed = match seal(&applied) {
            Ok(sealed) => sealed,
            Err(e) => return Err(self.roll_back(CommitError::Store(e)).await),
        };
        if !self.holds(&sealed, &mut claimed).await? {
            return Err(self.roll_back(CommitError::Conflict).await);
        }
        self.write(&sealed, &mut claimed).await?;
        if !claimed.is_empty() {
            let placeholders: Vec<&[u8]> = claimed.iter().map(Vec::as_slice).collect();
            self.execute(DELETE, &[&placeholders]).await?;
        }
        let flags: Vec<u8> = applied.iter().map(|ok| u8::from(*ok)).collect();
        self.execute(WRITE_ID, &[&id, &flags]).await?;
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
