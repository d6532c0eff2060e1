//! `tokenvault store migrate`: brings a PostgreSQL database to this build's
//! schema (run once before the first node starts, and after an upgrade).

use super::Report;
use crate::config::BackendKind;
use crate::store::postgres::{Migrated, PgStore};
use std::path::Path;

pub(super) fn migrate(config_path: Option<&Path>) -> Result<Report, String> {
    let config = super::load_config(config_path)?;
    if config.store.backend != BackendKind::Postgres {
        return Err(
            "store migrate is for store.backend = \"postgres\"; the embedded sled store needs no migration"
                .to_owned(),
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let Migrated { from, to } = runtime
        .block_on(async {
            let store = PgStore::connect(&config.store.postgres).await?;
            store.migrate().await
        })
        .map_err(|e| e.to_string())?;
    Ok(Report::ok(if from == to {
        format!("schema already at version {to}; nothing to do")
    } else {
        format!("schema migrated from version {from} to version {to}")
    }))
}
