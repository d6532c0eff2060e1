//! The quick-pay wire protocol between the vault's gateway and a bank
//! channel, in the style of bank quick-pay interfaces: apply for signing
//! (the bank checks the four elements and sends an SMS), confirm the signing
//! with the code, cancel an agreement; plus the SMS carrier's send call.
//!
//! Sensitive fields are `Zeroizing<String>` and the messages that hold them
//! print redacted under `Debug`.

use serde::{Deserialize, Serialize};
use std::fmt;
use zeroize::Zeroizing;

pub const APPLY_PATH: &str = "/quickpay/v1/sign/apply";
pub const CONFIRM_PATH: &str = "/quickpay/v1/sign/confirm";
pub const CANCEL_PATH: &str = "/quickpay/v1/sign/cancel";
pub const SMS_PATH: &str = "/carrier/v1/sms";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardKind {
    Debit,
    Credit,
}

/// Step 1 of signing: the four elements (卡号, 姓名, 身份证号, 预留手机号).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyRequest {
    pub merchant_id: String,
    /// The platform's own user reference: a bank keeps one agreement per
    /// (merchant, user, card).
    pub user_ref: String,
    /// Unique per attempt; the bank answers a repeat with the first answer.
    pub request_no: String,
    pub card_no: Zeroizing<String>,
    pub name: Zeroizing<String>,
    pub id_no: Zeroizing<String>,
    pub phone: Zeroizing<String>,
}

impl fmt::Debug for ApplyRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApplyRequest")
            .field("request_no", &self.request_no)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplyResult {
    /// The bank sent its SMS code to the reserved phone.
    SmsSent,
    /// Elements verified, but this bank sends no SMS: the platform must.
    SmsNotSent,
    /// The channel signed at once after checking card and name only
    /// (UnionPay style): a pre-binding awaiting the platform's own SMS check.
    Signed,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyResponse {
    pub result: ApplyResult,
    pub apply_no: String,
    pub card_kind: CardKind,
    /// Present when `result` is `signed`.
    pub agreement_no: Option<String>,
}

/// Step 2: the SMS code (when the bank sent one) and, for credit cards, the
/// card verification data the bank checks at signing.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    pub merchant_id: String,
    pub apply_no: String,
    pub sms_code: Option<Zeroizing<String>>,
    pub cvn: Option<Zeroizing<String>>,
    /// MMYY
    pub expiry: Option<Zeroizing<String>>,
}

impl fmt::Debug for ConfirmRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfirmRequest")
            .field("apply_no", &self.apply_no)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmResponse {
    pub agreement_no: Zeroizing<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    pub merchant_id: String,
    pub agreement_no: Zeroizing<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelResponse {
    pub cancelled: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsRequest {
    pub phone: Zeroizing<String>,
    pub text: Zeroizing<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsResponse {
    pub message_id: String,
}

/// Why a channel refused. Stable codes the gateway maps to outcomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalCode {
    /// The bank does not know the card.
    CardUnknown,
    /// Name, ID number or phone do not belong to the card.
    ElementsMismatch,
    /// This user already has an agreement for this card at this bank.
    AlreadySigned,
    SmsCodeMismatch,
    /// Too many wrong codes: the application is dead.
    SmsCodeLocked,
    /// CVN or expiry wrong, or missing for a credit card.
    CardVerificationFailed,
    ApplyExpired,
    ApplyUnknown,
    AgreementUnknown,
    /// The bank is down or shedding load: try again later.
    Unavailable,
    /// An internal error at the bank: try again later.
    SystemError,
    BadRequest,
    Forbidden,
}

impl RefusalCode {
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalCode::CardUnknown => "card_unknown",
            RefusalCode::ElementsMismatch => "elements_mismatch",
            RefusalCode::AlreadySigned => "already_signed",
            RefusalCode::SmsCodeMismatch => "sms_code_mismatch",
            RefusalCode::SmsCodeLocked => "sms_code_locked",
            RefusalCode::CardVerificationFailed => "card_verification_failed",
            RefusalCode::ApplyExpired => "apply_expired",
            RefusalCode::ApplyUnknown => "apply_unknown",
            RefusalCode::AgreementUnknown => "agreement_unknown",
            RefusalCode::Unavailable => "unavailable",
            RefusalCode::SystemError => "system_error",
            RefusalCode::BadRequest => "bad_request",
            RefusalCode::Forbidden => "forbidden",
        }
    }

    /// Whether the same call may succeed later.
    pub fn retryable(self) -> bool {
        matches!(self, RefusalCode::Unavailable | RefusalCode::SystemError)
    }
}

/// Every non-2xx answer from a channel.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refusal {
    pub code: RefusalCode,
    pub message: String,
}
