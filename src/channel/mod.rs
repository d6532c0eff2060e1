//! Bank channels: the quick-pay protocol the gateway speaks, the mutual-TLS
//! HTTP client it speaks it with, and `bank-sim`, a separate server process
//! that plays the bank (and the SMS carrier) in development and tests.
//!
//! Nothing here can name the vault's plaintext types. The wire messages
//! carry card and identity fields as `Zeroizing<String>`, filled only by the
//! vault's gateway (and by the simulator, which is the bank).

pub mod client;
pub mod protocol;
pub mod signature;
pub mod statement;

pub use client::{Bounds, ChannelClient, ClientError, ClientTls};
