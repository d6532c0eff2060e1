//! How reconciliation behaves, built from `[reconciliation]`.

use crate::config::{minute_of_day, AfterRelease, ReconciliationSection};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct ReconcilePolicy {
    /// Days a 短款 is held open for a later file before it is escalated.
    pub short_window_days: u32,
    pub paid_after_release: AfterRelease,
    /// Minutes after Beijing midnight from which the day before is due.
    pub daily_at: Option<u16>,
    pub check_interval: Duration,
    /// About how many statement lines a run holds at a time.
    pub lines_per_pass: u64,
}

impl ReconcilePolicy {
    /// From settings `check` has accepted.
    pub fn from_settings(r: &ReconciliationSection) -> Self {
        ReconcilePolicy {
            short_window_days: r.short_window_days,
            paid_after_release: r.paid_after_release,
            daily_at: r.daily_at.as_deref().and_then(minute_of_day),
            check_interval: Duration::from_secs(r.check_interval_s),
            lines_per_pass: r.lines_per_pass,
        }
    }
}

impl Default for ReconcilePolicy {
    fn default() -> Self {
        Self::from_settings(&ReconciliationSection::default())
    }
}
