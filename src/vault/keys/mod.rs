//! Key management, all of it: the KEK (development file or custodians'
//! shares), the data keys and their budgets, rotation and retirement, the
//! resumable rewrap job, and the collection of custodian shares.

pub(in crate::vault) mod anchors;
pub mod custody;
pub(in crate::vault) mod data_keys;
pub(in crate::vault) mod fence;
pub(in crate::vault) mod fingerprints;
pub mod kek;
pub(in crate::vault) mod keyring;
mod rewrap;
mod rotation;
pub mod sealed_share;
pub mod shares;
pub(in crate::vault) mod versioned;

pub use rewrap::RewrapProgress;
pub(crate) use rotation::load_custody;
pub use rotation::{DataKeyStatus, KeyReport, KeyState};
