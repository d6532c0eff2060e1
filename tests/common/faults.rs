//! A `Store` wrapper that injects the faults a real disk and backend
//! produce, at a chosen write or read: the write refused before it applies,
//! the flush failing after it applied, the backend failing after it applied
//! (the caller cannot know), a read returning flipped bytes. Any backend can
//! be wrapped, so the conformance suite and the vault's fault runs share it.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokenvault::store::{Batch, CommitError, Durable, Entry, Store, StoreError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The write is refused before anything is applied.
    FailApply,
    /// The write applies, but its flush fails: not acknowledged, maybe kept.
    FailFlush,
    /// The write applies, then the backend reports an error anyway.
    FailAfterApply,
    /// A read returns the stored value with one byte flipped.
    CorruptRead,
    /// The process dies instead of making the write (`abort`: no
    /// destructor, no flush), so every earlier acknowledged write is on
    /// disk and this one never lands. For tests that re-run themselves as
    /// a child process; not in `ALL`.
    Abort,
}

impl Fault {
    pub const ALL: [Fault; 4] = [
        Fault::FailApply,
        Fault::FailFlush,
        Fault::FailAfterApply,
        Fault::CorruptRead,
    ];

    fn on_reads(self) -> bool {
        self == Fault::CorruptRead
    }
}

pub struct FaultyStore<S> {
    pub inner: S,
    faults: Faults,
}

/// The test's handle on a `FaultyStore` it has handed to a vault.
#[derive(Clone, Default)]
pub struct Faults(Arc<Armed>);

#[derive(Default)]
pub struct Armed {
    /// The armed fault and the count (writes, or reads) left before it fires.
    armed: Mutex<Option<(Fault, u64)>>,
    fired: AtomicU64,
    /// Writes seen (counted whether or not a fault is armed).
    writes: AtomicU64,
    /// Every write waits this long first (a slow disk), to hold a group in flight.
    delay: Mutex<Option<std::time::Duration>>,
    /// While true, no write is reported durable (a flush that takes long):
    /// its durability waits until flushes are released.
    flushes_held: tokio::sync::watch::Sender<bool>,
}

impl<S: Store> FaultyStore<S> {
    pub fn new(inner: S) -> (Self, Faults) {
        let faults = Faults::default();
        (
            FaultyStore {
                inner,
                faults: faults.clone(),
            },
            faults,
        )
    }

    fn next(&self, is_read: bool) -> Option<Fault> {
        self.faults.next(is_read)
    }
}

impl Faults {
    /// `fault` fires at the `nth` write (or read, for `CorruptRead`) from now, once.
    pub fn arm(&self, fault: Fault, nth: u64) {
        assert!(nth >= 1);
        *self.0.armed.lock().unwrap() = Some((fault, nth));
    }

    pub fn disarm(&self) {
        *self.0.armed.lock().unwrap() = None;
    }

    pub fn delay_writes(&self, delay: Option<std::time::Duration>) {
        *self.0.delay.lock().unwrap() = delay;
    }

    /// Holds the durability of every write applied, past and future, as a
    /// flush that does not finish would, until the guard is released or
    /// dropped (so a failing test does not leave its vault waiting forever).
    pub fn hold_flushes(&self) -> HeldFlushes {
        self.0.flushes_held.send_replace(true);
        HeldFlushes(self.clone())
    }

    /// How many writes (apply or apply_sequence) the store has been asked for.
    pub fn writes(&self) -> u64 {
        self.0.writes.load(Ordering::SeqCst)
    }

    pub fn has_fired(&self) -> bool {
        self.0.fired.load(Ordering::SeqCst) > 0
    }

    /// Counts one write or read; the fault that fires on it, if any.
    fn next(&self, is_read: bool) -> Option<Fault> {
        if !is_read {
            self.0.writes.fetch_add(1, Ordering::SeqCst);
        }
        let mut armed = self.0.armed.lock().unwrap();
        let (fault, left) = armed.as_mut()?;
        if fault.on_reads() != is_read {
            return None;
        }
        *left -= 1;
        if *left > 0 {
            return None;
        }
        let fault = *fault;
        *armed = None;
        self.0.fired.fetch_add(1, Ordering::SeqCst);
        Some(fault)
    }
}

/// Flushes held until this is released or dropped.
pub struct HeldFlushes(Faults);

impl HeldFlushes {
    pub fn release(self) {}
}

impl Drop for HeldFlushes {
    fn drop(&mut self) {
        self.0 .0.flushes_held.send_replace(false);
    }
}

/// `durable`, resolved only once flushes are not held.
fn after_release(durable: Durable, held: &tokio::sync::watch::Sender<bool>) -> Durable {
    let mut held = held.subscribe();
    Durable::new(async move {
        let outcome = durable.await;
        let _ = held.wait_for(|held| !held).await;
        outcome
    })
}

impl<S: Store> FaultyStore<S> {
    /// Runs a write with whatever fault is due for it.
    async fn write<T>(
        &self,
        apply: impl Future<Output = Result<T, CommitError>>,
        fail_durables: impl FnOnce(T) -> T,
    ) -> Result<T, CommitError> {
        let delay = *self.faults.0.delay.lock().unwrap();
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        match self.next(false) {
            Some(Fault::Abort) => std::process::abort(),
            Some(Fault::FailApply) => Err(injected("the write was refused")),
            Some(Fault::FailFlush) => Ok(fail_durables(apply.await?)),
            Some(Fault::FailAfterApply) => {
                apply.await?;
                Err(injected("the backend failed after applying the write"))
            }
            _ => apply.await,
        }
    }
}

fn injected(what: &str) -> CommitError {
    CommitError::Store(StoreError::Backend(format!("injected fault: {what}")))
}

fn failed_flush() -> Durable {
    Durable::new(async { Err(StoreError::NotDurable("injected fault: the flush failed".into())) })
}

impl<S: Store> Store for FaultyStore<S> {
    async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let fault = self.next(true);
        let mut value = self.inner.get(key).await?;
        if let (Some(Fault::CorruptRead), Some(bytes)) = (fault, value.as_mut()) {
            let middle = bytes.len() / 2;
            if let Some(middle) = bytes.get_mut(middle) {
                *middle ^= 0x5a;
            }
        }
        Ok(value)
    }

    fn scan_prefix(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Entry>, StoreError>> + Send {
        self.inner.scan_prefix(prefix, after, limit)
    }

    async fn apply(&self, batch: Batch) -> Result<Durable, CommitError> {
        let durable = self.write(self.inner.apply(batch), |_| failed_flush()).await?;
        Ok(after_release(durable, &self.faults.0.flushes_held))
    }

    async fn apply_sequence(
        &self,
        batches: &[Batch],
        seal: &(dyn Fn(&[bool]) -> Result<Batch, StoreError> + Sync),
    ) -> Result<Vec<Option<Durable>>, CommitError> {
        let durables = self
            .write(self.inner.apply_sequence(batches, seal), |durables| {
                durables.into_iter().map(|d| d.map(|_| failed_flush())).collect()
            })
            .await?;
        let held = &self.faults.0.flushes_held;
        Ok(durables
            .into_iter()
            .map(|d| d.map(|d| after_release(d, held)))
            .collect())
    }
}
