//! Compile-time proof of the PAN boundary. Built only with the
//! `boundary-probe` feature, and then it must FAIL to compile: code outside
//! `crate::vault` (the orchestration layer, the API, anything) cannot name the
//! plaintext types or call the methods that reveal their contents.
//! `tests/pan_boundary.rs` builds it and checks every line below is refused.

#![allow(dead_code)]

type ProbePan = crate::vault::card::pan::Pan; // PROBE: pan-type
type ProbeName = crate::vault::identity::name::RealName; // PROBE: name-type
type ProbeId = crate::vault::identity::resident_id::ResidentId; // PROBE: id-type
type ProbePhone = crate::vault::identity::mobile::Mobile; // PROBE: phone-type

async fn reveal(vault: &crate::vault::Vault<crate::store::SledStore>, card: &crate::domain::refs::CardRef) {
    let _ = vault.open_pan(card).await; // PROBE: open-pan
}
