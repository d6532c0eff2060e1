//! The flushes of plain reads' audit records, which the committer answers
//! once applied (`committer::Wait::Applied`). A store's `Durable` asks for
//! its flush when first polled, so reads do not each start one: their
//! records wait, and are asked for together once the oldest has waited
//! `bound` (and no earlier flush of theirs is still under way), or with the
//! next group that must be durable, whose flush then covers them too.

use crate::store::{Durable, StoreError};
use std::future::Future;
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

/// How often a flush under way is looked at while nothing else comes.
const LOOK_EVERY: Duration = Duration::from_millis(1);

pub(super) struct ReadFlushes {
    /// Asked for: their flush is under way.
    asked: Vec<Durable>,
    /// Not asked for yet.
    waiting: Vec<Durable>,
    /// When the oldest of `waiting` was applied.
    waiting_since: Option<Instant>,
    bound: Duration,
}

impl ReadFlushes {
    pub(super) fn new(bound: Duration) -> Self {
        ReadFlushes {
            asked: Vec::new(),
            waiting: Vec::new(),
            waiting_since: None,
            bound,
        }
    }

    /// The flushes of a group of reads just applied.
    pub(super) fn push(&mut self, durables: impl IntoIterator<Item = Durable>) {
        let before = self.waiting.len();
        self.waiting.extend(durables);
        if self.waiting.len() > before {
            self.waiting_since.get_or_insert_with(Instant::now);
        }
    }

    /// How long the committer may wait for work before `tend` is due.
    pub(super) fn due_in(&self) -> Option<Duration> {
        if !self.asked.is_empty() {
            return Some(LOOK_EVERY);
        }
        self.waiting_since
            .map(|since| self.bound.saturating_sub(since.elapsed()))
    }

    /// Collects the flushes that finished and, once the oldest waiting
    /// record has waited `bound` with no flush of theirs under way, asks
    /// for the next. `Err`: a flush failed, and the reads it covered were
    /// answered already.
    pub(super) fn tend(&mut self, runtime: &Runtime) -> Result<(), StoreError> {
        let mut failure = collect_finished(runtime, &mut self.asked).err();
        if self.asked.is_empty()
            && self
                .waiting_since
                .is_some_and(|since| since.elapsed() >= self.bound)
        {
            self.asked = std::mem::take(&mut self.waiting);
            self.waiting_since = None;
            if let Err(e) = collect_finished(runtime, &mut self.asked) {
                failure.get_or_insert(e);
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// Every flush, asked for and not, for a group that must be durable to
    /// wait on before its own.
    pub(super) fn take_all(&mut self) -> Vec<Durable> {
        self.waiting_since = None;
        let mut all = std::mem::take(&mut self.asked);
        all.append(&mut self.waiting);
        all
    }
}

/// Polls each once (asking for its flush if not yet), in one pass on the
/// runtime, and keeps those still under way; `Err` if one failed.
fn collect_finished(runtime: &Runtime, durables: &mut Vec<Durable>) -> Result<(), StoreError> {
    if durables.is_empty() {
        return Ok(());
    }
    runtime.block_on(std::future::poll_fn(|cx| {
        let mut failure = None;
        durables.retain_mut(|durable| match std::pin::Pin::new(durable).poll(cx) {
            Poll::Pending => true,
            Poll::Ready(Ok(())) => false,
            Poll::Ready(Err(e)) => {
                failure.get_or_insert(e);
                false
            }
        });
        Poll::Ready(failure.map_or(Ok(()), Err))
    }))
}

/// Waits for every one of `durables`, asking for all their flushes before
/// waiting on the first, so one flush can cover them all. The first failure.
pub(super) fn await_all(runtime: &Runtime, mut durables: Vec<Durable>) -> Result<(), StoreError> {
    let mut failure = collect_finished(runtime, &mut durables).err();
    for durable in durables {
        if let Err(e) = runtime.block_on(durable) {
            failure.get_or_insert(e);
        }
    }
    failure.map_or(Ok(()), Err)
}
