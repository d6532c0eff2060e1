//! Why an orchestration call did not go through.

use super::binding::BindingStatus;
use super::payment::PaymentStatus;
use crate::channel::protocol::RefusalCode;
use crate::domain::validation::ValidationError;
use crate::vault::gateway::GatewayError;
use crate::vault::VaultError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OrchestrationError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("no channel `{0}` is configured")]
    UnknownChannel(String),
    #[error("set a payment password for this user before binding a card")]
    PasswordRequired,
    #[error("the identity is not the one this user's payment password was set for")]
    NotUsersIdentity,
    #[error("this card is bound to another user")]
    CardBoundToAnotherUser,
    #[error("a credit card needs its CVN and expiry for signing")]
    VerificationRequired,
    #[error("a debit card is signed without CVN and expiry; do not send them")]
    VerificationNotForDebit,
    #[error("this bank sends no SMS and no SMS carrier is configured")]
    NoPlatformSms,
    #[error("binding not found")]
    BindingNotFound,
    #[error("the binding is {} and takes no code", .0.as_str())]
    BindingClosed(BindingStatus),
    #[error("the code does not match; {remaining} attempts left")]
    CodeMismatch { remaining: u32 },
    #[error("the binding failed: {}", .0)]
    Failed(String),
    #[error("the bank refused: {}", .0.as_str())]
    BankRefused(RefusalCode),
    #[error("the bank channel is unavailable; nothing was done, try again")]
    ChannelUnavailable,
    #[error("this payment token belongs to no binding")]
    TokenNotBound,
    #[error("this order id was used before with other terms")]
    OrderConflict,
    #[error("payment not found")]
    PaymentNotFound,
    #[error("the payment is still {} at the bank; wait for its result", .0.as_str())]
    PaymentInFlight(PaymentStatus),
    #[error("a {} payment cannot be refunded", .0.as_str())]
    NotRefundable(PaymentStatus),
    #[error("refunds would exceed the captured amount; {refundable} minor units remain refundable")]
    RefundExceedsCaptured { refundable: u64 },
    #[error("this refund id was used before with another amount")]
    RefundConflict,
    #[error("refund not found")]
    RefundNotFound,
    #[error("the cancel window has passed; refund the payment instead")]
    CancelWindowPassed,
    #[error("the payment is {} and takes no code", .0.as_str())]
    PaymentTakesNoCode(PaymentStatus),
    #[error("the binding has payments in flight; unbind once they settle")]
    PaymentsInFlight,
    #[error("the notification's {0} does not match the payment")]
    NotificationMismatch(&'static str),
    #[error("the payment failed: {0}")]
    PaymentFailed(String),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Gateway(GatewayError),
}

impl From<crate::vault::crypto::CryptoError> for OrchestrationError {
    fn from(e: crate::vault::crypto::CryptoError) -> Self {
        OrchestrationError::Vault(VaultError::from(e))
    }
}

impl From<GatewayError> for OrchestrationError {
    fn from(e: GatewayError) -> Self {
        match e {
            GatewayError::Vault(v) => OrchestrationError::Vault(v),
            GatewayError::Refused(code) => OrchestrationError::BankRefused(code),
            GatewayError::Unavailable(why) | GatewayError::Unanswered(why) => {
                tracing::warn!(reason = %why, "bank channel unavailable");
                OrchestrationError::ChannelUnavailable
            }
            GatewayError::NoCarrier => OrchestrationError::NoPlatformSms,
            other => OrchestrationError::Gateway(other),
        }
    }
}

impl OrchestrationError {
    /// How the audit trail records this failure: a rule or reason code,
    /// never an input value.
    pub fn audit(&self) -> (crate::audit::Outcome, String) {
        use crate::audit::Outcome;
        let refused = |code: &str| (Outcome::Refused, code.to_owned());
        match self {
            OrchestrationError::Invalid(e) => refused(&format!("{}.{}", e.field.as_str(), e.rule.code())),
            OrchestrationError::UnknownChannel(_) => refused("channel.unknown"),
            OrchestrationError::PasswordRequired => refused("password.not_set"),
            OrchestrationError::NotUsersIdentity => refused("identity_ref.not_users_identity"),
            OrchestrationError::CardBoundToAnotherUser => refused("card.bound_to_another_user"),
            OrchestrationError::VerificationRequired => refused("cvn.required"),
            OrchestrationError::VerificationNotForDebit => refused("cvn.not_for_debit"),
            OrchestrationError::NoPlatformSms => (Outcome::Error, "sms.no_carrier".to_owned()),
            OrchestrationError::BindingNotFound => (Outcome::NotFound, "binding".to_owned()),
            OrchestrationError::BindingClosed(s) => refused(&format!("binding.{}", s.as_str())),
            OrchestrationError::CodeMismatch { remaining } => {
                refused(&format!("code.mismatch remaining={remaining}"))
            }
            OrchestrationError::Failed(reason) => refused(&format!("binding.failed {reason}")),
            OrchestrationError::BankRefused(code) => refused(&format!("bank.{}", code.as_str())),
            OrchestrationError::ChannelUnavailable => (Outcome::Error, "channel.unavailable".to_owned()),
            OrchestrationError::TokenNotBound => refused("token.not_bound"),
            OrchestrationError::OrderConflict => refused("order_id.conflict"),
            OrchestrationError::PaymentNotFound => (Outcome::NotFound, "payment".to_owned()),
            OrchestrationError::PaymentInFlight(s) => refused(&format!("payment.{}", s.as_str())),
            OrchestrationError::NotRefundable(s) => refused(&format!("payment.{}", s.as_str())),
            OrchestrationError::RefundExceedsCaptured { .. } => refused("amount.exceeds_refundable"),
            OrchestrationError::RefundConflict => refused("refund_id.conflict"),
            OrchestrationError::RefundNotFound => (Outcome::NotFound, "refund".to_owned()),
            OrchestrationError::CancelWindowPassed => refused("payment.cancel_window_passed"),
            OrchestrationError::PaymentTakesNoCode(s) => refused(&format!("payment.{}", s.as_str())),
            OrchestrationError::PaymentsInFlight => refused("binding.payments_in_flight"),
            OrchestrationError::NotificationMismatch(field) => {
                refused(&format!("notification.{field}_mismatch"))
            }
            OrchestrationError::PaymentFailed(reason) => refused(&format!("payment.failed {reason}")),
            OrchestrationError::Vault(_) | OrchestrationError::Gateway(_) => {
                (Outcome::Error, "internal".to_owned())
            }
        }
    }
}

impl super::Orchestrator {
    /// Records how a failed flow ended (a rule or reason code, never an
    /// input value) against `object`, and hands the result back.
    pub(crate) async fn audit_failure<S: crate::store::Store, T>(
        &self,
        vault: &crate::vault::Vault<S>,
        actor: &crate::audit::Actor,
        operation: crate::domain::operation::Operation,
        object: String,
        result: Result<T, OrchestrationError>,
    ) -> Result<T, OrchestrationError> {
        if let Err(e) = &result {
            let (outcome, detail) = e.audit();
            vault
                .record_outcome(actor, operation, Some(object), outcome, Some(detail))
                .await?;
        }
        result
    }
}
