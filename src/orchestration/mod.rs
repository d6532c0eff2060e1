//! Orchestration: card binding (and, next, debit, refund, cancel, unbind)
//! as flows over references and payment tokens only.
//!
//! This module cannot name `Pan`, `RealName`, `ResidentId` or `Mobile`, nor
//! call the vault's openers: they are private to `crate::vault`, and
//! `tests/pan_boundary.rs` proves it by compiling a probe from here. What it
//! stores and logs is references, masked values, statuses and bank reason
//! codes. Bank calls go through the vault's gateway.

pub mod binding;
#[cfg(feature = "boundary-probe")]
mod boundary_probe;
mod error;
mod layout;
mod policy;

pub use binding::{BindingId, BindingStatus, BindingView, CodeSender, ConfirmCode, StartBinding};
pub use error::OrchestrationError;
pub use policy::{BindingPolicy, SharedCardPolicy, TokenDefaults};

use crate::vault::gateway::Gateway;

/// The orchestration layer: its policy and the gateway it calls banks through.
pub struct Orchestrator {
    pub gateway: Gateway,
    pub policy: BindingPolicy,
    /// One flow at a time per card (start) and per binding (confirm).
    locks: crate::stripes::Stripes,
}

impl Orchestrator {
    pub fn new(gateway: Gateway, policy: BindingPolicy) -> Self {
        Orchestrator {
            gateway,
            policy,
            locks: crate::stripes::Stripes::new(),
        }
    }
}
