//! What the trail has taken since the service started, for metrics: the
//! head's sequence number and a count of records by operation and outcome.
//! Updated by whoever commits a group, read without the head's lock.

use super::{ChainHead, Entry};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

pub struct Tally {
    head_seq: AtomicU64,
    by_outcome: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// The head after each commit, for whoever follows the chain (the
    /// audit sink) without polling.
    commits: tokio::sync::watch::Sender<u64>,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            head_seq: AtomicU64::new(0),
            by_outcome: Mutex::default(),
            commits: tokio::sync::watch::Sender::new(0),
        }
    }
}

/// One `(operation, outcome)` count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutcomeCount {
    pub operation: &'static str,
    pub outcome: &'static str,
    pub records: u64,
}

impl Tally {
    /// The head after a commit, and the records it wrote.
    pub(crate) fn committed<'a>(&self, head: &ChainHead, entries: impl Iterator<Item = &'a Entry<'static>>) {
        self.head_seq.fetch_max(head.seq, Ordering::Relaxed);
        self.commits.send_if_modified(|seq| {
            let moved = head.seq > *seq;
            *seq = (*seq).max(head.seq);
            moved
        });
        let mut counts = self.by_outcome.lock().unwrap_or_else(PoisonError::into_inner);
        for entry in entries {
            *counts
                .entry((entry.operation, entry.outcome.as_str()))
                .or_default() += 1;
        }
    }

    /// The head read from the store at start.
    pub(crate) fn loaded(&self, head: &ChainHead) {
        self.head_seq.fetch_max(head.seq, Ordering::Relaxed);
    }

    /// Changes after every commit that moved the head.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.commits.subscribe()
    }

    /// Sequence number of the last record this process knows committed.
    pub fn head_seq(&self) -> u64 {
        self.head_seq.load(Ordering::Relaxed)
    }

    pub fn outcomes(&self) -> Vec<OutcomeCount> {
        let counts = self.by_outcome.lock().unwrap_or_else(PoisonError::into_inner);
        counts
            .iter()
            .map(|(&(operation, outcome), &records)| OutcomeCount {
                operation,
                outcome,
                records,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Outcome;

    fn entry(operation: &'static str, outcome: Outcome) -> Entry<'static> {
        Entry {
            operation,
            object: None,
            outcome,
            detail: None,
        }
    }

    #[test]
    fn counts_by_operation_and_outcome_and_keeps_the_highest_head() {
        let tally = Tally::default();
        let head = |seq| ChainHead {
            seq,
            mac: String::new(),
        };
        let debit_ok = entry("payment.debit", Outcome::Success);
        let debit_refused = entry("payment.debit", Outcome::Refused);
        tally.committed(&head(3), [&debit_ok, &debit_ok, &debit_refused].into_iter());
        tally.loaded(&head(1));
        assert_eq!(tally.head_seq(), 3);
        assert_eq!(
            tally.outcomes(),
            vec![
                OutcomeCount {
                    operation: "payment.debit",
                    outcome: "refused",
                    records: 1
                },
                OutcomeCount {
                    operation: "payment.debit",
                    outcome: "success",
                    records: 2
                },
            ]
        );
    }
}
