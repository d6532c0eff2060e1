//! Debits on payment tokens, and what follows them: bank results (answers,
//! notifications, queries), refunds, cancels, and the settler that closes
//! "user paying" debits after their time-out. Records hold references,
//! masked values and statuses only.

mod accept;
mod backup;
mod cancel;
mod debit;
mod notify;
mod query;
mod refund;
mod retention;
mod settle;
pub mod settler;
mod status;
mod store;
mod write;

pub use debit::Debit;
pub use notify::Notified;
pub use status::{IllegalTransition, PaymentStatus};

use super::binding::{BindingId, CodeSender};
use crate::domain::ids::identifier;
use crate::domain::ids::{ChannelId, Currency, MerchantId};
use crate::domain::refs::{CardRef, ReservationId, UserId};
use crate::domain::time::Timestamp;
use crate::domain::validation::{Field, Rule, ValidationError};
use crate::vault::token::TokenNumber;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A payment's `failure` when the bank took the money after the platform
/// had released its reservation: recorded as paid, for reconciliation.
pub const PAID_AFTER_RELEASE: &str = "paid_after_release";

super::ids::random_id!(
    /// A payment: `pay_` and 32 lower-case hex digits. It is also the
    /// bank's order number.
    PaymentId, "pay_", "payment"
);

identifier!(
    /// A merchant's order id: one payment per (merchant, order).
    OrderId, Field::Order, "an order id is 1 to 64 letters, digits, '.', '_' or '-'"
);
identifier!(
    /// The caller's id for one refund: a repeat is the same refund.
    RefundId, Field::Refund, "a refund id is 1 to 64 letters, digits, '.', '_' or '-'"
);

/// A merchant's order as an audit record names it: `order=<order>` or
/// `order=<merchant>/<order>`. Both parts are free-form, so the vault
/// digests a name that holds what looks like a card number.
pub struct OrderSubject<'a> {
    merchant: Option<&'a MerchantId>,
    order: &'a OrderId,
}

impl<'a> OrderSubject<'a> {
    pub fn new(merchant: Option<&'a MerchantId>, order: &'a OrderId) -> Self {
        OrderSubject { merchant, order }
    }
}

impl crate::domain::subject::AuditSubject for OrderSubject<'_> {
    fn audit_name(&self) -> String {
        match self.merchant {
            Some(merchant) => format!("order={}/{}", merchant.as_str(), self.order.as_str()),
            None => format!("order={}", self.order.as_str()),
        }
    }
    fn free_form(&self) -> bool {
        true
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    /// Sent; the bank's answer did not arrive. Repeating the refund asks again.
    Processing,
    Succeeded,
    Failed,
}

impl RefundStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RefundStatus::Processing => "processing",
            RefundStatus::Succeeded => "succeeded",
            RefundStatus::Failed => "failed",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    pub id: RefundId,
    pub amount: u64,
    pub status: RefundStatus,
    pub failure: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A channel the debit left, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteAttempt {
    pub channel: ChannelId,
    pub reason: String,
}

/// Signing at a backup channel as part of a debit (one SMS code for both).
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct BackupSigning {
    pub apply_no: String,
    pub code_sender: CodeSender,
    /// Keyed digest of the platform's own code, when it sent one.
    pub platform_code: Option<[u8; 32]>,
    pub attempts: u32,
    pub code_expires_at: Timestamp,
}

/// A payment as stored.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct PaymentRecord {
    pub id: PaymentId,
    pub order_id: OrderId,
    pub merchant: MerchantId,
    pub user: UserId,
    pub binding: BindingId,
    pub token: TokenNumber,
    pub card_ref: CardRef,
    pub masked_card: String,
    pub amount: u64,
    pub currency: Currency,
    /// The channel the caller asked for.
    pub requested_channel: ChannelId,
    /// The channel the debit went to (the route used).
    pub channel: ChannelId,
    pub attempts: Vec<RouteAttempt>,
    pub reservation: ReservationId,
    pub status: PaymentStatus,
    pub bank_txn_no: Option<String>,
    pub failure: Option<String>,
    pub backup_signing: Option<BackupSigning>,
    pub refunds: Vec<Refund>,
    /// A cancel (撤销) closed or fully refunded it.
    pub cancelled: bool,
    pub expires_at: Timestamp,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl PaymentRecord {
    /// Refunds that succeeded or may still (processing).
    /// Refunds that succeeded or may still (processing). Each refund is
    /// bounded and never more than the payment, so the sum cannot wrap; it
    /// saturates rather than trust that.
    pub(crate) fn refunds_claimed(&self) -> u64 {
        self.refunds
            .iter()
            .filter(|r| r.status != RefundStatus::Failed)
            .fold(0, |sum, r| sum.saturating_add(r.amount))
    }

    fn refunded(&self) -> u64 {
        self.refunds
            .iter()
            .filter(|r| r.status == RefundStatus::Succeeded)
            .fold(0, |sum, r| sum.saturating_add(r.amount))
    }

    pub(crate) fn view(&self) -> PaymentView {
        PaymentView {
            id: self.id.clone(),
            order_id: self.order_id.clone(),
            merchant: self.merchant.clone(),
            user: self.user.clone(),
            binding: self.binding.clone(),
            token: self.token.clone(),
            masked_card: self.masked_card.clone(),
            amount: self.amount,
            currency: self.currency,
            requested_channel: self.requested_channel.clone(),
            channel: self.channel.clone(),
            backup_route: self.channel != self.requested_channel,
            attempts: self.attempts.clone(),
            status: self.status,
            code_sender: self.backup_signing.as_ref().map(|b| b.code_sender),
            bank_txn_no: self.bank_txn_no.clone(),
            failure: self.failure.clone(),
            refunded: self.refunded(),
            refunds: self.refunds.clone(),
            cancelled: self.cancelled,
            expires_at: self.expires_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// What callers see of a payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentView {
    pub id: PaymentId,
    pub order_id: OrderId,
    pub merchant: MerchantId,
    pub user: UserId,
    pub binding: BindingId,
    pub token: TokenNumber,
    pub masked_card: String,
    pub amount: u64,
    pub currency: Currency,
    pub requested_channel: ChannelId,
    pub channel: ChannelId,
    pub backup_route: bool,
    pub attempts: Vec<RouteAttempt>,
    pub status: PaymentStatus,
    /// Who sent the SMS code, while a backup signing waits for it.
    pub code_sender: Option<CodeSender>,
    pub bank_txn_no: Option<String>,
    pub failure: Option<String>,
    pub refunded: u64,
    pub refunds: Vec<Refund>,
    pub cancelled: bool,
    pub expires_at: Timestamp,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// An order's absolute expiry: in the future, at most `max_ahead` away.
pub fn check_expiry(expires_at: Timestamp, now: Timestamp, max_ahead: u64) -> Result<(), ValidationError> {
    if expires_at <= now {
        return Err(ValidationError::new(
            Field::OrderExpiry,
            Rule::Expired,
            "the order has expired",
        ));
    }
    let max = i64::try_from(max_ahead).unwrap_or(i64::MAX);
    if expires_at.seconds() - now.seconds() > max {
        return Err(ValidationError::new(
            Field::OrderExpiry,
            Rule::OutOfRange,
            "an order expires at most a day ahead",
        ));
    }
    Ok(())
}

impl fmt::Debug for PaymentRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PaymentRecord")
            .field("id", &self.id)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}
