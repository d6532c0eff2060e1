//! Storage as the vault needs it, owned by the domain rather than by sled:
//! point reads, ordered prefix scans, and one atomic, conditional, durable
//! batch write. sled (embedded, the default) and PostgreSQL (several nodes
//! on one database) implement it with the same semantics; the conformance
//! suite (tests/common/conformance.rs) holds both to them.

mod backend;
mod batch;
pub mod codec;
mod group_commit;
pub mod keyspace;
pub mod postgres;
mod sled_store;

pub use backend::Backend;
pub use batch::{Batch, Expect};
pub use postgres::PgStore;
pub use sled_store::{SledSettings, SledStore, SledStoreStats};

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend failed; the detail is the backend's own message, which
    /// never contains record values (they are ciphertext or references).
    #[error("storage backend failed: {0}")]
    Backend(String),
    /// The write was applied but could not be made durable, so it is not
    /// acknowledged. It may or may not survive a crash.
    #[error("storage could not make the write durable: {0}")]
    NotDurable(String),
    #[error("the store is closed")]
    Closed,
    /// The answer to a commit was lost and whether it committed could not
    /// be checked (the database stayed unreachable). Not acknowledged; a
    /// retry with the same idempotency key settles it.
    #[error("storage lost the answer to a commit and could not check its outcome: {0}")]
    OutcomeUnknown(String),
}

/// Why a batch was not applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommitError {
    /// A precondition did not hold: someone else changed a record first.
    /// Nothing was written; the caller re-reads and tries again.
    #[error("a concurrent writer changed a record first")]
    Conflict,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One key/value pair from a scan.
pub type Entry = (Vec<u8>, Vec<u8>);

pub trait Store: Send + Sync + 'static {
    fn get(&self, key: &[u8]) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;

    /// The values of `keys`, in their order: one round trip where the
    /// backend can (PostgreSQL), otherwise one `get` each.
    fn get_many(
        &self,
        keys: &[Vec<u8>],
    ) -> impl Future<Output = Result<Vec<Option<Vec<u8>>>, StoreError>> + Send {
        async move {
            let mut values = Vec::with_capacity(keys.len());
            for key in keys {
                values.push(self.get(key).await?);
            }
            Ok(values)
        }
    }

    /// Up to `limit` entries whose key starts with `prefix`, in key order,
    /// starting after `after` when given (for paging).
    fn scan_prefix(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Entry>, StoreError>> + Send;

    /// Applies every write in `batch` atomically if, and only if, every
    /// precondition holds. The change is visible to readers at once; the
    /// returned `Durable` resolves when it survives a crash. It may ask for
    /// its flush only when first polled: poll it (or several, before
    /// waiting on any) to start one. Concurrent callers share one flush.
    /// Callers that must order their writes (the audit chain) hold their
    /// lock across `apply` only, not the flush.
    fn apply(&self, batch: Batch) -> impl Future<Output = Result<Durable, CommitError>> + Send;

    /// Several batches as one atomic write, in order. Each batch's
    /// preconditions are checked against the state the batches before it
    /// left; one whose preconditions fail is skipped and the rest still
    /// apply. `seal` is then told which applied and returns one more batch
    /// (the audit records and chain head) that joins the same write; if its
    /// own preconditions fail, nothing is written (`Conflict`). `seal` may be
    /// called more than once when the backend retries, so it must be pure.
    /// Returns, per batch, its durability future, or `None` if skipped.
    ///
    /// This is how concurrent audited writes share one transaction instead
    /// of queueing one by one behind the chain head.
    fn apply_sequence(
        &self,
        batches: &[Batch],
        seal: &(dyn Fn(&[bool]) -> Result<Batch, StoreError> + Sync),
    ) -> impl Future<Output = Result<Vec<Option<Durable>>, CommitError>> + Send;

    /// `apply`, then wait until durable: the usual way to write.
    fn commit(&self, batch: Batch) -> impl Future<Output = Result<(), CommitError>> + Send {
        async move {
            self.apply(batch).await?.await?;
            Ok(())
        }
    }
}

/// Resolves once an applied batch is durable.
pub struct Durable(Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send>>);

impl Durable {
    pub fn new(future: impl Future<Output = Result<(), StoreError>> + Send + 'static) -> Self {
        Durable(Box::pin(future))
    }

    /// For backends whose apply is already durable (a committed SQL transaction).
    pub fn ready() -> Self {
        Durable::new(std::future::ready(Ok(())))
    }
}

impl Future for Durable {
    type Output = Result<(), StoreError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx)
    }
}
