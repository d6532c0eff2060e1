//! Card binding (绑卡签约) over references: start (the bank checks the four
//! elements and sends an SMS, or the platform sends its own code), confirm
//! with the code, and queries. A signed binding holds a sealed agreement
//! and a payment token with the policy's default controls.

mod confirm;
mod query;
mod start;
mod store;
mod unbind;

pub(crate) use start::platform_code;
pub use start::StartBinding;

use crate::channel::protocol::CardKind;
use crate::domain::ids::ChannelId;
use crate::domain::refs::{AgreementRef, CardRef, IdentityRef, UserId};
use crate::domain::time::Timestamp;
use crate::domain::validation::{Field, Rule, ValidationError};
use crate::vault::token::TokenNumber;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

crate::orchestration::ids::random_id!(
    /// A binding: `bnd_` and 32 lower-case hex digits.
    BindingId, "bnd_", "binding"
);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BindingStatus {
    /// Waiting for the SMS code (the bank's or the platform's).
    AwaitingCode,
    /// The channel signed already (card and name only); waiting for the
    /// platform's own SMS check before the binding counts.
    PreBound,
    Signed,
    Failed,
    /// An unbind has begun: no debit may start (a debit's first write
    /// requires the binding as it read it, signed), and a repeated unbind
    /// finishes it.
    Unbinding,
    /// Unbound (解约) by the user: kept for the record, its tokens deleted.
    Unbound,
}

impl BindingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BindingStatus::AwaitingCode => "awaiting_code",
            BindingStatus::PreBound => "pre_bound",
            BindingStatus::Signed => "signed",
            BindingStatus::Failed => "failed",
            BindingStatus::Unbinding => "unbinding",
            BindingStatus::Unbound => "unbound",
        }
    }
}

/// Who sent the SMS code the user types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeSender {
    Bank,
    Platform,
}

/// The six-digit code a user typed.
pub struct ConfirmCode(Zeroizing<String>);

impl ConfirmCode {
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        if text.len() == 6 && text.bytes().all(|b| b.is_ascii_digit()) {
            Ok(ConfirmCode(Zeroizing::new(text.to_owned())))
        } else {
            Err(ValidationError::new(
                Field::Code,
                Rule::Format,
                "the code is 6 digits",
            ))
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// A binding as stored: references, masked values and statuses only.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct BindingRecord {
    pub id: BindingId,
    pub user: UserId,
    pub card_ref: CardRef,
    pub identity_ref: IdentityRef,
    pub channel: ChannelId,
    pub masked_card: String,
    pub card_kind: CardKind,
    pub status: BindingStatus,
    pub code_sender: CodeSender,
    /// The bank's application number for this signing.
    pub apply_no: String,
    /// Keyed digest of the platform's own code, when it sent one.
    pub platform_code: Option<[u8; 32]>,
    pub attempts: u32,
    pub code_expires_at: Timestamp,
    /// CVN and expiry wait in the gateway's memory for the signing call.
    pub holds_verification: bool,
    pub agreement_ref: Option<AgreementRef>,
    pub token: Option<TokenNumber>,
    /// The reason code of a failure (a bank refusal or ours).
    pub failure: Option<String>,
    /// Agreements signed at backup channels by a debit (sign-and-pay).
    pub backup_agreements: Vec<(ChannelId, AgreementRef)>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl BindingRecord {
    /// The agreement to debit under at `channel`, if signed there.
    pub(crate) fn agreement_at(&self, channel: &ChannelId) -> Option<&AgreementRef> {
        if channel == &self.channel {
            return self.agreement_ref.as_ref();
        }
        self.backup_agreements
            .iter()
            .find(|(c, _)| c == channel)
            .map(|(_, a)| a)
    }
}

/// What callers see of a binding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindingView {
    pub id: BindingId,
    pub user: UserId,
    pub card_ref: CardRef,
    pub masked_card: String,
    pub channel: ChannelId,
    pub status: BindingStatus,
    pub code_sender: CodeSender,
    pub token: Option<TokenNumber>,
    pub failure: Option<String>,
    pub code_expires_at: Timestamp,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// An existing binding returned for a repeated start.
    pub duplicate: bool,
}

impl BindingRecord {
    fn view(&self, duplicate: bool) -> BindingView {
        BindingView {
            id: self.id.clone(),
            user: self.user.clone(),
            card_ref: self.card_ref.clone(),
            masked_card: self.masked_card.clone(),
            channel: self.channel.clone(),
            status: self.status,
            code_sender: self.code_sender,
            token: self.token.clone(),
            failure: self.failure.clone(),
            code_expires_at: self.code_expires_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
            duplicate,
        }
    }
}
