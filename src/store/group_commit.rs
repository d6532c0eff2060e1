//! Group commit: writers apply their change, take a ticket, and wait; one
//! flusher thread makes everything written so far durable with a single
//! fsync and releases every ticket it covered.
//!
//! This is also what keeps the vault clear of sled 0.34.7's `flush_async`
//! deadlock (sled #1308, several waiters on one flush): sled's async flush is
//! never called, and its blocking `flush` is only ever called from the one
//! thread below, so there is never more than one flush in progress.

use super::StoreError;
use std::future::Future;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use tokio::sync::watch;

/// Flushes are numbered from 1 in the order the flusher starts them; it
/// runs one at a time, so they also finish in that order.
#[derive(Clone, Copy, Debug, Default)]
struct Progress {
    /// The last flush that finished and succeeded.
    durable_through: u64,
    /// The last flush that finished and failed.
    failed_through: u64,
    closed: bool,
}

#[derive(Default)]
struct Requests {
    /// Somebody waits for a flush that has not started yet.
    wanted: bool,
    /// How many flushes have started.
    started: u64,
    shutdown: bool,
    /// The flusher is parked on the condvar. A notify is a futex syscall
    /// even with nobody waiting, so writers only notify when it is parked.
    flusher_parked: bool,
}

struct Shared {
    requests: Mutex<Requests>,
    wake: Condvar,
}

pub(crate) struct GroupCommit {
    shared: Arc<Shared>,
    progress: watch::Receiver<Progress>,
    flusher: Option<JoinHandle<()>>,
}

/// Where the flusher stood when a write was applied: the write is durable
/// once any flush that started after it has finished.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Applied {
    started_before: u64,
}

impl GroupCommit {
    /// Starts the flusher thread. `flush` makes every write applied before it
    /// was called durable.
    pub(crate) fn start<F>(flush: F) -> std::io::Result<Self>
    where
        F: Fn() -> Result<(), String> + Send + 'static,
    {
        let shared = Arc::new(Shared {
            requests: Mutex::new(Requests::default()),
            wake: Condvar::new(),
        });
        let (tx, rx) = watch::channel(Progress::default());
        let thread_shared = Arc::clone(&shared);
        let flusher = std::thread::Builder::new()
            .name("tokenvault-flusher".into())
            .spawn(move || run_flusher(&thread_shared, &tx, flush))?;
        Ok(GroupCommit {
            shared,
            progress: rx,
            flusher: Some(flusher),
        })
    }

    /// Call right after a write has been applied (asks for nothing).
    pub(crate) fn applied(&self) -> Applied {
        let requests = self
            .shared
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Applied {
            started_before: requests.started,
        }
    }

    /// Resolves once a flush that started after `applied` has finished,
    /// asking for one only if none has started since. So however many
    /// writes of one group (or reads answered before it) wait, and in
    /// whatever order their waits begin, a flush already under way or
    /// done since they were applied serves them all: asking one by one
    /// never turns into one flush each.
    pub(crate) fn ticket(
        &self,
        applied: Applied,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + 'static {
        let needed = applied.started_before + 1;
        let (asked, parked) = {
            let mut requests = self
                .shared
                .requests
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if requests.started >= needed {
                (true, false)
            } else if requests.shutdown {
                (false, false)
            } else {
                requests.wanted = true;
                (true, requests.flusher_parked)
            }
        };
        if parked {
            self.shared.wake.notify_one();
        }
        let mut progress = self.progress.clone();
        async move {
            if !asked {
                return Err(StoreError::Closed);
            }
            let seen = *progress
                .wait_for(|p| p.durable_through >= needed || p.failed_through >= needed || p.closed)
                .await
                .map_err(|_| StoreError::Closed)?;
            if seen.durable_through >= needed {
                Ok(())
            } else if seen.failed_through >= needed {
                Err(StoreError::NotDurable("flush failed".into()))
            } else {
                Err(StoreError::Closed)
            }
        }
    }

    /// How many flushes have started.
    pub(crate) fn flushes(&self) -> u64 {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .started
    }
}

fn run_flusher<F>(shared: &Shared, progress: &watch::Sender<Progress>, flush: F)
where
    F: Fn() -> Result<(), String>,
{
    loop {
        let number = {
            let mut requests = shared.requests.lock().unwrap_or_else(PoisonError::into_inner);
            while !requests.wanted && !requests.shutdown {
                requests.flusher_parked = true;
                requests = shared.wake.wait(requests).unwrap_or_else(PoisonError::into_inner);
                requests.flusher_parked = false;
            }
            if !requests.wanted {
                break; // shut down with nothing pending
            }
            requests.wanted = false;
            requests.started += 1;
            requests.started
        };
        let outcome = flush();
        progress.send_modify(|p| match &outcome {
            Ok(()) => p.durable_through = number,
            Err(e) => {
                tracing::error!(error = %e, "flush failed; writers waiting on it are told their write is not durable");
                p.failed_through = number;
            }
        });
    }
    progress.send_modify(|p| p.closed = true);
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .shutdown = true;
        self.shared.wake.notify_one();
        if let Some(handle) = self.flusher.take() {
            // A panicking flusher already reported through `closed`.
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_failed_flush_is_reported_and_later_ones_recover() {
        let fail = Arc::new(AtomicBool::new(true));
        let f = Arc::clone(&fail);
        let gc = GroupCommit::start(move || {
            if f.load(Ordering::SeqCst) {
                Err("disk full".into())
            } else {
                Ok(())
            }
        })
        .unwrap();
        assert!(matches!(
            gc.ticket(gc.applied()).await,
            Err(StoreError::NotDurable(_))
        ));
        fail.store(false, Ordering::SeqCst);
        assert!(gc.ticket(gc.applied()).await.is_ok());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn waits_begun_one_by_one_share_the_flush_started_after_their_write() {
        let flushes = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&flushes);
        let gc = GroupCommit::start(move || {
            // Long enough that every wait below begins while it runs.
            std::thread::sleep(std::time::Duration::from_millis(50));
            counted.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .unwrap();
        let applied: Vec<Applied> = (0..100).map(|_| gc.applied()).collect();
        let waits: Vec<_> = applied.into_iter().map(|a| gc.ticket(a)).collect();
        for wait in waits {
            wait.await.unwrap();
        }
        assert_eq!(flushes.load(Ordering::SeqCst), 1);
        // A write applied while a flush runs needs the next one.
        let first = gc.ticket(gc.applied());
        while gc.flushes() < 2 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let during = gc.applied();
        first.await.unwrap();
        assert_eq!(flushes.load(Ordering::SeqCst), 2);
        gc.ticket(during).await.unwrap();
        assert_eq!(flushes.load(Ordering::SeqCst), 3);
        assert_eq!(gc.flushes(), 3);
    }
}
