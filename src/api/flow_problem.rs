//! How orchestration errors answer: a problem document naming the field
//! and the rule, never an input value.

use super::problem::Problem;
use crate::orchestration::OrchestrationError;
use crate::vault::gateway::GatewayError;
use axum::http::StatusCode;

impl From<OrchestrationError> for Problem {
    fn from(error: OrchestrationError) -> Self {
        use StatusCode as S;
        let detail = error.to_string();
        let p = |status, kind: &str, title| Problem::new(status, kind, title, detail.clone());
        match error {
            OrchestrationError::Invalid(e) => Problem::from(crate::vault::VaultError::Invalid(e)),
            OrchestrationError::UnknownChannel(_) => {
                p(S::UNPROCESSABLE_ENTITY, "invalid-field", "Invalid field").with_field("channel", "unknown")
            }
            OrchestrationError::PasswordRequired => {
                p(S::CONFLICT, "password-required", "Payment password required")
                    .with_field("user_id", "password_not_set")
            }
            OrchestrationError::NotUsersIdentity => {
                p(S::UNPROCESSABLE_ENTITY, "invalid-field", "Invalid field")
                    .with_field("identity_ref", "not_users_identity")
            }
            OrchestrationError::CardBoundToAnotherUser => {
                p(S::CONFLICT, "card-bound-elsewhere", "Card bound to another user")
                    .with_field("card_ref", "bound_to_another_user")
            }
            OrchestrationError::VerificationRequired => {
                p(S::UNPROCESSABLE_ENTITY, "invalid-field", "Invalid field").with_field("cvn", "required")
            }
            OrchestrationError::VerificationNotForDebit => {
                p(S::UNPROCESSABLE_ENTITY, "invalid-field", "Invalid field")
                    .with_field("cvn", "not_for_debit")
            }
            OrchestrationError::NoPlatformSms => {
                p(S::SERVICE_UNAVAILABLE, "sms-unavailable", "No SMS carrier")
            }
            OrchestrationError::BindingNotFound => Problem::not_found("binding"),
            OrchestrationError::BindingClosed(status) => {
                p(S::CONFLICT, "binding-closed", "Binding closed").with_field("binding_id", status.as_str())
            }
            OrchestrationError::CodeMismatch { .. } => {
                p(S::UNPROCESSABLE_ENTITY, "code-mismatch", "Wrong code").with_field("code", "mismatch")
            }
            OrchestrationError::Failed(reason) => {
                p(S::UNPROCESSABLE_ENTITY, "binding-failed", "Binding failed")
                    .with_field("binding_id", reason)
            }
            OrchestrationError::BankRefused(code) => {
                p(S::UNPROCESSABLE_ENTITY, "bank-refused", "Refused by the bank")
                    .with_field("channel", code.as_str())
            }
            OrchestrationError::ChannelUnavailable => p(
                S::SERVICE_UNAVAILABLE,
                "channel-unavailable",
                "Bank channel unavailable",
            )
            .retry_after(5),
            OrchestrationError::TokenNotBound => {
                p(S::UNPROCESSABLE_ENTITY, "invalid-field", "Invalid field").with_field("token", "not_bound")
            }
            OrchestrationError::OrderConflict => {
                p(S::CONFLICT, "order-conflict", "Order id reused").with_field("order_id", "conflict")
            }
            OrchestrationError::PaymentNotFound => Problem::not_found("payment"),
            OrchestrationError::RefundNotFound => Problem::not_found("refund"),
            OrchestrationError::PaymentInFlight(status) => {
                p(S::CONFLICT, "payment-in-flight", "Payment in flight")
                    .with_field("payment_id", status.as_str())
            }
            OrchestrationError::NotRefundable(status) => {
                p(S::CONFLICT, "not-refundable", "Payment not refundable")
                    .with_field("payment_id", status.as_str())
            }
            OrchestrationError::RefundExceedsCaptured { .. } => {
                p(S::UNPROCESSABLE_ENTITY, "invalid-field", "Invalid field")
                    .with_field("amount", "exceeds_refundable")
            }
            OrchestrationError::RefundConflict => {
                p(S::CONFLICT, "refund-conflict", "Refund id reused").with_field("refund_id", "conflict")
            }
            OrchestrationError::CancelWindowPassed => {
                p(S::CONFLICT, "cancel-window-passed", "Cancel window passed")
                    .with_field("payment_id", "cancel_window_passed")
            }
            OrchestrationError::PaymentTakesNoCode(status) => {
                p(S::CONFLICT, "payment-takes-no-code", "No code expected")
                    .with_field("payment_id", status.as_str())
            }
            OrchestrationError::PaymentsInFlight => {
                p(S::CONFLICT, "payments-in-flight", "Payments in flight")
                    .with_field("binding_id", "payments_in_flight")
            }
            OrchestrationError::NotificationMismatch(field) => p(
                S::UNPROCESSABLE_ENTITY,
                "notification-mismatch",
                "Notification refused",
            )
            .with_field(field, "mismatch"),
            OrchestrationError::PaymentFailed(reason) => {
                p(S::UNPROCESSABLE_ENTITY, "payment-failed", "Payment failed")
                    .with_field("payment_id", reason)
            }
            OrchestrationError::Vault(e) => Problem::from(e),
            OrchestrationError::Gateway(e) => {
                tracing::error!(error = %e, "gateway failure");
                let detail = match e {
                    GatewayError::Protocol(_) => "the bank channel answered outside its protocol",
                    _ => "the bank gateway failed",
                };
                Problem::new(S::BAD_GATEWAY, "channel-error", "Bank channel error", detail)
            }
        }
    }
}
