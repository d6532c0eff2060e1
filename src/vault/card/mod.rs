//! Card numbers: parsing, networks, BIN facts, masking.

pub mod bin_table;
mod erase;
pub use crate::domain::luhn;
pub mod network;
pub(in crate::vault) mod pan;
pub mod rules;
pub(in crate::vault) mod store;

pub use bin_table::{BinInfo, BinTable, BinTableError, CardType};
pub use erase::ErasedCard;
pub use network::Network;
pub use pan::MaskedPan;
pub use rules::CardRules;
pub use store::StoredCard;
