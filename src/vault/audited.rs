//! Every write the vault makes carries its audit record in the same atomic
//! batch, so a change is durable together with its record or not at all.
//! Reads and refusals write an audit-only record before anything is returned.

use super::committer::{Queued, Settled, Wait};
use super::retry::Retry;
use super::{Vault, VaultError};
use crate::audit::anchor::SignedAnchor;
use crate::audit::{self, Actor, AuditRecord, ChainHead, ChainName, Entry, Outcome};
use crate::domain::operation::Operation;
pub(super) use crate::domain::time::now_ms;
use crate::store::{Batch, Expect, Store};

/// What an audited operation's record should say besides who and when.
pub(crate) struct Audit<'a> {
    pub actor: &'a Actor,
    pub operation: Operation,
    pub object: Option<String>,
    pub detail: Option<String>,
}

impl<'a> Audit<'a> {
    pub(crate) fn new(actor: &'a Actor, operation: Operation, object: Option<String>) -> Self {
        Audit {
            actor,
            operation,
            object,
            detail: None,
        }
    }

    pub(crate) fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub(super) fn entry(&self, outcome: Outcome, detail: Option<String>) -> Entry<'static> {
        Entry {
            operation: self.operation.as_str(),
            object: self.object.clone(),
            outcome,
            detail: detail.or_else(|| self.detail.clone()),
        }
    }
}

impl VaultError {
    /// How the audit trail records this failure: its one code.
    pub(super) fn audit_outcome(&self) -> (Outcome, Option<String>) {
        let (outcome, detail) = Outcome::failure(&self.code());
        (outcome, Some(detail))
    }
}

impl<S: Store> Vault<S> {
    /// Applies `batch` plus the audit record, then waits for durability.
    /// `Ok(false)`: a precondition failed (nothing written); the caller
    /// re-reads and tries again.
    pub(super) async fn apply_audited(
        &self,
        batch: Batch,
        audit: &Audit<'_>,
        outcome: Outcome,
        detail: Option<String>,
    ) -> Result<bool, VaultError> {
        self.apply_with_records(batch, audit.actor, vec![audit.entry(outcome, detail)])
            .await
    }

    /// `apply_audited` for a write that several records describe (a bulk
    /// store: one record per item), all in the same atomic write.
    pub(super) async fn apply_with_records(
        &self,
        batch: Batch,
        actor: &Actor,
        entries: Vec<Entry<'static>>,
    ) -> Result<bool, VaultError> {
        self.queue(batch, actor, entries, Wait::Durable).await
    }

    async fn queue(
        &self,
        batch: Batch,
        actor: &Actor,
        entries: Vec<Entry<'static>>,
        wait: Wait,
    ) -> Result<bool, VaultError> {
        self.queue_at(batch, actor, entries, wait, now_ms()).await
    }

    /// `queue`, the records timed `at_ms`.
    async fn queue_at(
        &self,
        batch: Batch,
        actor: &Actor,
        entries: Vec<Entry<'static>>,
        wait: Wait,
        at_ms: i64,
    ) -> Result<bool, VaultError> {
        let fenced = crate::vault::keys::fence::fenced_on(&batch);
        let settled = self
            .committer
            .commit(Queued {
                batch,
                actor: actor.clone(),
                entries,
                at_ms,
                wait,
            })
            .await;
        match settled {
            Settled::Durable | Settled::Applied => Ok(true),
            Settled::Conflict => {
                self.after_conflict(fenced).await?;
                Ok(false)
            }
            Settled::Failed(e) => Err(e),
        }
    }

    pub(super) async fn load_audit_head(&self) -> Result<ChainHead, VaultError> {
        Ok(audit::read::head(&*self.store, self.audit.name()).await?)
    }

    /// One attempt of a read-decide-write loop: commits `batch` with a
    /// success record. `Ok(false)` after a conflict (backed off).
    pub(super) async fn try_commit(
        &self,
        batch: Batch,
        audit: &Audit<'_>,
        retry: &mut Retry,
    ) -> Result<bool, VaultError> {
        if self.apply_audited(batch, audit, Outcome::Success, None).await? {
            return Ok(true);
        }
        retry.after_conflict().await?;
        Ok(false)
    }

    /// After a conflicted commit: `Err(JoinedStale)` when one of the
    /// preconditions a caller joined (`joined`, taken from its batch before
    /// it was appended) no longer holds, so the caller's loop stops instead
    /// of redrawing or retrying what cannot succeed.
    pub(super) async fn joined_still_hold(&self, joined: &[(Vec<u8>, Expect)]) -> Result<(), VaultError> {
        for (key, expect) in joined {
            let now = self.store.get(key).await?;
            let holds = match expect {
                Expect::Absent => now.is_none(),
                Expect::Equals(value) => now.as_deref() == Some(value.as_slice()),
            };
            if !holds {
                return Err(VaultError::JoinedStale);
            }
        }
        Ok(())
    }

