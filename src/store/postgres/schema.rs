//! The schema as code: numbered migrations compiled into the binary,
//! applied in order by `tokenvault store migrate`, and the version check
//! every node makes before it serves (it refuses a schema older or newer
//! than the one it was built for, naming both).

use super::{describe, PgStore};
use crate::store::StoreError;

/// Every migration, in order: (version, SQL). A new one is appended, never edited.
const MIGRATIONS: &[(i32, &str)] = &[(1, include_str!("migrations/0001_key_value.sql"))];

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: i32 = 1;

/// Held (as a transaction-scoped advisory lock) while migrating, so two
/// `migrate` runs at once apply each step once. "tokenvault" in ASCII.
const MIGRATION_LOCK: i64 = 0x746f_6b65_6e76;

const CREATE_VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS tokenvault_schema (
    version    integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)";

/// What `migrate` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Migrated {
    pub from: i32,
    pub to: i32,
}

fn behind(found: i32) -> StoreError {
    StoreError::Backend(format!(
        "PostgreSQL: the database schema is version {found}, this build needs version {SCHEMA_VERSION}: run `tokenvault store migrate --config FILE` first"
    ))
}

fn ahead(found: i32) -> StoreError {
    StoreError::Backend(format!(
        "PostgreSQL: the database schema is version {found}, newer than this build knows (version {SCHEMA_VERSION}): upgrade this node, do not downgrade the schema"
    ))
}

/// The version recorded in the database; 0 when it has never been migrated.
async fn current(client: &impl deadpool_postgres::GenericClient) -> Result<i32, StoreError> {
    let exists = client
        .query_one("SELECT to_regclass('tokenvault_schema') IS NOT NULL", &[])
        .await
        .map_err(|e| StoreError::Backend(describe(&e)))?;
    if !exists.get::<_, bool>(0) {
        return Ok(0);
    }
    let row = client
        .query_one("SELECT coalesce(max(version), 0) FROM tokenvault_schema", &[])
        .await
        .map_err(|e| StoreError::Backend(describe(&e)))?;
    Ok(row.get(0))
}

impl PgStore {
    /// Refuses to serve on a schema this build was not made for.
    pub(super) async fn check_schema(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        match current(&client).await? {
            SCHEMA_VERSION => Ok(()),
            found if found < SCHEMA_VERSION => Err(behind(found)),
            found => Err(ahead(found)),
        }
    }

    /// Applies every migration the database lacks, in one transaction.
    pub async fn migrate(&self) -> Result<Migrated, StoreError> {
        let mut client = self.client().await?;
        let fail = |e: tokio_postgres::Error| StoreError::Backend(describe(&e));
        let tx = client.transaction().await.map_err(fail)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(fail)?;
        tx.batch_execute(CREATE_VERSION_TABLE).await.map_err(fail)?;
        let from = current(&tx).await?;
        if from > SCHEMA_VERSION {
            return Err(ahead(from));
        }
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > from) {
            tx.batch_execute(sql).await.map_err(fail)?;
            tx.execute("INSERT INTO tokenvault_schema (version) VALUES ($1)", &[version])
                .await
                .map_err(fail)?;
        }
        tx.commit().await.map_err(fail)?;
        Ok(Migrated {
            from,
            to: SCHEMA_VERSION,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_from_one_without_gaps_up_to_the_schema_version() {
        for (i, (version, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*version as usize, i + 1);
        }
        assert_eq!(MIGRATIONS.last().map(|(v, _)| *v), Some(SCHEMA_VERSION));
    }
}
