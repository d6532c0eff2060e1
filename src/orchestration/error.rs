//! Why an orchestration call did not go through.

use super::binding::BindingStatus;
use super::payment::{IllegalTransition, PaymentStatus};
use crate::channel::protocol::RefusalCode;
use crate::domain::error_code::{Class, ErrorCode};
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
    /// A credit card's CVN and expiry are held only in the memory of the
    /// node that started the binding (invariant 2 keeps them out of the
    /// store); this node has none, and the binding is young enough that
    /// that node may still hold them, or it restarted.
    #[error("this node does not hold the card's CVN and expiry: send the confirm again with cvn and expiry")]
    VerificationNotHere,
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
    /// A bank word or a caller tried to move a payment where it cannot go.
    #[error(transparent)]
    IllegalTransition(#[from] IllegalTransition),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Gateway(GatewayError),
    #[error("the channel's statement is refused: {0}")]
    StatementRefused(#[from] crate::channel::statement::StatementError),
    #[error("reconciliation run not found")]
    RunNotFound,
    #[error("discrepancy not found")]
    DiscrepancyNotFound,
    #[error("this discrepancy was resolved already")]
    AlreadyResolved,
    #[error("the channel answered the refund as failed")]
    RefundFailedAtChannel,
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
    /// This failure's one code: the audit record and the problem document
    /// both read it, so neither can spell it differently.
    pub fn code(&self) -> ErrorCode {
        use Class::{Conflict, Invalid, Unavailable};
        use OrchestrationError as E;
        match self {
            E::Invalid(e) => e.code(),
            E::UnknownChannel(_) => ErrorCode::invalid("channel", "unknown"),
            E::PasswordRequired => ErrorCode::new(Conflict, "password-required", "Payment password required")
                .at_field("user_id", "password_not_set"),
            E::NotUsersIdentity => ErrorCode::invalid("identity_ref", "not_users_identity"),
            E::CardBoundToAnotherUser => {
                ErrorCode::new(Conflict, "card-bound-elsewhere", "Card bound to another user")
                    .at_field("card_ref", "bound_to_another_user")
            }
            E::VerificationRequired => ErrorCode::invalid("cvn", "required"),
            E::VerificationNotForDebit => ErrorCode::invalid("cvn", "not_for_debit"),
            E::NoPlatformSms => ErrorCode::new(Unavailable, "sms-unavailable", "No SMS carrier"),
            E::BindingNotFound => ErrorCode::not_found("binding"),
            E::VerificationNotHere => {
                ErrorCode::new(Conflict, "verification-not-here", "Card verification data not held here")
                    .at_field("cvn", "resend")
                    .public_detail(
                        "the card's CVN and expiry are held only in the memory of the node that started this binding; send the confirm again with cvn and expiry",
                    )
            }
            E::BindingClosed(status) => ErrorCode::new(Conflict, "binding-closed", "Binding closed")
                .at_field("binding_id", status.as_str()),
            E::CodeMismatch { remaining } => ErrorCode::new(Invalid, "code-mismatch", "Wrong code")
                .at_field("code", "mismatch")
                .context(format!("remaining={remaining}")),
            E::Failed(reason) => ErrorCode::new(Invalid, "binding-failed", "Binding failed")
                .at_field("binding_id", reason.clone()),
            E::BankRefused(code) => ErrorCode::new(Invalid, "bank-refused", "Refused by the bank")
                .at_field("channel", code.as_str()),
            E::ChannelUnavailable => {
                ErrorCode::new(Unavailable, "channel-unavailable", "Bank channel unavailable").retry_after(5)
            }
            E::TokenNotBound => ErrorCode::invalid("token", "not_bound"),
            E::OrderConflict => {
                ErrorCode::new(Conflict, "order-conflict", "Order id reused").at_field("order_id", "conflict")
            }
            E::PaymentNotFound => ErrorCode::not_found("payment"),
            E::RefundNotFound => ErrorCode::not_found("refund"),
            E::PaymentInFlight(status) => ErrorCode::new(Conflict, "payment-in-flight", "Payment in flight")
                .at_field("payment_id", status.as_str()),
            E::NotRefundable(status) => ErrorCode::new(Conflict, "not-refundable", "Payment not refundable")
                .at_field("payment_id", status.as_str()),
            E::RefundExceedsCaptured { .. } => ErrorCode::invalid("amount", "exceeds_refundable"),
            E::RefundConflict => ErrorCode::new(Conflict, "refund-conflict", "Refund id reused")
                .at_field("refund_id", "conflict"),
            E::CancelWindowPassed => ErrorCode::new(Conflict, "cancel-window-passed", "Cancel window passed")
                .at_field("payment_id", "cancel_window_passed"),
            E::PaymentTakesNoCode(status) => {
                ErrorCode::new(Conflict, "payment-takes-no-code", "No code expected")
                    .at_field("payment_id", status.as_str())
            }
            E::PaymentsInFlight => ErrorCode::new(Conflict, "payments-in-flight", "Payments in flight")
                .at_field("binding_id", "payments_in_flight"),
            E::NotificationMismatch(field) => {
                ErrorCode::new(Invalid, "notification-mismatch", "Notification refused")
                    .at_field(*field, "mismatch")
            }
            E::PaymentFailed(reason) => ErrorCode::new(Invalid, "payment-failed", "Payment failed")
                .at_field("payment_id", reason.clone()),
            E::IllegalTransition(t) => ErrorCode::new(Conflict, "payment-settled", "Payment settled")
                .at_field("payment_id", format!("{}_to_{}", t.from.as_str(), t.to.as_str())),
            E::Vault(e) => e.code(),
            E::Gateway(e) => e.code(),
            E::StatementRefused(e) => {
                use crate::channel::statement::StatementError as S;
                let rule = match e {
                    S::Digest => "digest_mismatch",
                    S::Truncated => "truncated",
                    S::Summary { .. } => "summary_mismatch",
                    S::Line { .. } => "line",
                    S::Parts { .. } => "parts",
                };
                ErrorCode::new(Invalid, "statement-refused", "Statement refused")
                    .at_field("statement", rule)
                    .context(e.to_string())
            }
            E::RunNotFound => ErrorCode::not_found("reconciliation run"),
            E::DiscrepancyNotFound => ErrorCode::not_found("discrepancy"),
            E::AlreadyResolved => ErrorCode::new(Conflict, "already-resolved", "Already resolved")
                .at_field("discrepancy_id", "already_resolved"),
            E::RefundFailedAtChannel => ErrorCode::new(Conflict, "refund-failed", "Refund failed at the channel")
                .at_field("refund", "failed_at_channel"),
        }
    }

    /// How the audit trail records this failure: its code, never an input
    /// value.
    pub fn audit(&self) -> (crate::audit::Outcome, String) {
        crate::audit::Outcome::failure(&self.code())
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
        object: crate::vault::AuditObject,
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
