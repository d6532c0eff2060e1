//! Reconciliation (对账): a channel's daily statement, fetched through the
//! gateway and checked (digest, summary), matched line by line against the
//! vault's payments and refunds on that channel (`matcher`), and kept as a
//! run with its discrepancies, each an audit record (`run`).

pub mod matcher;
mod resolve;
mod run;

pub use matcher::{Class, Finding, LineKey};
pub use resolve::{Action, DiscrepancyId, DiscrepancyView, Resolution};
pub use run::{RunView, SettledTotals};

super::ids::random_id!(
    /// A reconciliation run: `rcn_` and 32 lower-case hex digits.
    RunId, "rcn_", "reconciliation run"
);
