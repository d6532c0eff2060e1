//! What every layer may name: identifiers and references, field and rule
//! names of a refusal, each failure's one code, the catalogue of operations, time, and the OS random
//! generator. Nothing here imports another layer of the crate.

pub mod amount;
pub mod date;
pub mod error_code;
pub mod ids;
pub mod luhn;
pub mod node;
pub mod operation;
pub mod personal_numbers;
pub mod random;
pub mod refs;
pub mod subject;
pub mod time;
pub mod validation;
