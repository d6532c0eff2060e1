//! Where each record lives in the store's key space. Values are records from
//! `records`; sensitive fields inside them are ciphertext.

use super::token::TokenNumber;
use crate::domain::refs::{AgreementRef, CardRef, IdentityRef, ReservationId};
use crate::store::keyspace;

pub(crate) const DATA_KEY_PREFIX: &[u8] = keyspace::DATA_KEY.as_bytes();
pub(crate) const FINGERPRINT_KEY_PREFIX: &[u8] = keyspace::FINGERPRINT_KEY.as_bytes();
pub(crate) const AUDIT_KEY_PREFIX: &[u8] = keyspace::AUDIT_KEY.as_bytes();
/// The seed of the key that signs audit anchors, wrapped by the KEK.
pub(crate) const ANCHOR_KEY_PREFIX: &[u8] = keyspace::ANCHOR_KEY.as_bytes();
/// The payment-password pepper (Argon2id secret input), wrapped by the KEK.
pub(crate) const PEPPER_KEY_PREFIX: &[u8] = keyspace::PEPPER_KEY.as_bytes();

/// The rewrap job's cursor and counts.
pub(crate) const REWRAP_JOB: &[u8] = keyspace::REWRAP_JOB.as_bytes();
/// Who holds the KEK: the share set's manifest and the KEK version.
pub(crate) const CUSTODY: &[u8] = keyspace::CUSTODY.as_bytes();
pub(crate) const CARD_PREFIX: &[u8] = keyspace::CARD.as_bytes();
pub(crate) const IDENTITY_PREFIX: &[u8] = keyspace::IDENTITY.as_bytes();
pub(crate) const AGREEMENT_PREFIX: &[u8] = keyspace::AGREEMENT.as_bytes();
pub(crate) const STATEMENT_PREFIX: &[u8] = keyspace::STATEMENT.as_bytes();

/// The chunks of one statement file: its id (channel, date, SHA-256), then
/// the chunk's number, zero-padded so that key order is file order.
pub(crate) fn statement_chunks(file: &str) -> Vec<u8> {
    keyspace::STATEMENT.key(format_args!("{file}/"))
}

pub(crate) fn statement_chunk(file: &str, n: u32) -> Vec<u8> {
    keyspace::STATEMENT.key(format_args!("{file}/{n:08}"))
}

pub(crate) fn data_key(version: u32) -> Vec<u8> {
    // Zero-padded so that key order is version order.
    keyspace::DATA_KEY.key(format_args!("{version:010}"))
}

pub(crate) fn card(card_ref: &CardRef) -> Vec<u8> {
    keyspace::CARD.key(card_ref)
}

/// PAN fingerprint → card reference, for duplicate detection.
pub(crate) fn card_fingerprint(fingerprint_hex: &str) -> Vec<u8> {
    keyspace::CARD_FINGERPRINT.key(fingerprint_hex)
}

pub(crate) fn identity_held(identity_ref: &IdentityRef) -> Vec<u8> {
    keyspace::IDENTITY_HELD.key(identity_ref)
}

pub(crate) const PASSWORD_PREFIX: &[u8] = keyspace::PASSWORD.as_bytes();

pub(crate) fn identity(identity_ref: &IdentityRef) -> Vec<u8> {
    keyspace::IDENTITY.key(identity_ref)
}

pub(crate) fn token(number: &TokenNumber) -> Vec<u8> {
    keyspace::TOKEN.key(number)
}

/// Tokens of one card: `card-token/<card>/<token>` → empty.
pub(crate) fn card_tokens_prefix(card_ref: &CardRef) -> Vec<u8> {
    keyspace::CARD_TOKEN.key(format_args!("{card_ref}/"))
}

pub(crate) fn card_token(card_ref: &CardRef, number: &TokenNumber) -> Vec<u8> {
    keyspace::CARD_TOKEN.key(format_args!("{card_ref}/{number}"))
}

/// A token number deleted with its erased card: never drawn again.
pub(crate) fn erased_token(number: &TokenNumber) -> Vec<u8> {
    keyspace::ERASED_TOKEN.key(number)
}

pub(crate) fn reservation(id: &ReservationId) -> Vec<u8> {
    keyspace::RESERVATION.key(id)
}

pub(crate) fn agreement(agreement_ref: &AgreementRef) -> Vec<u8> {
    keyspace::AGREEMENT.key(agreement_ref)
}

/// Payment-password record of one platform user.
pub(crate) fn password(user: &crate::domain::refs::UserId) -> Vec<u8> {
    keyspace::PASSWORD.key(user)
}