    /// Commits `batch` with a success record; a conflict is an error.
    pub(super) async fn commit_once(&self, batch: Batch, audit: &Audit<'_>) -> Result<bool, VaultError> {
        self.apply_audited(batch, audit, Outcome::Success, None).await
    }

    /// An audit-only record (reads, refusals, denials). A plain read that
    /// succeeded or found nothing does not wait for its record's flush;
    /// every other record does.
    pub(super) async fn record(
        &self,
        audit: &Audit<'_>,
        outcome: Outcome,
        detail: Option<String>,
    ) -> Result<(), VaultError> {
        let wait =
            if audit.operation.is_plain_read() && matches!(outcome, Outcome::Success | Outcome::NotFound) {
                Wait::Applied
            } else {
                Wait::Durable
            };
        self.record_waiting(audit.actor, audit.entry(outcome, detail), wait)
            .await
    }

    /// One audit record in a write of its own, retried past conflicts on
    /// the chain head.
    pub(super) async fn record_entry(&self, actor: &Actor, entry: Entry<'static>) -> Result<(), VaultError> {
        self.record_waiting(actor, entry, Wait::Durable).await
    }

    async fn record_waiting(
        &self,
        actor: &Actor,
        entry: Entry<'static>,
        wait: Wait,
    ) -> Result<(), VaultError> {
        let mut retry = Retry::new();
        while !self.queue(Batch::new(), actor, vec![entry.clone()], wait).await? {
            retry.after_conflict().await?;
        }
        Ok(())
    }

    /// Records a failed operation and hands its error back. If even the
    /// audit write fails for a refusal, that failure is returned instead.
    pub(super) async fn audited<T>(
        &self,
        audit: Audit<'_>,
        result: Result<T, VaultError>,
    ) -> Result<T, VaultError> {
        match result {
            Ok(value) => Ok(value),
            Err(error) => {
                let (outcome, detail) = error.audit_outcome();
                let recorded = self.record(&audit, outcome, detail).await;
                match (outcome, recorded) {
                    (Outcome::Error, Err(audit_error)) => {
                        tracing::error!(error = %audit_error, "could not audit a failed operation");
                        Err(error)
                    }
                    (_, Err(audit_error)) => Err(audit_error),
                    (_, Ok(())) => Err(error),
                }
            }
        }
    }

    /// Records that `actor` was denied `operation` by policy.
    pub async fn record_denied(
        &self,
        actor: &Actor,
        operation: Operation,
        object: Option<super::AuditObject>,
    ) -> Result<(), VaultError> {
        self.record(
            &Audit::new(actor, operation, object.map(super::AuditObject::into_string)),
            Outcome::Denied,
            Some("policy".to_owned()),
        )
        .await
    }

    /// Records a request refused before it reached a vault operation (a
    /// malformed body, a rate limit); `detail` is a rule code.
    pub async fn record_refused(
        &self,
        actor: &Actor,
        operation: Operation,
        object: Option<super::AuditObject>,
        detail: &str,
    ) -> Result<(), VaultError> {
        self.record(
            &Audit::new(actor, operation, object.map(super::AuditObject::into_string)),
            Outcome::Refused,
            Some(detail.to_owned()),
        )
        .await
    }

    /// Records an administrative action taken outside the vault (reload).
    /// An administrative record of something that happened at `at_ms`
    /// and could only be written later (the sealed-time journal, written
    /// as the trail opens): the record carries when it happened.
    pub async fn record_admin_at(
        &self,
        actor: &Actor,
        operation: Operation,
        outcome: Outcome,
        detail: &str,
        at_ms: i64,
    ) -> Result<(), VaultError> {
        let entry = Audit::new(actor, operation, None).entry(outcome, Some(detail.to_owned()));
        let mut retry = Retry::new();
        while !self
            .queue_at(Batch::new(), actor, vec![entry.clone()], Wait::Durable, at_ms)
            .await?
        {
            retry.after_conflict().await?;
        }
        Ok(())
    }

    pub async fn record_admin(
        &self,
        actor: &Actor,
        operation: Operation,
        outcome: Outcome,
        detail: &str,
    ) -> Result<(), VaultError> {
        self.record(
            &Audit::new(actor, operation, None),
            outcome,
            Some(detail.to_owned()),
        )
        .await
    }

