//! The records the vault stores. Plaintext fields are references, masked
//! values and facts about a card (network, issuer); everything a PAN or an
//! identity consists of is ciphertext bound to its record and field.
//!
//! Encoding: `store::codec` (one format byte, then postcard). Decoding re-checks invariants
//! (serde `try_from` on controls, references and token numbers).

use super::card::{CardType, MaskedPan, Network};
use super::token::{DomainControls, TokenNumber, TokenStatus, Usage};
use super::VaultError;
use crate::domain::ids::{ChannelId, Currency, MerchantId};
use crate::domain::refs::{AgreementRef, CardRef, IdentityRef, ReservationId, UserId};
use crate::domain::time::Timestamp;
use crate::store::codec;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub(crate) fn encode<T: Serialize>(record: &T) -> Result<Vec<u8>, VaultError> {
    codec::encode(record).map_err(|_| VaultError::Corrupt {
        what: "record encoding",
    })
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8], what: &'static str) -> Result<T, VaultError> {
    codec::decode(bytes).map_err(|_| VaultError::Corrupt { what })
}

#[derive(Serialize, Deserialize)]
pub(crate) struct DataKeyRecord {
    pub version: u32,
    pub kek_version: u32,
    pub wrapped: Vec<u8>,
    /// Encryptions this version may have performed (see `crypto::keyring`).
    pub reserved_through: u64,
    pub created_at: Timestamp,
    /// Set by `keys retire`: the wrapped key is then erased, so the version
    /// can never seal (or open) again.
    pub retired_at: Option<Timestamp>,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct FingerprintKeyRecord {
    pub version: u32,
    pub kek_version: u32,
    pub wrapped: Vec<u8>,
    pub created_at: Timestamp,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct CardRecord {
    pub card_ref: CardRef,
    pub pan: Vec<u8>,
    pub fingerprint_version: u32,
    pub pan_length: u8,
    pub masked: MaskedPan,
    pub network: Network,
    pub issuer: String,
    pub card_type: CardType,
    pub created_at: Timestamp,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct IdentityRecord {
    pub identity_ref: IdentityRef,
    pub name: Vec<u8>,
    pub id_number: Vec<u8>,
    pub phone: Vec<u8>,
    pub masked_name: String,
    pub masked_id_number: String,
    pub masked_phone: String,
    pub created_at: Timestamp,
}

#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct TokenRecord {
    pub number: TokenNumber,
    pub card_ref: CardRef,
    pub status: TokenStatus,
    pub controls: DomainControls,
    pub usage: Usage,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationState {
    Held,
    Committed,
    Released,
}

#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct ReservationRecord {
    pub id: ReservationId,
    pub token: TokenNumber,
    pub amount: u64,
    pub currency: Currency,
    pub channel: ChannelId,
    pub merchant: MerchantId,
    pub state: ReservationState,
    pub created_at: Timestamp,
    pub settled_at: Option<Timestamp>,
}

/// One chunk of a channel's statement file, sealed.
#[derive(Serialize, Deserialize)]
pub(crate) struct StatementChunkRecord {
    /// The file's id: channel, date and SHA-256, `/`-separated.
    pub file: String,
    pub n: u32,
    /// How many chunks the file has.
    pub of: u32,
    pub text: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct AgreementRecord {
    pub agreement_ref: AgreementRef,
    pub channel: ChannelId,
    pub card_ref: CardRef,
    /// The bank's agreement number, sealed.
    pub agreement_no: Vec<u8>,
    pub created_at: Timestamp,
    pub cancelled_at: Option<Timestamp>,
}

#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct PasswordRecord {
    pub user: UserId,
    /// Whose birth date, ID number and phone the password must not be.
    pub identity_ref: IdentityRef,
    /// Argon2id PHC string (salt and parameters inside).
    pub phc: String,
    pub failures: u32,
    pub locked_until: Option<Timestamp>,
    pub updated_at: Timestamp,
}

/// The rewrap job (`rewrap`): where it stands, so it resumes after a restart.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct RewrapJobRecord {
    pub started_at: Timestamp,
    pub started_by: String,
    /// Index of the record kind being walked.
    pub kind: u8,
    /// Last store key done within that kind.
    pub after: Option<Vec<u8>>,
    pub scanned: u64,
    pub rewrapped: u64,
    pub total: u64,
    pub finished_at: Option<Timestamp>,
}

/// The share set holding the KEK (`crypto::shares::Manifest`) and the KEK's
/// version: written at the first unseal from shares and by KEK rotation.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct CustodyRecord {
    pub kek_version: u32,
    pub manifest: super::keys::shares::Manifest,
    pub updated_at: Timestamp,
}
