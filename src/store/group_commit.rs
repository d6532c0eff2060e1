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
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use tokio::sync::watch;

#[derive(Clone, Copy, Debug, Default)]
struct Progress {
    durable_through: u64,
    failed_through: u64,
    closed: bool,
}

#[derive(Default)]
struct Requests {
    issued: u64,
    shutdown: bool,
    /// The flusher is parked on the condvar. A notify is a futex syscall
    /// even with nobody waiting, so writers only notify when it is parked.
    flusher_parked: bool,
}

struct Shared {
    requests: Mutex<Requests>,
    wake: Condvar,
    flushes: AtomicU64,
}

pub(crate) struct GroupCommit {
    shared: Arc<Shared>,
    progress: watch::Receiver<Progress>,
    flusher: Option<JoinHandle<()>>,
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
            flushes: AtomicU64::new(0),
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

    /// Call after the write has been applied; the future resolves once a
    /// flush that started after this call has finished.
    pub(crate) fn ticket(&self) -> impl Future<Output = Result<(), StoreError>> + Send + 'static {
        let (ticket, parked) = {
            let mut requests = self
                .shared
                .requests
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if requests.shutdown {
                (None, requests.flusher_parked)
            } else {
                requests.issued += 1;
                (Some(requests.issued), requests.flusher_parked)
            }
        };
        if parked {
            self.shared.wake.notify_one();
        }
        let mut progress = self.progress.clone();
        async move {
            let ticket = ticket.ok_or(StoreError::Closed)?;
            let seen = *progress
                .wait_for(|p| p.durable_through >= ticket || p.failed_through >= ticket || p.closed)
                .await
                .map_err(|_| StoreError::Closed)?;
            if seen.durable_through >= ticket {
                Ok(())
            } else if seen.failed_through >= ticket {
                Err(StoreError::NotDurable("flush failed".into()))
            } else {
                Err(StoreError::Closed)
            }
        }
    }

    pub(crate) fn flushes(&self) -> u64 {
        self.shared.flushes.load(Ordering::Relaxed)
    }
}

fn run_flusher<F>(shared: &Shared, progress: &watch::Sender<Progress>, flush: F)
where
    F: Fn() -> Result<(), String>,
{
    let mut flushed_through = 0u64;
    loop {
        let target = {
            let mut requests = shared.requests.lock().unwrap_or_else(PoisonError::into_inner);
            while requests.issued == flushed_through && !requests.shutdown {
                requests.flusher_parked = true;
                requests = shared.wake.wait(requests).unwrap_or_else(PoisonError::into_inner);
                requests.flusher_parked = false;
            }
            if requests.issued == flushed_through {
                break; // shut down with nothing pending
            }
            requests.issued
        };
        let outcome = flush();
        shared.flushes.fetch_add(1, Ordering::Relaxed);
        flushed_through = target;
        progress.send_modify(|p| match &outcome {
            Ok(()) => p.durable_through = target,
            Err(e) => {
                tracing::error!(error = %e, "flush failed; writers waiting on it are told their write is not durable");
                p.failed_through = target;
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_failed_flush_is_reported_and_later_ones_recover() {
        let fail = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let f = Arc::clone(&fail);
        let gc = GroupCommit::start(move || {
            if f.load(Ordering::SeqCst) {
                Err("disk full".into())
            } else {
                Ok(())
            }
        })
        .unwrap();
        assert!(matches!(gc.ticket().await, Err(StoreError::NotDurable(_))));
        fail.store(false, Ordering::SeqCst);
        assert!(gc.ticket().await.is_ok());
    }
}
