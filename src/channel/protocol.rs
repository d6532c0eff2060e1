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
pub const PAY_PATH: &str = "/quickpay/v1/pay";
pub const QUERY_PATH: &str = "/quickpay/v1/pay/query";
pub const CLOSE_PATH: &str = "/quickpay/v1/pay/close";
pub const REFUND_PATH: &str = "/quickpay/v1/refund";
/// Where a bank posts payment results: `{notify base}{NOTIFY_PATH}/{channel}`.
pub const NOTIFY_PATH: &str = "/v1/channel-notifications";

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
    /// The card's balance (or credit line) does not cover the amount.
    InsufficientFunds,
    /// Above the bank's per-transaction limit for quick pay.
    OverTransactionLimit,
    /// Above the bank's daily limit for this card.
    OverDailyLimit,
    OrderUnknown,
    /// The order number was used before with other terms.
    OrderConflict,
    /// Refunds would exceed what the order captured.
    RefundExceedsPaid,
    /// Only a paid order can be refunded.
    OrderNotPaid,
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
            RefusalCode::InsufficientFunds => "insufficient_funds",
            RefusalCode::OverTransactionLimit => "over_transaction_limit",
            RefusalCode::OverDailyLimit => "over_daily_limit",
            RefusalCode::OrderUnknown => "order_unknown",
            RefusalCode::OrderConflict => "order_conflict",
            RefusalCode::RefundExceedsPaid => "refund_exceeds_paid",
            RefusalCode::OrderNotPaid => "order_not_paid",
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

/// A debit under an agreement. `order_no` is the platform's payment id:
/// unique, and the key of every later query, close, refund and notification.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayRequest {
    pub merchant_id: String,
    pub order_no: String,
    pub agreement_no: Zeroizing<String>,
    /// Minor units (fen).
    pub amount: u64,
    pub currency: String,
    /// Where to post the result of a payment that does not settle at once.
    pub notify_url: Option<String>,
}

impl fmt::Debug for PayRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PayRequest")
            .field("order_no", &self.order_no)
            .field("amount", &self.amount)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayStatus {
    Succeeded,
    /// Accepted; the result comes by notification (or query).
    Processing,
    /// Payment-code style: waiting for the user to confirm on their side.
    UserPaying,
    Failed,
    /// Closed unpaid (by the merchant, or expired at the bank).
    Closed,
}

impl PayStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PayStatus::Succeeded => "succeeded",
            PayStatus::Processing => "processing",
            PayStatus::UserPaying => "user_paying",
            PayStatus::Failed => "failed",
            PayStatus::Closed => "closed",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, PayStatus::Succeeded | PayStatus::Failed | PayStatus::Closed)
    }
}

/// The bank's view of an order: the answer to pay, query and close.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderState {
    pub order_no: String,
    pub bank_txn_no: String,
    pub status: PayStatus,
    pub amount: u64,
    pub currency: String,
    /// Why a failed order failed.
    pub failure: Option<RefusalCode>,
}

/// Query or close an order.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderRequest {
    pub merchant_id: String,
    pub order_no: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    pub merchant_id: String,
    pub order_no: String,
    /// Unique per refund; a repeat is answered as the first time.
    pub refund_no: String,
    pub amount: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundResponse {
    pub refund_no: String,
    pub amount: u64,
    /// All refunds of the order so far, this one included.
    pub refunded_total: u64,
}

/// A payment result the bank posts to the platform, possibly more than
/// once. The platform checks it against its own order before applying it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notification {
    pub merchant_id: String,
    pub order_no: String,
    pub bank_txn_no: String,
    pub status: PayStatus,
    pub amount: u64,
    pub currency: String,
    pub failure: Option<RefusalCode>,
}
