//! Entry points for the criterion micro-benchmarks (`benches/hot_paths.rs`).
//! They run the vault's private hot pieces on inputs the benchmark supplies
//! and hand back only what any caller may see (masked numbers, lengths,
//! refusals), so no plaintext type leaves `crate::vault`: the PAN boundary
//! test still holds. Keys are random per instance and never leave it.

use super::card::pan::Pan;
use super::card::{BinTable, CardRules, MaskedPan};
use super::crypto::aad::{Binding, RecordKind};
use super::crypto::envelope::SealingKey;
use super::crypto::fingerprint::FingerprintKey;
use super::crypto::CryptoError;
use super::token::controls::reserve;
use super::token::{ControlRefusal, DomainControls, TokenBinRange, TokenNumber, TokenStatus, UseRequest};
use crate::domain::random;
use crate::domain::time::Timestamp;
use crate::domain::validation::ValidationError;
use secrecy::SecretBox;

pub use super::token::controls::Usage;

/// Parse (characters, length, network, Luhn) and BIN lookup, as storing a
/// card does; returns the masked number and the issuer found.
pub fn parse_pan(
    input: &str,
    rules: &CardRules,
    bins: &BinTable,
) -> Result<(MaskedPan, String), ValidationError> {
    let pan = Pan::parse(input, rules)?;
    let issuer = bins.lookup(pan.expose_digits()).issuer;
    Ok((pan.masked(), issuer))
}

/// AES-256-GCM with the record binding as associated data, under a random key.
pub struct Sealer(SealingKey);

impl Sealer {
    pub fn random() -> Result<Self, CryptoError> {
        let raw = SecretBox::new(Box::new(random::array::<32>()?));
        Ok(Sealer(SealingKey::new(1, &raw)))
    }

    pub fn seal(&self, record_id: &str, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.0.seal(&card_binding(record_id), plaintext)
    }

    /// Opens and reports the plaintext's length (the bytes stay inside).
    pub fn open_len(&self, record_id: &str, sealed: &[u8]) -> Result<usize, CryptoError> {
        self.0.open(&card_binding(record_id), sealed).map(|p| p.len())
    }
}

fn card_binding(record_id: &str) -> Binding<'_> {
    Binding {
        kind: RecordKind::Card,
        record_id,
        field: "pan",
    }
}

/// The keyed HMAC-SHA256 fingerprint used for duplicate detection.
pub struct Fingerprinter(FingerprintKey);

impl Fingerprinter {
    pub fn random() -> Result<Self, CryptoError> {
        let raw = SecretBox::new(Box::new(random::array::<32>()?));
        Ok(Fingerprinter(FingerprintKey::new(1, raw)))
    }

    pub fn hex(&self, value: &[u8]) -> String {
        self.0.fingerprint("pan", value).to_hex()
    }
}

/// A random, Luhn-valid token number of `length` digits in `range`.
pub fn token_number(range: &TokenBinRange, length: usize) -> Result<TokenNumber, CryptoError> {
    range.generate(length)
}

/// Every domain control checked and one use held, as a debit does.
pub fn check_controls(
    controls: &DomainControls,
    usage: &mut Usage,
    request: &UseRequest,
    now: Timestamp,
) -> Result<(), ControlRefusal> {
    reserve(TokenStatus::Active, controls, usage, request, now)
}
