//! Break-glass detokenisation as a capability: `Vault::reveal_pan` takes a
//! `RevealGrant`, and only the policy check below makes one, for a caller
//! whose policy is marked `break_glass` and grants `card.reveal`. Under
//! dual control `Vault::approve_reveal` takes an `ApprovalGrant`, made here
//! for a caller granted `reveal.approve`. A layer that holds no policy set
//! (orchestration, the gateway) cannot obtain either, and the compiler
//! refuses to build one anywhere outside this file.

use super::PolicySet;
use crate::audit::Actor;
use crate::domain::operation::Operation;
use crate::tls::Identity;

/// Proof that the policy set allows this caller to see a PAN. It carries
/// the caller, so the vault audits exactly the identity the policy allowed.
pub struct RevealGrant {
    actor: Actor,
}

impl RevealGrant {
    fn new(actor: Actor) -> Self {
        RevealGrant { actor }
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }
}

/// Proof that the policy set allows this caller to approve another
/// identity's reveal request (`reveal.approve`): the second half of dual
/// control, which `Vault::approve_reveal` takes.
pub struct ApprovalGrant {
    actor: Actor,
}

impl ApprovalGrant {
    fn new(actor: Actor) -> Self {
        ApprovalGrant { actor }
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }
}

impl PolicySet {
    /// A grant for `identity` (acting as `actor`), if its policy is a
    /// break-glass policy that grants `card.reveal`; `None` otherwise.
    pub fn grant_reveal(&self, identity: &Identity, actor: &Actor) -> Option<RevealGrant> {
        let policy = self.by_identity.get(identity)?;
        let granted = policy.break_glass && policy.allow.contains(&Operation::CardReveal);
        granted.then(|| RevealGrant::new(actor.clone()))
    }

    /// A grant for `identity` (acting as `actor`) to approve reveals, if
    /// its policy grants `reveal.approve`; `None` otherwise.
    pub fn grant_approval(&self, identity: &Identity, actor: &Actor) -> Option<ApprovalGrant> {
        let policy = self.by_identity.get(identity)?;
        policy
            .allow
            .contains(&Operation::RevealApprove)
            .then(|| ApprovalGrant::new(actor.clone()))
    }
}
