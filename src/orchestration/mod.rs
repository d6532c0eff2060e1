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
mod ids;
mod layout;
pub mod payment;
mod policy;
pub mod reconcile;
pub mod routing;
mod routing_store;
mod settings;

pub use crate::config::{SharedCardPolicy, TokenDefaults};
pub use binding::{BindingId, BindingStatus, BindingView, CodeSender, ConfirmCode, StartBinding};
pub use error::OrchestrationError;
pub use payment::{Debit, PaymentId, PaymentStatus, PaymentView};
pub use policy::{BindingPolicy, PaymentPolicy};

use crate::domain::ids::ChannelId;
use crate::vault::gateway::Gateway;
use std::collections::BTreeMap;

/// The orchestration layer: its policies, channel routing, and the gateway
/// it calls banks through.
pub struct Orchestrator {
    pub gateway: Gateway,
    pub policy: BindingPolicy,
    pub payments: PaymentPolicy,
    pub routing: routing::Routing,
    pub reconciliation: reconcile::ReconcilePolicy,
    /// How far this process's reconciliation runs are.
    pub reconcile_progress: reconcile::ProgressBoard,
    /// Channel → who may post its notifications, and the key they sign with.
    notifiers: BTreeMap<ChannelId, Notifier>,
    /// One binding flow at a time per card (start) and per binding
    /// (confirm, agreement updates).
    locks: crate::stripes::Stripes,
    /// One debit at a time per order.
    order_locks: crate::stripes::Stripes,
    /// One result, refund or cancel at a time per payment.
    payment_locks: crate::stripes::Stripes,
    /// Debits hold a binding's gate shared while they check it and record
    /// their payment; unbind holds it exclusively.
    binding_gate: crate::stripes::RwStripes,
}

/// Everything the orchestration layer is configured with.
#[derive(Clone)]
pub struct OrchestrationConfig {
    pub binding: BindingPolicy,
    pub payments: PaymentPolicy,
    pub routing: routing::RoutingPolicy,
    pub reconciliation: reconcile::ReconcilePolicy,
    pub notifiers: BTreeMap<ChannelId, Notifier>,
}

/// A channel's notifier: the client identity (mutual TLS) allowed to post
/// its results, and the public key each result must be signed with.
#[derive(Clone, Debug)]
pub struct Notifier {
    pub identity: String,
    pub key: crate::ed25519::PublicKey,
}

impl Orchestrator {
    pub fn new(gateway: Gateway, config: OrchestrationConfig) -> Self {
        Orchestrator {
            gateway,
            policy: config.binding,
            payments: config.payments,
            routing: routing::Routing::new(config.routing),
            reconciliation: config.reconciliation,
            reconcile_progress: reconcile::ProgressBoard::default(),
            notifiers: config.notifiers,
            locks: crate::stripes::Stripes::new(),
            order_locks: crate::stripes::Stripes::new(),
            payment_locks: crate::stripes::Stripes::new(),
            binding_gate: crate::stripes::RwStripes::new(),
        }
    }

    /// `channel`'s notifier, if `identity` is it.
    pub fn notifier(&self, channel: &ChannelId, identity: &str) -> Option<&Notifier> {
        self.notifiers.get(channel).filter(|n| n.identity == identity)
    }
}
