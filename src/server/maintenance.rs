//! The key-maintenance task (on the node that holds its lease): advances a rewrap job at the configured rate
//! (so live traffic keeps its latency), and replaces the current data-key
//! version when its cryptoperiod has run out.

use super::leases::{Leases, Task};
use crate::api::App;
use crate::audit::Actor;
use crate::config::KeysSection;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// How long an idle task waits before looking for a newly started job.
const IDLE: Duration = Duration::from_millis(500);

pub(super) fn spawn(app: Arc<App>, leases: Arc<Leases>, keys: KeysSection) -> JoinHandle<()> {
    tokio::spawn(async move {
        let actor = Actor::local("key-maintenance");
        let rate = keys.rewrap_records_per_s.max(1);
        // About ten pages a second, each paced to the rate.
        let page = (rate / 10).clamp(1, 256);
        let pause = Duration::from_secs(1) * page / rate;
        let check_every = Duration::from_secs(keys.check_interval_s.max(1));
        let mut last_check: Option<Instant> = None;
        loop {
            if !leases.holds(Task::KeyMaintenance) {
                tokio::time::sleep(IDLE).await;
                continue;
            }
            if last_check.is_none_or(|t| t.elapsed() >= check_every) {
                last_check = Some(Instant::now());
                match app.kek_age().await {
                    Ok(Some((age, period))) if age >= period => tracing::warn!(
                        age_s = age,
                        cryptoperiod_s = period,
                        "the KEK is past its cryptoperiod: custodians must rotate it (tokenvault keys rotate-kek)"
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "KEK age check failed"),
                }
                match app.vault.rotate_if_due(&actor).await {
                    Ok(Some(version)) => {
                        tracing::warn!(version, "cryptoperiod reached: new data key version")
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "cryptoperiod check failed"),
                }
            }
            let wait = match app.vault.rewrap_step(&actor, page as usize).await {
                Ok(Some(progress)) if progress.finished_at.is_none() => pause,
                Ok(Some(progress)) => {
                    tracing::info!(
                        scanned = progress.scanned,
                        rewrapped = progress.rewrapped,
                        "rewrap finished"
                    );
                    IDLE
                }
                Ok(None) => IDLE,
                Err(e) => {
                    tracing::warn!(error = %e, "rewrap step failed; retrying");
                    Duration::from_secs(1)
                }
            };
            tokio::time::sleep(wait).await;
        }
    })
}
