//! Identity data: real name, resident ID number, bank-reserved mobile. Like
//! the PAN, these types are visible only inside `crate::vault`.

mod erase;
pub(in crate::vault) mod mobile;
pub(in crate::vault) mod name;
pub(in crate::vault) mod resident_id;
mod store;

pub use store::StoredIdentity;
