//! Audited writes, committed by one thread. Every audited write extends one
//! hash chain, so its records are numbered in commit order. Writers queue
//! their batch and audit entries; the committer thread takes everything
//! queued so far (up to `MAX_GROUP`) and applies it as one store transaction
//! (`Store::apply_sequence`), numbering the records of the batches that
//! applied, then waits until that write is durable before it takes the next
//! group. While it waits, new writes queue up and share the next transaction
//! and its fsync.
//!
//! Why a thread of its own:
//! - Store calls block (sled's transaction, a full disk): on the committer
//!   they stall writers, never the async workers that answer TLS handshakes
//!   and reads.
//! - A writer only waits for its answer, so a request cancelled mid-commit
//!   changes nothing for the writes it was grouped with.
//! - The thread alone holds the chain head, and moves it only after the
//!   group's write is applied *and* durable. After any store error, failed
//!   flush or conflict it forgets the head and, before the next write,
//!   re-reads it from the store and checks that the record it names is
//!   there and verifies (`audit::read::verified_head`); until it does, every
//!   audited write fails (closed) and nothing is appended past a hole.
//!
//! Plain reads are the one exception to waiting for durability
//! (`Wait::Applied`): a group of nothing but read records is applied, in
//! chain order, and answered at once. Their flush is asked for together
//! (`read_flushes`) with the next group that holds anything else, which
//! waits for it as for its own (the store's log is flushed in order, so a
//! write's durability covers every read record before it), or once the
//! oldest has waited `read_durability`. A crash can lose read records of
//! those last moments, never a write, a refusal, a reveal or a key
//! operation, and never a record in the middle of the chain. A flush that
//! fails after reads were answered is logged and the head re-read.

use super::read_flushes::{self, ReadFlushes};
use super::records::encode;
use super::VaultError;
use crate::audit::{read, Actor, AuditChain, ChainHead, Entry};
use crate::store::{Batch, CommitError, Store, StoreError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// At most this many writes share one transaction, which bounds how much
/// one retry by the store repeats.
const MAX_GROUP: usize = 128;

/// Under load, a group of reads only smaller than this waits up to
/// `READ_GATHER` for more before it is applied: every group is a store
/// transaction, and a sled transaction writes two log buffers of its own
/// (`pin_log`), each handed to sled's I/O threads. Measured with the load
/// harness (read token, 64 connections): 10k req/s with no gathering,
/// 16-17k gathering 300 us into 64, 19.3k gathering 500 us into 128
/// (service CPU 85 to 72 us per read); 1 ms gathered no more and raised
/// p99 at half load past 5 ms.
const READ_GROUP: usize = 128;
const READ_GATHER: Duration = Duration::from_micros(500);

/// One writer's part of a group.
pub(super) struct Queued {
    pub batch: Batch,
    pub actor: Actor,
    /// One chain record each, in order (a bulk write has one per item).
    pub entries: Vec<Entry<'static>>,
    pub at_ms: i64,
    pub wait: Wait,
}

/// What a writer waits for before it is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Wait {
    /// Its write and records are durable.
    Durable,
    /// Its records are applied, in chain order; a plain read's record only.
    Applied,
}

/// How a queued write ended.
pub(super) enum Settled {
    /// Applied with its records, and durable.
    Durable,
    /// Applied with its records; their flush is under way (`Wait::Applied`).
    Applied,
    /// Its preconditions failed (or the chain head moved): nothing written.
    Conflict,
    Failed(VaultError),
}

type Reply = oneshot::Sender<Settled>;

/// The handle the vault keeps; dropping it stops the thread once the writes
/// already queued are settled.
pub(super) struct Committer {
    queue: Option<mpsc::Sender<(Queued, Reply)>>,
    thread: Option<JoinHandle<()>>,
    /// What `/ready` reports of the committer.
    health: Arc<Health>,
}

/// How long one commit group may be in flight before the store counts as
/// stalled (a frozen or hung disk): far past a slow fsync under load.
pub(super) const STALLED_AFTER: Duration = Duration::from_secs(2);

#[derive(Default)]
struct Health {
    /// Whether the last group failed in the store (an error, a failed
    /// flush, a head that did not verify).
    last_failed: AtomicBool,
    /// When the group being committed started, while one is.
    in_flight_since: Mutex<Option<Instant>>,
}

