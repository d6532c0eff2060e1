//! JSON shapes of the payment calls: amounts in integer minor units with
//! a currency code, times in Unix seconds, cards masked.

use crate::orchestration::payment::Refund;
use crate::orchestration::{CodeSender, PaymentView};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zeroize::Zeroizing;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DebitRequest {
    /// The payment token to debit.
    pub token: String,
    /// The merchant's order id: one payment per (merchant, order id).
    pub order_id: String,
    /// Minor units (fen), positive, at most 10^12.
    #[schema(minimum = 1, maximum = 1000000000000_u64)]
    pub amount: u64,
    /// ISO 4217, e.g. CNY.
    pub currency: String,
    /// The channel to debit on; the route's backups take over when it is down.
    pub channel: String,
    pub merchant: String,
    /// The order's absolute expiry (Unix seconds): in the future, at most a day ahead.
    pub expires_at: i64,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmPaymentRequest {
    /// The 6-digit SMS code of a debit signing at a backup channel.
    #[schema(value_type = String)]
    pub code: Zeroizing<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    /// The caller's id for this refund; a repeat is the same refund.
    pub refund_id: String,
    /// Minor units, at most 10^12; all refunds together at most the captured amount.
    #[schema(minimum = 1, maximum = 1000000000000_u64)]
    pub amount: u64,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelStateRequest {
    /// Mark the channel down (debits go to its backups) or up.
    pub down: bool,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct RefundResponse {
    pub refund_id: String,
    pub amount: u64,
    /// processing, succeeded or failed.
    pub status: String,
    pub failure: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<Refund> for RefundResponse {
    fn from(r: Refund) -> Self {
        RefundResponse {
            refund_id: r.id.as_str().to_owned(),
            amount: r.amount,
            status: r.status.as_str().to_owned(),
            failure: r.failure,
            created_at: r.created_at.seconds(),
            updated_at: r.updated_at.seconds(),
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct RouteAttemptResponse {
    pub channel: String,
    pub reason: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct PaymentResponse {
    pub payment_id: String,
    pub order_id: String,
    pub merchant: String,
    pub user_id: String,
    pub binding_id: String,
    pub token: String,
    pub masked_card: String,
    pub amount: u64,
    pub currency: String,
    /// The channel asked for.
    pub requested_channel: String,
    /// The channel the debit went through (the route used).
    pub channel: String,
    /// True when a backup channel carried the debit.
    pub backup_route: bool,
    /// Channels left on the way, and why.
    pub route_attempts: Vec<RouteAttemptResponse>,
    /// awaiting_code, processing, user_paying, succeeded, failed, closed or
    /// unsent (no channel reached; the same order id and terms try again).
    pub status: String,
    /// While awaiting a code: who sent it (bank or platform).
    pub code_sender: Option<String>,
    pub bank_txn_no: Option<String>,
    /// The reason of a failure or closing (a bank code or ours).
    pub failure: Option<String>,
    pub refunded: u64,
    pub refunds: Vec<RefundResponse>,
    pub cancelled: bool,
    pub expires_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<PaymentView> for PaymentResponse {
    fn from(p: PaymentView) -> Self {
        PaymentResponse {
            payment_id: p.id.to_string(),
            order_id: p.order_id.as_str().to_owned(),
            merchant: p.merchant.as_str().to_owned(),
            user_id: p.user.to_string(),
            binding_id: p.binding.to_string(),
            token: p.token.to_string(),
            masked_card: p.masked_card,
            amount: p.amount,
            currency: p.currency.as_str().to_owned(),
            requested_channel: p.requested_channel.as_str().to_owned(),
            channel: p.channel.as_str().to_owned(),
            backup_route: p.backup_route,
            route_attempts: p
                .attempts
                .into_iter()
                .map(|a| RouteAttemptResponse {
                    channel: a.channel.as_str().to_owned(),
                    reason: a.reason,
                })
                .collect(),
            status: p.status.as_str().to_owned(),
            code_sender: p.code_sender.map(|s| match s {
                CodeSender::Bank => "bank".to_owned(),
                CodeSender::Platform => "platform".to_owned(),
            }),
            bank_txn_no: p.bank_txn_no,
            failure: p.failure,
            refunded: p.refunded,
            refunds: p.refunds.into_iter().map(RefundResponse::from).collect(),
            cancelled: p.cancelled,
            expires_at: p.expires_at.seconds(),
            created_at: p.created_at.seconds(),
            updated_at: p.updated_at.seconds(),
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct NotificationAck {
    pub payment_id: String,
    /// False for a repeat: the result was applied before.
    pub applied: bool,
    pub status: String,
}
