//! Writes a caller joins to an operation's own atomic batch, built from what
//! the operation decided (the API's idempotency record of its answer), so
//! the effect, its audit record and the caller's record are one durable
//! write: all of them survive a crash, or none does.

use super::VaultError;
use crate::store::Batch;

/// Builds the joined writes for `done`, the result about to be committed.
/// Called again whenever a conflicted batch is rebuilt, so it must not
/// count calls or keep state that the last call does not overwrite.
pub trait Joined<V>: Sync {
    fn writes(&self, done: &V) -> Result<Batch, VaultError>;
}

/// Nothing joins the operation's write.
pub struct Alone;

impl<V> Joined<V> for Alone {
    fn writes(&self, _done: &V) -> Result<Batch, VaultError> {
        Ok(Batch::new())
    }
}
