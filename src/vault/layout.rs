//! Where each record lives in the store's key space. Values are records from
//! `records`; sensitive fields inside them are ciphertext.

use super::token::TokenNumber;
use crate::domain::refs::{AgreementRef, CardRef, IdentityRef, ReservationId};

pub(crate) const DATA_KEY_PREFIX: &[u8] = b"key/data/";
pub(crate) const FINGERPRINT_KEY: &[u8] = b"key/fingerprint/0000000001";
pub(crate) const AUDIT_KEY: &[u8] = b"key/audit/0000000001";
/// The payment-password pepper (Argon2id secret input), wrapped by the KEK.
pub(crate) const PEPPER_KEY: &[u8] = b"key/pepper/0000000001";

/// The rewrap job's cursor and counts.
pub(crate) const REWRAP_JOB: &[u8] = b"key/rewrap-job";
/// Who holds the KEK: the share set's manifest and the KEK version.
pub(crate) const CUSTODY: &[u8] = b"key/custody";
pub(crate) const CARD_PREFIX: &[u8] = b"card/";
pub(crate) const IDENTITY_PREFIX: &[u8] = b"identity/";
pub(crate) const AGREEMENT_PREFIX: &[u8] = b"agreement/";

pub(crate) fn data_key(version: u32) -> Vec<u8> {
    // Zero-padded so that key order is version order.
    format!("key/data/{version:010}").into_bytes()
}

pub(crate) fn card(card_ref: &CardRef) -> Vec<u8> {
    format!("card/{card_ref}").into_bytes()
}

/// PAN fingerprint → card reference, for duplicate detection.
pub(crate) fn card_fingerprint(fingerprint_hex: &str) -> Vec<u8> {
    format!("card-fp/{fingerprint_hex}").into_bytes()
}

pub(crate) fn identity(identity_ref: &IdentityRef) -> Vec<u8> {
    format!("identity/{identity_ref}").into_bytes()
}

pub(crate) fn token(number: &TokenNumber) -> Vec<u8> {
    format!("token/{number}").into_bytes()
}

/// Tokens of one card: `card-token/<card>/<token>` → empty.
pub(crate) fn card_tokens_prefix(card_ref: &CardRef) -> Vec<u8> {
    format!("card-token/{card_ref}/").into_bytes()
}

pub(crate) fn card_token(card_ref: &CardRef, number: &TokenNumber) -> Vec<u8> {
    format!("card-token/{card_ref}/{number}").into_bytes()
}

pub(crate) fn reservation(id: &ReservationId) -> Vec<u8> {
    format!("reservation/{id}").into_bytes()
}

pub(crate) fn agreement(agreement_ref: &AgreementRef) -> Vec<u8> {
    format!("agreement/{agreement_ref}").into_bytes()
}

/// Payment-password record of one platform user.
pub(crate) fn password(user: &crate::domain::refs::UserId) -> Vec<u8> {
    format!("password/{user}").into_bytes()
}
