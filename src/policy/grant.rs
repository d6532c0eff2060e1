//! Break-glass detokenisation as a capability: `Vault::reveal_pan` takes a
//! `RevealGrant`, and only the policy check below makes one, for a caller
//! whose policy is marked `break_glass` and grants `card.reveal`. A layer
//! that holds no policy set (orchestration, the gateway) cannot obtain one,
//! and the compiler refuses `RevealGrant::new` anywhere outside this file.

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

impl PolicySet {
    /// A grant for `identity` (acting as `actor`), if its policy is a
    /// break-glass policy that grants `card.reveal`; `None` otherwise.
    pub fn grant_reveal(&self, identity: &Identity, actor: &Actor) -> Option<RevealGrant> {
        let policy = self.by_identity.get(identity)?;
        let granted = policy.break_glass && policy.allow.contains(&Operation::CardReveal);
        granted.then(|| RevealGrant::new(actor.clone()))
    }
}
