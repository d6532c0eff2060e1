//! The trail's copies outside the store: signed anchors written to a
//! folder on a schedule (by one node at a time), and the sink that appends
//! this node's records to a file as they commit.

use super::leases::{Leases, Task};
use super::period::Period;
use crate::api::App;
use crate::audit::anchor::SignedAnchor;
use crate::audit::{Actor, Sink};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// How long the sink waits after a failed copy before it tries again.
const SINK_RETRY: Duration = Duration::from_secs(1);

/// Writes `anchor` into `dir` as `anchor-<signed_at_ms>-<node>.json`,
/// whole or not at all, and returns the file's path.
pub fn write_anchor(dir: &Path, anchor: &SignedAnchor) -> std::io::Result<PathBuf> {
    let signer = anchor.signed_by.as_deref().unwrap_or("unnamed");
    let path = dir.join(format!("anchor-{:013}-{signer}.json", anchor.signed_at_ms));
    let mut text = serde_json::to_vec_pretty(anchor).map_err(std::io::Error::other)?;
    text.push(b'\n');
    crate::atomic_file::write(&path, &text, 0o644)?;
    Ok(path)
}

/// Signs an anchor into `dir` every `interval` while this node holds the
/// anchor task's lease, as the `local:audit-anchor` actor.
pub(super) fn spawn_anchors(
    app: Arc<App>,
    leases: Arc<Leases>,
    dir: PathBuf,
    interval: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let actor = Actor::local("audit-anchor");
        let mut period = Period::every(interval).under_lease(leases, Task::AuditAnchor);
        loop {
            period.next().await;
            let anchor = match app.vault.audit_anchor(&actor).await {
                Ok(anchor) => anchor,
                Err(e) => {
                    app.metrics.anchor_failed();
                    tracing::error!(error = %e, "could not sign an audit anchor");
                    continue;
                }
            };
            let dir = dir.clone();
            match tokio::task::spawn_blocking(move || write_anchor(&dir, &anchor)).await {
                Ok(Ok(path)) => {
                    app.metrics.anchor_written();
                    tracing::info!(path = %path.display(), "audit anchor written");
                }
                Ok(Err(e)) => {
                    app.metrics.anchor_failed();
                    tracing::error!(error = %e, "could not write an audit anchor");
                }
                Err(e) => {
                    app.metrics.anchor_failed();
                    tracing::error!(error = %e, "the audit anchor writer stopped");
                }
            }
        }
    })
}

/// The sink's task and how far it has copied.
pub(super) struct SinkTask {
    task: JoinHandle<()>,
    written: Arc<AtomicU64>,
}

impl SinkTask {
    /// Waits (up to `SINK_DRAIN`) until the sink holds every record this
    /// process committed, the trail's closing record among them, then
    /// stops the task. Never while a copy is half written: the task is
    /// only stopped between copies or once the wait is over.
    pub(super) async fn drain(self, app: &App) {
        let deadline = tokio::time::Instant::now() + SINK_DRAIN;
        while self.written.load(Ordering::Acquire) < app.vault.audit_tally().head_seq() {
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(
                    "the audit sink did not catch up before the stop; it resumes at the next start"
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.task.abort();
    }
}

/// How long the sink gathers commits after the first before it copies:
/// the most a record's copy lags its commit, beyond the copy itself.
const SINK_GATHER: Duration = Duration::from_millis(50);

/// How long a graceful stop waits for the sink to catch up.
const SINK_DRAIN: Duration = Duration::from_secs(2);

/// Copies every commit of this node's chain to `sink`, woken by each
/// commit; a failure is logged, counted and retried (the file's lines
/// then lag; they never go missing).
pub(super) fn spawn_sink(app: Arc<App>, mut sink: Sink) -> SinkTask {
    let written = Arc::new(AtomicU64::new(sink.written()));
    let progress = Arc::clone(&written);
    let task = tokio::spawn(async move {
        let mut commits = app.vault.audit_tally().subscribe();
        loop {
            match app.vault.follow_trail(&mut sink).await {
                Ok(written) => {
                    progress.store(written, Ordering::Release);
                    app.metrics
                        .sink_written(written, app.vault.audit_tally().head_seq());
                }
                Err(e) => {
                    app.metrics.sink_failed();
                    tracing::error!(error = %e, "audit sink copy failed; retrying");
                    tokio::time::sleep(SINK_RETRY).await;
                    continue;
                }
            }
            if commits.changed().await.is_err() {
                return;
            }
            // Under load, many commits a second: one read, one write and
            // one flush for all that came in this while.
            tokio::time::sleep(SINK_GATHER).await;
        }
    });
    SinkTask { task, written }
}
