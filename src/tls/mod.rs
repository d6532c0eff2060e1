//! Mutual TLS: who the caller is (from its certificate), how the server's
//! rustls configuration is built and reloaded, and the development PKI.

pub mod expiry;
pub mod identity;
pub mod layout;
#[cfg(feature = "dev-pki")]
pub mod pki;
mod server_config;
mod settings;

pub use identity::{Identity, IdentityError, SpiffeId};
pub use server_config::{
    build, crl_next_update, server_verifier, PreparedTls, ReloadableTls, TlsError, TlsFiles,
};
