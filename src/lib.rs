#![forbid(unsafe_code)]
// Library code states its invariants instead of unwrapping; tests may unwrap.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::dbg_macro)
)]
#![deny(clippy::print_stdout, clippy::print_stderr)]
#![doc = include_str!("../README.md")]

pub mod api;
mod atomic_file;
pub mod audit;
pub mod channel;
pub mod cli;
pub mod config;
mod csv_lines;
pub mod domain;
pub mod ed25519;
mod hex;
pub mod orchestration;
pub mod pem;
pub mod policy;
pub mod server;
#[cfg(feature = "bank-sim")]
pub mod sim;
pub mod store;
mod stripes;
pub mod tls;
pub mod vault;
mod versions;

#[cfg(test)]
#[path = "../tests/data/mod.rs"]
mod test_data;

#[cfg(feature = "boundary-probe")]
mod boundary_probe;