    /// Up to `limit` records of `chain` after sequence number `after`.
    pub async fn audit_page(
        &self,
        actor: &Actor,
        chain: &ChainName,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, VaultError> {
        let records = audit::read::page(&*self.store, chain, after, limit).await?;
        let node = chain.node().map(|n| format!(" node={n}")).unwrap_or_default();
        self.record(
            &Audit::new(actor, Operation::AuditRead, None),
            Outcome::Success,
            Some(format!("after={after} count={}{node}", records.len())),
        )
        .await?;
        Ok(records)
    }

    /// Walks every chain and checks the checkpoints between them; the
    /// report names each chain's first break. A record that no longer
    /// decodes counts as altered at its place in its chain.
    pub async fn audit_verify(&self, actor: &Actor) -> Result<audit::TrailReport, VaultError> {
        self.audit_verify_anchored(actor, &[]).await
    }

    /// `audit_verify`, and every head that `anchors` (signed checkpoints
    /// whose signatures the caller checked) name must still be in its
    /// chain as signed: a trail cut back with its heads rewound is found.
    pub async fn audit_verify_anchored(
        &self,
        actor: &Actor,
        anchors: &[SignedAnchor],
    ) -> Result<audit::TrailReport, VaultError> {
        // Another node may have moved its chain to a version made since.
        self.load_new_audit_keys().await?;
        let report = audit::read::verify_stored(&*self.store, &self.audit.keys, anchors).await?;
        let detail = match report.first_break() {
            None => format!(
                "intact records={} chains={}",
                report.records(),
                report.chains.len()
            ),
            Some((chain, b)) => format!("broken at {} ({:?}) in {chain}", b.seq, b.kind),
        };
        self.record(
            &Audit::new(actor, Operation::AuditVerify, None),
            Outcome::Success,
            Some(detail),
        )
        .await?;
        Ok(report)
    }

    /// Every record of every chain, chain by chain, each in order, for
    /// export. The export itself is audited.
    pub async fn audit_export(&self, actor: &Actor) -> Result<Vec<audit::ChainRecord>, VaultError> {
        self.record(
            &Audit::new(actor, Operation::AuditExport, None),
            Outcome::Success,
            None,
        )
        .await?;
        Ok(audit::read::all(&*self.store).await?)
    }

    /// Signs every chain's head as it stands (an anchor for keeping off the
    /// host), and records the signing in this node's chain.
    pub async fn audit_anchor(&self, actor: &Actor) -> Result<SignedAnchor, VaultError> {
        let heads = audit::read::heads(&*self.store).await?;
        // The newest version, another node's rotation included.
        self.load_new_anchor_keys().await?;
        let (_, key) = self.anchor.newest();
        let anchor = key.sign(&heads, now_ms(), self.config.node.as_ref());
        self.record_admin(
            actor,
            Operation::AuditAnchor,
            Outcome::Success,
            &format!("signed {}", audit::checkpoint_detail(&heads)),
        )
        .await?;
        Ok(anchor)
    }

    /// Copies this node's records committed since `sink`'s last to it.
    pub async fn follow_trail(&self, sink: &mut audit::Sink) -> Result<u64, audit::SinkError> {
        sink.catch_up(&*self.store).await
    }

    /// The chain this node appends to.
    pub fn audit_chain(&self) -> &ChainName {
        self.audit.name()
    }

    /// The public half of the key that signs anchors now, for auditors to pin.
    pub fn anchor_public_key(&self) -> audit::anchor::AnchorPublicKey {
        self.anchor.newest().1.public_key()
    }

    /// Appends a checkpoint of every chain's head to this node's chain,
    /// when some other chain exists and a head moved since `last` (the
    /// heads this node checkpointed before). Returns the heads recorded,
    /// or `last` unchanged when there was nothing to tie.
    pub async fn audit_checkpoint(
        &self,
        actor: &Actor,
        last: Option<audit::Checkpointed>,
    ) -> Result<Option<audit::Checkpointed>, VaultError> {
        let heads = audit::read::heads(&*self.store).await?;
        let others = audit::Checkpointed::others(&heads, self.audit.name());
        if others.is_empty() || last.as_ref() == Some(&others) {
            return Ok(last);
        }
        self.record_admin(
            actor,
            Operation::AuditCheckpoint,
            Outcome::Success,
            &audit::checkpoint_detail(&heads),
        )
        .await?;
        Ok(Some(others))
    }
}

/// For the layers above the vault (orchestration): their own records,
/// committed with an audit record in the same batch.
impl<S: Store> Vault<S> {
    /// `Ok(false)`: a precondition failed and nothing was written.
    pub(in crate::vault) async fn commit_with_audit(
        &self,
        batch: Batch,
        actor: &Actor,
        operation: Operation,
        object: Option<super::AuditObject>,
        outcome: Outcome,
        detail: Option<String>,
    ) -> Result<bool, VaultError> {
        let audit = Audit::new(actor, operation, object.map(super::AuditObject::into_string));
        self.apply_audited(batch, &audit, outcome, detail).await
    }

    /// An audit-only record of an outcome decided above the vault.
    pub(crate) async fn record_outcome(
        &self,
        actor: &Actor,
        operation: Operation,
        object: Option<super::AuditObject>,
        outcome: Outcome,
        detail: Option<String>,
    ) -> Result<(), VaultError> {
        self.record(
            &Audit::new(actor, operation, object.map(super::AuditObject::into_string)),
            outcome,
            detail,
        )
        .await
    }
}
