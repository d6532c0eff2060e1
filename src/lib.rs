#![forbid(unsafe_code)]
#![doc = include_str!("../README.md")]

mod hex;
pub mod cli;
pub mod store;
pub mod time;
pub mod vault;

#[cfg(feature = "boundary-probe")]
mod boundary_probe;
