//! Writes a caller joins to an operation's own atomic batch, built from what
//! the operation decided (the API's idempotency record of its answer, the
//! payment a reservation is for), so the effect, its audit records and the
//! caller's records are one durable write: all of them survive a crash, or
//! none does.

use super::{AuditObject, VaultError};
use crate::audit::{Entry, Outcome};
use crate::domain::operation::Operation;
use crate::store::Batch;

/// Builds the joined writes for `done`, the result about to be committed.
/// Called again whenever a conflicted batch is rebuilt, so it must not
/// count calls or keep state that the last call does not overwrite.
pub trait Joined<V>: Sync {
    fn writes(&self, done: &V) -> Result<Batch, VaultError>;

    /// Audit records of what the caller did with `done`, committed with
    /// the operation's own record (each a success: a refusal writes
    /// nothing to join).
    fn records(&self, _done: &V) -> Vec<JoinedRecord> {
        Vec::new()
    }
}

/// A caller's joined writes for `done`, refused if they reach past the
/// caller's own key families (`view::from_above`).
pub(super) fn writes_of<V>(joined: &(impl Joined<V> + ?Sized), done: &V) -> Result<Batch, VaultError> {
    super::view::from_above(joined.writes(done)?)
}

/// One audit record a caller joins to an operation's write.
#[derive(Clone, Debug)]
pub struct JoinedRecord {
    pub operation: Operation,
    pub object: Option<AuditObject>,
    pub detail: Option<String>,
}

impl JoinedRecord {
    pub(super) fn entry(self) -> Entry<'static> {
        Entry {
            operation: self.operation.as_str(),
            object: self.object.map(AuditObject::into_string),
            outcome: Outcome::Success,
            detail: self.detail,
        }
    }
}

/// Data the gateway is about to open and send to a channel, described by
/// the audit record that must be durable first. Only the gateway's own
/// openings (`PayOpening`, `ApplyOpening`) can be sent; their fields stay
/// inside the vault.
pub trait Opening: Send + Sync {
    fn record(&self) -> JoinedRecord;
}

/// An opening of sealed data (the gateway's) whose audit record is
/// durable. Only the vault makes one, after the write that holds the
/// record, and the gateway sends nothing without one.
pub struct Recorded<O>(O);

impl<O> Recorded<O> {
    pub(super) fn new(opening: O) -> Self {
        Recorded(opening)
    }

    pub(super) fn into_inner(self) -> O {
        self.0
    }
}

impl<V, J: Joined<V> + ?Sized> Joined<V> for &J {
    fn writes(&self, done: &V) -> Result<Batch, VaultError> {
        (**self).writes(done)
    }
    fn records(&self, done: &V) -> Vec<JoinedRecord> {
        (**self).records(done)
    }
}

/// Nothing joins the operation's write.
pub struct Alone;

impl<V> Joined<V> for Alone {
    fn writes(&self, _done: &V) -> Result<Batch, VaultError> {
        Ok(Batch::new())
    }
}

#[cfg(test)]
mod tests {
    use super::Joined;
    use crate::domain::time::Timestamp;
    use crate::store::{Batch, Store};
    use crate::vault::test_vault::{controls, fresh};
    use crate::vault::token::TokenView;
    use crate::vault::{StoredCard, VaultError};

    /// Joins a precondition that `key` is absent, as an idempotency record does.
    struct Unclaimed(Vec<u8>);

    impl<V> Joined<V> for Unclaimed {
        fn writes(&self, _done: &V) -> Result<Batch, VaultError> {
            let mut batch = Batch::new();
            batch
                .expect_absent(self.0.clone())
                .put(self.0.clone(), b"mine".to_vec());
            Ok(batch)
        }
    }

    /// Another writer (another node) took the joined key first: the
    /// operation stops at once with `JoinedStale`, writes nothing, and does
    /// not burn its retries (a token issue would otherwise redraw numbers
    /// until the token space counted as exhausted).
    #[tokio::test]
    async fn a_joined_precondition_taken_by_another_writer_stops_the_operation() {
        let (_dir, vault) = fresh().await;
        let actor = crate::audit::Actor::local("test");
        let card = vault.store_card(&actor, "4242424242424242").await.unwrap();

        // An idempotency record's key: a family the layers above may write.
        let key = crate::store::keyspace::IDEMPOTENCY.key("taken");
        let mut other = Batch::new();
        other.put(key.clone(), b"theirs".to_vec());
        vault.store.commit(other).await.unwrap();
        let taken = Unclaimed(key.clone());

        let stored: Result<StoredCard, _> = vault.store_card_joined(&actor, "4000056655665556", &taken).await;
        assert!(matches!(stored, Err(VaultError::JoinedStale)), "{stored:?}");
        let issued: Result<TokenView, _> = vault
            .issue_token_joined(&actor, &card.card_ref, controls(1), Timestamp::now(), &taken)
            .await;
        assert!(matches!(issued, Err(VaultError::JoinedStale)), "{issued:?}");
        let repeat = vault.store_card(&actor, "4000056655665556").await.unwrap();
        assert!(!repeat.already_stored, "the refused store wrote nothing");
        let tokens = vault.tokens_of_card(&actor, &card.card_ref).await.unwrap();
        assert!(tokens.is_empty(), "the refused issue wrote nothing");
        assert_eq!(
            vault.store.get(&key).await.unwrap().as_deref(),
            Some(&b"theirs"[..])
        );
    }
}
