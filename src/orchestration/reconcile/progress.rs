//! How far the runs going on in this process are, for a caller waiting on
//! one (the CLI's progress bar): which stage, and how much of it is done.
//! Advisory and per process: nothing that must hold lives here, and a run
//! on another node shows as none running.

use crate::domain::date::SettlementDate;
use crate::domain::ids::ChannelId;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

/// What a run is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Fetching the file: bytes received of the size the channel named.
    Fetching { done: u64, of: u64 },
    /// Matching: passes finished of the passes the day needs.
    Matching { done: u64, of: u64 },
    /// Writing the run and carrying out its automatic actions.
    Writing,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Fetching { .. } => "fetching",
            Stage::Matching { .. } => "matching",
            Stage::Writing => "writing",
        }
    }

    /// How much of the stage is done, and of how much.
    pub fn counts(self) -> (u64, u64) {
        match self {
            Stage::Fetching { done, of } | Stage::Matching { done, of } => (done, of),
            Stage::Writing => (0, 0),
        }
    }
}

type Key = (ChannelId, SettlementDate);

/// The runs in progress in this process, by channel and date.
#[derive(Clone, Default)]
pub struct ProgressBoard {
    runs: Arc<Mutex<BTreeMap<Key, Stage>>>,
}

impl ProgressBoard {
    /// The stage of the run of `channel` and `date` in progress here, if any.
    pub fn of(&self, channel: &ChannelId, date: SettlementDate) -> Option<Stage> {
        let runs = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        runs.get(&(channel.clone(), date)).copied()
    }

    /// Shows a run of `channel` and `date` as started, until the returned
    /// mark is dropped.
    pub(super) fn start(&self, channel: &ChannelId, date: SettlementDate) -> RunMark {
        let key = (channel.clone(), date);
        self.set(&key, Stage::Fetching { done: 0, of: 0 });
        RunMark {
            board: self.clone(),
            key,
        }
    }

    fn set(&self, key: &Key, stage: Stage) {
        let mut runs = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        runs.insert(key.clone(), stage);
    }
}

/// One run's place on the board; dropping it takes the run off.
pub(super) struct RunMark {
    board: ProgressBoard,
    key: Key,
}

impl RunMark {
    pub fn set(&self, stage: Stage) {
        self.board.set(&self.key, stage);
    }
}

impl Drop for RunMark {
    fn drop(&mut self) {
        let mut runs = self.board.runs.lock().unwrap_or_else(PoisonError::into_inner);
        runs.remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_shows_while_its_mark_lives() {
        let board = ProgressBoard::default();
        let channel = ChannelId::parse("bank-a").unwrap();
        let date = SettlementDate::parse("2026-12-06").unwrap();
        assert_eq!(board.of(&channel, date), None);
        let mark = board.start(&channel, date);
        mark.set(Stage::Matching { done: 3, of: 10 });
        assert_eq!(board.of(&channel, date).map(Stage::counts), Some((3, 10)));
        drop(mark);
        assert_eq!(board.of(&channel, date), None);
    }
}
