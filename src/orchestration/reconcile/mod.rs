//! Reconciliation (对账): a channel's daily statement, fetched through the
//! gateway part by part, checked (digest, summary) and kept sealed
//! (`fetch`), matched line by line against the vault's payments and
//! refunds on that channel (`matcher`) in passes by order id (`passes`),
//! each run's stage shown on a board (`progress`), read against
//! the channel's other days (`across`, `history`), and kept as a run with
//! its discrepancies, each an audit record (`run`). What is left open is a
//! queue across runs (`queue`), resolved by hand (`resolve`) or, where the
//! rule is clear, by the run itself (`automatic`). The vault's own books
//! are checked against each other by `ledger`.

mod across;
mod automatic;
mod fetch;
mod history;
mod ledger;
pub mod matcher;
mod passes;
mod policy;
mod progress;
mod queue;
mod resolve;
mod run;
mod schedule;

pub use across::{across_days, AcrossDays, History, Seen, Short};
pub use ledger::{Drift, LedgerReport};
pub use matcher::{Class, Finding, LineKey};
pub use passes::Passes;
pub use policy::ReconcilePolicy;
pub use progress::{ProgressBoard, Stage};
pub use queue::{DiscrepancyState, QueuedDiscrepancy, RunSummary};
pub use resolve::{Action, DiscrepancyId, DiscrepancyView, ManualAction, Resolution};
pub use run::{RunView, SettledTotals};
pub use schedule::due_date;

super::ids::random_id!(
    /// A reconciliation run: `rcn_` and 32 lower-case hex digits.
    RunId, "rcn_", "reconciliation run"
);
