//! Why an orchestration call did not go through.

use super::binding::BindingStatus;
use crate::channel::protocol::RefusalCode;
use crate::vault::gateway::GatewayError;
use crate::vault::validation::ValidationError;
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
    #[error("the bank channel is unavailable; nothing was bound, try again")]
    ChannelUnavailable,
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Gateway(GatewayError),
}

impl From<GatewayError> for OrchestrationError {
    fn from(e: GatewayError) -> Self {
        match e {
            GatewayError::Vault(v) => OrchestrationError::Vault(v),
            GatewayError::Refused(code) => OrchestrationError::BankRefused(code),
            GatewayError::Unavailable(why) => {
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
            OrchestrationError::Vault(_) | OrchestrationError::Gateway(_) => {
                (Outcome::Error, "internal".to_owned())
            }
        }
    }
}
