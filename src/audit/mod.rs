//! The audit trail: one record per access to protected data, refusal and
//! admin action; append-only, each record carrying a keyed MAC over its
//! content and its predecessor's MAC, so an edited, removed or reordered
//! record is found by `verify`. The vault writes records in the same atomic
//! store batch as the change they describe (fail closed); `read` is the
//! other side: pages, export and verification of the stored chain.

mod actor;
pub mod anchor;
mod chain;
mod checkpoint;
mod keys;
pub mod read;
mod record;
mod sink;
mod tally;
mod verify;

pub use actor::{Actor, Outcome};
pub use chain::{AuditChain, AuditKey, ChainName, MissingKey};
pub use checkpoint::Checkpointed;
pub use keys::AuditKeys;
pub(crate) use keys::{rotation_detail as audit_key_rotation_detail, version_of as key_version_of};
pub use record::{AuditRecord, ChainRecord, ExportLine};
pub use sink::{Sink, SinkError};
pub use tally::{OutcomeCount, Tally};
pub use verify::{verify, Break, BreakKind, ChainHeadView, TrailReport, VerifyReport};

pub(crate) use chain::{ChainHead, Entry};
pub(crate) use checkpoint::detail as checkpoint_detail;
