//! Audited writes, combined. Every audited write extends one hash chain, so
//! its records must be numbered in commit order; committing them one at a
//! time behind the chain head made the head the vault's bottleneck. Instead
//! each writer queues its batch and audit entry, and whoever holds the head
//! lock commits everything queued so far as one store transaction
//! (`Store::apply_sequence`), numbering the records of the batches that
//! applied. Each writer still waits for its own durability ticket, so group
//! commit's shared fsync is unchanged.

use super::records::encode;
use super::{Vault, VaultError};
use crate::audit::{head_key, record_key, Actor, ChainHead, Entry};
use crate::store::{Batch, CommitError, Durable, Store, StoreError};
use std::sync::{Mutex, PoisonError};
use tokio::sync::oneshot;

/// At most this many writes share one transaction, which bounds how long
/// the head lock is held and how much one retry by the store repeats.
const MAX_GROUP: usize = 128;

/// One writer's part of a group.
pub(super) struct Queued {
    pub batch: Batch,
    pub actor: Actor,
    /// One chain record each, in order (a bulk write has one per item).
    pub entries: Vec<Entry<'static>>,
    pub at_ms: i64,
    pub reply: oneshot::Sender<Settled>,
}

/// How a queued write ended.
pub(super) enum Settled {
    /// Applied; resolves once durable.
    Applied(Durable),
    /// Its preconditions failed (or the chain head moved): nothing written.
    Conflict,
    Failed(VaultError),
}

#[derive(Default)]
pub(super) struct CommitQueue {
    waiting: Mutex<Vec<Queued>>,
}

impl CommitQueue {
    fn push(&self, queued: Queued) {
        self.waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(queued);
    }

    fn take(&self) -> Vec<Queued> {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        let cut = waiting.len().min(MAX_GROUP);
        // Oldest first: the tail stays queued for the next leader.
        let rest = waiting.split_off(cut);
        std::mem::replace(&mut *waiting, rest)
    }
}

impl<S: Store> Vault<S> {
    /// Queues the write and waits for it to be settled, leading a group
    /// commit whenever the head lock is free.
    pub(super) async fn commit_queued(
        &self,
        queued_without_reply: impl FnOnce(oneshot::Sender<Settled>) -> Queued,
    ) -> Settled {
        let (reply, mut answer) = oneshot::channel();
        self.commit_queue.push(queued_without_reply(reply));
        loop {
            tokio::select! {
                biased;
                settled = &mut answer => return settled.unwrap_or_else(|_| interrupted()),
                mut head = self.audit.head.lock() => {
                    // A leader settles every write it took before it lets
                    // the lock go, so either the answer is here or the
                    // write is still queued and this task leads.
                    if let Ok(settled) = answer.try_recv() {
                        return settled;
                    }
                    self.lead(&mut head).await;
                }
            }
        }
    }

    async fn lead(&self, head_slot: &mut Option<ChainHead>) {
        let mut group = self.commit_queue.take();
        if group.is_empty() {
            return;
        }
        let head = match head_slot.as_ref() {
            Some(head) => head.clone(),
            None => match self.load_audit_head().await {
                Ok(head) => head,
                Err(e) => return fail_all(group, || VaultError::Store(StoreError::Backend(e.to_string()))),
            },
        };
        // The batches move to the store; each writer's record stays here.
        let batches: Vec<Batch> = group.iter_mut().map(|q| std::mem::take(&mut q.batch)).collect();
        // The head after the last seal the store ran (it may retry), so the
        // records are not MACed twice.
        let sealed_head = Mutex::new(None);
        let seal = |applied: &[bool]| {
            let (batch, next) = self.seal_group(&head, &group, applied)?;
            *sealed_head.lock().unwrap_or_else(PoisonError::into_inner) = Some(next);
            Ok(batch)
        };
        match self.store.apply_sequence(&batches, &seal).await {
            Ok(durables) => {
                // `None` cannot follow a commit; then the head is re-read.
                *head_slot = sealed_head.into_inner().unwrap_or_else(PoisonError::into_inner);
                if let Some(head) = head_slot.as_ref() {
                    let written = group.iter().zip(&durables).filter(|(_, d)| d.is_some());
                    self.audit
                        .tally
                        .committed(head, written.flat_map(|(q, _)| q.entries.iter()));
                }
                for (queued, durable) in group.into_iter().zip(durables) {
                    let settled = match durable {
                        Some(durable) => Settled::Applied(durable),
                        None => Settled::Conflict,
                    };
                    let _ = queued.reply.send(settled);
                }
            }
            Err(CommitError::Conflict) => {
                // Maybe another node moved the head: read it again next time.
                *head_slot = None;
                for queued in group {
                    let _ = queued.reply.send(Settled::Conflict);
                }
            }
            Err(CommitError::Store(e)) => {
                fail_all(group, || VaultError::Store(StoreError::Backend(e.to_string())))
            }
        }
    }

    /// The chain records of the writes that applied, and the head after
    /// them. Never overwrite: with a deleted or rolled-back head the slot is
    /// taken, the append fails, and the vault stops writing (fail closed)
    /// instead of destroying evidence.
    fn seal_group(
        &self,
        head: &ChainHead,
        group: &[Queued],
        applied: &[bool],
    ) -> Result<(Batch, ChainHead), StoreError> {
        let mut batch = Batch::new();
        if head.seq == 0 {
            batch.expect_absent(head_key());
        } else {
            batch.expect_equals(head_key(), encode(head).map_err(store_error)?);
        }
        let mut next = head.clone();
        for queued in group.iter().zip(applied).filter(|(_, ok)| **ok).map(|(q, _)| q) {
            for entry in &queued.entries {
                let (record, after) = self.audit.next(&next, &queued.actor, entry.clone(), queued.at_ms);
                batch.expect_absent(record_key(record.seq));
                batch.put(record_key(record.seq), encode(&record).map_err(store_error)?);
                next = after;
            }
        }
        batch.put(head_key(), encode(&next).map_err(store_error)?);
        Ok((batch, next))
    }
}

fn store_error(e: VaultError) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Every write of the group gets the same failure (errors are not `Clone`).
fn fail_all(group: Vec<Queued>, error: impl Fn() -> VaultError) {
    for queued in group {
        let _ = queued.reply.send(Settled::Failed(error()));
    }
}

/// The leader was dropped mid-commit (its request was cancelled). The store
/// calls are synchronous for sled, so this does not happen there; a truly
/// async store would leave the outcome unknown, which is what is reported.
fn interrupted() -> Settled {
    Settled::Failed(VaultError::Store(StoreError::NotDurable(
        "the commit leading this write was interrupted; its outcome is unknown".into(),
    )))
}
