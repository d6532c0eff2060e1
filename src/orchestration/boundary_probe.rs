//! Compile-time proof that the orchestration layer works on references
//! only. Built only with the `boundary-probe` feature, and then it must FAIL
//! to compile: each `// PROBE:` line reaches for plaintext the orchestration
//! layer must never touch. `tests/pan_boundary.rs` checks every line is
//! refused as private.

#![allow(dead_code, unused_variables)]

use crate::domain::refs::{AgreementRef, CardRef, IdentityRef};
use crate::store::SledStore;
use crate::vault::Vault;

type ProbePan = crate::vault::card::pan::Pan; // PROBE: pan-type
type ProbeName = crate::vault::identity::name::RealName; // PROBE: name-type
type ProbeId = crate::vault::identity::resident_id::ResidentId; // PROBE: id-type
type ProbePhone = crate::vault::identity::mobile::Mobile; // PROBE: phone-type
type ProbeChannel = dyn crate::vault::gateway::channel::Channel; // PROBE: channel-trait

async fn open(vault: &Vault<SledStore>, card: &CardRef, identity: &IdentityRef, agreement: &AgreementRef) {
    let _ = vault.open_pan(card).await; // PROBE: open-pan
    let _ = vault.open_identity(identity).await; // PROBE: open-identity
    let _ = vault.open_agreement(agreement).await; // PROBE: open-agreement
}

fn peek(signed: &crate::vault::SignedAgreement, held: &crate::vault::gateway::CardVerification) {
    let _ = &signed.agreement_no; // PROBE: agreement-number
    let _ = &held.cvn; // PROBE: cvn
    let _ = &held.expiry; // PROBE: expiry
}

/// A debit is sent only with its opening on the trail: only the vault makes
/// a `Recorded` (after the write that holds the record).
fn send_unrecorded(opening: crate::vault::gateway::PayOpening) {
    let _ = crate::vault::Recorded::new(opening); // PROBE: unrecorded-opening
}

/// Issue 16: capabilities the compiler holds. The store is reached only
/// through the vault (a read-only view of the layer's own families, writes
/// with their audit record), key material not at all, and a PAN is revealed
/// only with a grant the policy check alone makes.
fn reach_past_the_vault(vault: &Vault<SledStore>, actor: &crate::audit::Actor) {
    let _ = &vault.store; // PROBE: raw-store
    let _ = vault.kek(); // PROBE: kek
    let _ = crate::policy::RevealGrant::new(actor.clone()); // PROBE: reveal-grant
    let _ = crate::policy::ApprovalGrant::new(actor.clone()); // PROBE: approval-grant
}

type ProbeSealer = crate::vault::crypto::envelope::SealingKey; // PROBE: sealing-key
type ProbeBinding<'a> = crate::vault::crypto::aad::Binding<'a>; // PROBE: aad-binding
type ProbeKeyring = crate::vault::keys::keyring::Keyring; // PROBE: keyring

fn write_unchecked(vault: &Vault<SledStore>, who: &crate::audit::Actor) {
    use crate::audit::Outcome::Success;
    use crate::domain::operation::Operation::PaymentDebit as Op;
    let b = crate::store::Batch::new();
    let _ = vault.commit_with_audit(b, who, Op, None, Success, None); // PROBE: unchecked-write
}

/// Absent, not private, from a build without the `bench` feature.
fn microbench(pan: &str) {
    let _ = crate::vault::microbench::parse_pan; // PROBE-GONE: microbench
}
