//! The audit trail: one record per access to protected data, refusal and
//! admin action; append-only, each record carrying a keyed MAC over its
//! content and its predecessor's MAC, so an edited, removed or reordered
//! record is found by `verify`. The vault writes records in the same atomic
//! store batch as the change they describe (fail closed); `read` is the
//! other side: pages, export and verification of the stored chain.

mod actor;
mod chain;
pub mod read;
mod record;
mod tally;
mod verify;

pub use actor::{Actor, Outcome};
pub use chain::{AuditChain, AuditKey};
pub use record::AuditRecord;
pub use tally::{OutcomeCount, Tally};
pub use verify::{verify, Break, BreakKind, ChainHeadView, VerifyReport};

pub(crate) use chain::{head_key, record_key, ChainHead, Entry};
