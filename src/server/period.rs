//! The beat of a background task: a tick every `interval` (a late tick
//! delays the next, it does not pile up), and, for work one node at a
//! time does, only the ticks at which this node holds the task's lease.

use super::leases::{Leases, Task};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{Interval, MissedTickBehavior};

pub(super) struct Period {
    tick: Interval,
    lease: Option<(Arc<Leases>, Task)>,
}

impl Period {
    /// Every node, every `interval` (the first tick at once).
    pub(super) fn every(interval: Duration) -> Self {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Period { tick, lease: None }
    }

    /// Only while this node holds `task`'s lease.
    pub(super) fn under_lease(mut self, leases: Arc<Leases>, task: Task) -> Self {
        self.lease = Some((leases, task));
        self
    }

    /// Waits for the next tick at which this node may do the work.
    pub(super) async fn next(&mut self) {
        loop {
            self.tick.tick().await;
            if self
                .lease
                .as_ref()
                .is_none_or(|(leases, task)| leases.holds(*task))
            {
                return;
            }
        }
    }
}