impl Committer {
    /// `read_durability`: how long at most a read record applied without
    /// waiting goes before its flush is asked for, when no other write comes.
    pub(super) fn start<S: Store>(
        store: Arc<S>,
        chain: Arc<AuditChain>,
        read_durability: Duration,
    ) -> Result<Self, VaultError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| cannot_start(&e))?;
        let (queue, waiting) = mpsc::channel();
        let health = Arc::new(Health::default());
        let worker_health = Arc::clone(&health);
        let thread = std::thread::Builder::new()
            .name("tokenvault-committer".into())
            .spawn(move || {
                let mut worker = Worker {
                    store,
                    chain,
                    head: None,
                    runtime,
                    health: worker_health,
                    read_flushes: ReadFlushes::new(read_durability),
                };
                worker.run(&waiting);
            })
            .map_err(|e| cannot_start(&e))?;
        Ok(Committer {
            queue: Some(queue),
            thread: Some(thread),
            health,
        })
    }

    /// Whether the last commit group failed in the store.
    pub(super) fn last_failed(&self) -> bool {
        self.health.last_failed.load(Ordering::Acquire)
    }

    /// How long the group in flight has been, once past `STALLED_AFTER`.
    pub(super) fn stalled_for(&self) -> Option<Duration> {
        let since = *self
            .health
            .in_flight_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        since
            .map(|since| since.elapsed())
            .filter(|elapsed| *elapsed >= STALLED_AFTER)
    }

    /// Queues the write and waits until it is settled.
    pub(super) async fn commit(&self, queued: Queued) -> Settled {
        let (reply, answer) = oneshot::channel();
        let sent = self
            .queue
            .as_ref()
            .is_some_and(|queue| queue.send((queued, reply)).is_ok());
        if !sent {
            return Settled::Failed(VaultError::Store(StoreError::Closed));
        }
        answer.await.unwrap_or_else(|_| {
            // The committer dropped the reply unanswered: it panicked
            // mid-group, so the outcome is unknown.
            Settled::Failed(VaultError::Store(StoreError::NotDurable(
                "the committer stopped while this write was in flight; its outcome is unknown".into(),
            )))
        })
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        // Closing the queue ends the thread's loop; joining it means the
        // store is no longer used once the vault is gone (a test may reopen
        // the same files at once).
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn cannot_start(e: &std::io::Error) -> VaultError {
    VaultError::Store(StoreError::Backend(format!(
        "cannot start the committer thread: {e}"
    )))
}

struct Worker<S> {
    store: Arc<S>,
    chain: Arc<AuditChain>,
    /// The head after the last durable group; `None` when it must be read
    /// and verified from the store before the next write.
    head: Option<ChainHead>,
    runtime: tokio::runtime::Runtime,
    health: Arc<Health>,
    /// Flushes of read-only groups that were answered once applied.
    read_flushes: ReadFlushes,
}

impl<S: Store> Worker<S> {
    fn run(&mut self, waiting: &mpsc::Receiver<(Queued, Reply)>) {
        let mut last_group = 1;
        loop {
            let next = match self.read_flushes.due_in() {
                None => waiting.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
                Some(due) => waiting.recv_timeout(due),
            };
            let first = match next {
                Ok(first) => first,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.tend_read_flushes();
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match waiting.try_recv() {
                    Ok(next) => group.push(next),
                    Err(_) => break,
                }
            }
            // Under load (this group or the last held more than one
            // write), a small group of reads only waits a moment for more:
            // each group is a transaction and a round of thread wake-ups,
            // and reads no longer wait on a flush that would gather them.
            // Under light load a read is applied at once.
            let reads_only = |group: &[(Queued, Reply)]| group.iter().all(|(q, _)| q.wait == Wait::Applied);
            let under_load = group.len() > 1 || last_group > 1;
            let gather_until = Instant::now() + READ_GATHER;
            while under_load && group.len() < READ_GROUP && reads_only(&group) {
                match waiting.recv_timeout(gather_until.saturating_duration_since(Instant::now())) {
                    Ok(next) => group.push(next),
                    Err(_) => break,
                }
            }
            last_group = group.len();
            self.commit_group(group);
            self.tend_read_flushes();
        }
        let rest = self.read_flushes.take_all();
        if let Err(e) = read_flushes::await_all(&self.runtime, rest) {
            self.read_flush_failed(&e);
        }
    }

    fn tend_read_flushes(&mut self) {
        if let Err(e) = self.read_flushes.tend(&self.runtime) {
            self.read_flush_failed(&e);
        }
    }

    /// A flush of read records failed after the reads were answered: it
    /// cannot be told to them any more, so it is logged, marks the store
    /// failed for `/ready`, and the head is re-read before the next write.
    fn read_flush_failed(&mut self, e: &StoreError) {
        tracing::error!(error = %e, "read audit records answered before their flush may be lost; the chain head is re-read before the next write");
        self.head = None;
        self.health.last_failed.store(true, Ordering::Release);
    }

    fn commit_group(&mut self, group: Vec<(Queued, Reply)>) {
        let (mut writes, replies): (Vec<Queued>, Vec<Reply>) = group.into_iter().unzip();
        self.set_in_flight(Some(Instant::now()));
        let outcomes = self.settle(&mut writes);
        self.set_in_flight(None);
        let failed = outcomes.iter().any(|o| matches!(o, Settled::Failed(_)));
        self.health.last_failed.store(failed, Ordering::Release);
        for (reply, settled) in replies.into_iter().zip(outcomes) {
            // A writer that went away (its request was cancelled) is told nothing.
            let _ = reply.send(settled);
        }
    }

    fn set_in_flight(&self, since: Option<Instant>) {
        *self
            .health
            .in_flight_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = since;
    }

    /// One outcome per write, in order.
    fn settle(&mut self, group: &mut [Queued]) -> Vec<Settled> {
        let head = match self.head.take() {
            Some(head) => head,
            None => match self.runtime.block_on(read::verified_head(
                &*self.store,
                &self.chain.keys,
                &self.chain.name,
            )) {
                Ok(head) => head,
                Err(e) => {
                    tracing::error!(error = %e, "audited writes refused until the chain head verifies");
                    return failed_all(group.len(), &e.to_string());
                }
            },
        };
        // The batches move to the store; each writer's entries stay here.
        let batches: Vec<Batch> = group.iter_mut().map(|q| std::mem::take(&mut q.batch)).collect();
        // The head after the last seal the store ran (it may retry).
        let sealed_head = Mutex::new(None);
        // The seal borrows the chain alone: it must be `Sync`, and the
        // worker's unflushed futures are not.
        let chain = &*self.chain;
        let seal = |applied: &[bool]| {
            let (batch, next) = seal_group(chain, &head, group, applied)?;
            *sealed_head.lock().unwrap_or_else(PoisonError::into_inner) = Some(next);
            Ok(batch)
        };
        let outcome = self.runtime.block_on(self.store.apply_sequence(&batches, &seal));
        let sealed = sealed_head.into_inner().unwrap_or_else(PoisonError::into_inner);
        let durables = match outcome {
            Ok(durables) => durables,
            Err(CommitError::Conflict) => {
                // Maybe another node moved the head: it is re-read next time.
                return group.iter().map(|_| Settled::Conflict).collect();
            }
            Err(CommitError::Store(e)) => {
                tracing::error!(error = %e, "an audited write failed; the chain head is re-read before the next");
                return failed_all(group.len(), &e.to_string());
            }
        };
        let applied: Vec<bool> = durables.iter().map(Option::is_some).collect();
        let reads_only = group
            .iter()
            .zip(&applied)
            .all(|(q, ok)| !*ok || q.wait == Wait::Applied);
        if reads_only {
            self.read_flushes.push(durables.into_iter().flatten());
            self.move_head(sealed, group, &applied);
            return applied
                .into_iter()
                .map(|ok| if ok { Settled::Applied } else { Settled::Conflict })
                .collect();
        }
        // This group's flush also covers the read records answered before
        // it; a failure of theirs fails this group too.
        let mut all = self.read_flushes.take_all();
        all.extend(durables.into_iter().flatten());
        if let Err(e) = read_flushes::await_all(&self.runtime, all) {
            tracing::error!(error = %e, "an audited write is not durable; the chain head is re-read before the next");
            return applied
                .iter()
                .map(|ok| {
                    if *ok {
                        Settled::Failed(VaultError::Store(StoreError::NotDurable(e.to_string())))
                    } else {
                        Settled::Conflict
                    }
                })
                .collect();
        }
        self.move_head(sealed, group, &applied);
        applied
            .into_iter()
            .map(|ok| if ok { Settled::Durable } else { Settled::Conflict })
            .collect()
    }

    /// The head after a group the store took. `sealed` is always set after
    /// a commit; without it the head is re-read before the next.
    fn move_head(&mut self, sealed: Option<ChainHead>, group: &[Queued], applied: &[bool]) {
        if let Some(next) = sealed {
            let written = group.iter().zip(applied).filter(|(_, ok)| **ok);
            self.chain
                .tally
                .committed(&next, written.flat_map(|(q, _)| q.entries.iter()));
            self.head = Some(next);
        }
    }
}

/// The chain records of the writes that applied, and the head after
/// them. Never overwrite: with a deleted or rolled-back head the slot is
/// taken, the append fails, and the vault stops writing (fail closed)
/// instead of destroying evidence.
fn seal_group(
    chain: &AuditChain,
    head: &ChainHead,
    group: &[Queued],
    applied: &[bool],
) -> Result<(Batch, ChainHead), StoreError> {
    let mut batch = Batch::new();
    let head_key = chain.name.head_key();
    if head.seq == 0 {
        batch.expect_absent(head_key.clone());
    } else {
        batch.expect_equals(head_key.clone(), encode(head).map_err(store_error)?);
    }
    let mut next = head.clone();
    for queued in group.iter().zip(applied).filter(|(_, ok)| **ok).map(|(q, _)| q) {
        for entry in &queued.entries {
            let (record, after) = chain
                .next(&next, &queued.actor, entry.clone(), queued.at_ms)
                .map_err(|e| StoreError::Backend(e.to_string()))?;
            let key = chain.name.record_key(record.seq);
            batch.expect_absent(key.clone());
            batch.put(key, encode(&record).map_err(store_error)?);
            next = after;
        }
    }
    batch.put(head_key, encode(&next).map_err(store_error)?);
    Ok((batch, next))
}

fn store_error(e: VaultError) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Every write of the group gets the same failure (errors are not `Clone`).
fn failed_all(writes: usize, why: &str) -> Vec<Settled> {
    (0..writes)
        .map(|_| Settled::Failed(VaultError::Store(StoreError::Backend(why.to_owned()))))
        .collect()
}
