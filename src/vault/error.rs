//! Why a vault call did not go through, and each reason's one code.

use super::crypto::CryptoError;
use super::records::ReservationState;
use super::token::{ControlRefusal, LifecycleError};
use crate::domain::error_code::{Class, ErrorCode};
use crate::domain::validation::ValidationError;
use crate::store::{CommitError, StoreError};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("{what} not found")]
    NotFound { what: &'static str },
    #[error("refused by the token's {control} control: {0}", control = .0.control())]
    Refused(#[from] ControlRefusal),
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    #[error("the reservation is already {state:?}", state = .0)]
    ReservationSettled(ReservationState),
    #[error("a reveal needs a reason of 8 to 200 characters that contains no card number")]
    RevealReason,
    #[error("this identity has used its reveals for the hour")]
    RevealLimit { retry_after_s: u64 },
    #[error(transparent)]
    RevealApproval(#[from] super::RevealApprovalError),
    #[error("the card number lies in the payment-token BIN range")]
    PanInTokenRange,
    #[error("a bulk store takes 1 to {max} cards")]
    BulkSize { max: usize },
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored {what} is corrupt")]
    Corrupt { what: &'static str },
    #[error("data key version {version} is the current one; rotate first")]
    KeyVersionCurrent { version: u32 },
    #[error("data key version {version} still seals {records} records; rewrap first")]
    KeyVersionInUse { version: u32, records: u64 },
    #[error("too many concurrent writers on one record; try again")]
    Contention,
    /// Another node rotated the data key between this write's seal and its
    /// commit; the operation seals again (`keys::fence`).
    #[error("the data-key version this write sealed under was superseded; try again")]
    KeySuperseded,
    #[error("could not draw an unused token number")]
    TokenSpaceExhausted,
    /// A precondition a caller joined to the write (its idempotency record
    /// absent, a binding as read) no longer holds: retrying the operation
    /// cannot mend it; the caller reads again.
    #[error("a record this request depends on changed meanwhile")]
    JoinedStale,
    #[error("the payment password does not match; {remaining} attempts left before lock-out")]
    PasswordMismatch { remaining: u32 },
    #[error("too many wrong payment passwords; locked until Unix time {}", .until.seconds())]
    PasswordLocked { until: crate::domain::time::Timestamp },
    #[error("this user has no payment password")]
    PasswordNotSet,
    #[error("this user already has a payment password; change it instead")]
    PasswordAlreadySet,
    #[error("{tokens} of this card's tokens hold a payment in flight; erase it once they are settled")]
    CardInUse { tokens: usize },
}

impl From<crate::domain::random::RandomUnavailable> for VaultError {
    fn from(e: crate::domain::random::RandomUnavailable) -> Self {
        VaultError::Crypto(CryptoError::Random(e))
    }
}

impl From<CommitError> for VaultError {
    fn from(e: CommitError) -> Self {
        match e {
            CommitError::Conflict => VaultError::Contention,
            CommitError::Store(s) => VaultError::Store(s),
            // CommitError is non_exhaustive only towards other crates.
        }
    }
}

impl From<crate::audit::read::ReadError> for VaultError {
    fn from(e: crate::audit::read::ReadError) -> Self {
        use crate::audit::read::ReadError;
        match e {
            ReadError::Store(s) => VaultError::Store(s),
            ReadError::Corrupt(what) => VaultError::Corrupt { what },
            tail @ (ReadError::TailMissing(_) | ReadError::TailAltered(_)) => {
                VaultError::Store(crate::store::StoreError::Backend(tail.to_string()))
            } // ReadError is non_exhaustive only towards other crates.
        }
    }
}

impl VaultError {
    /// This failure's one code: the audit record and the problem document
    /// both read it.
    pub fn code(&self) -> ErrorCode {
        match self {
            VaultError::Invalid(e) => e.code(),
            VaultError::NotFound { what } => ErrorCode::not_found(what),
            VaultError::Refused(refusal) => {
                ErrorCode::new(Class::Invalid, "control-refused", "Refused by a domain control")
                    .at_control(refusal.control())
            }
            VaultError::Lifecycle(e) => ErrorCode::new(
                Class::Conflict,
                "lifecycle",
                "Transition not allowed",
            )
            .at_rule(format!("lifecycle.{}_to_{}", e.from.as_str(), e.to.as_str())),
            VaultError::ReservationSettled(_) => ErrorCode::new(
                Class::Conflict,
                "reservation-settled",
                "Reservation already settled",
            )
            .at_rule("reservation.settled"),
            VaultError::PanInTokenRange => ErrorCode::invalid("pan", "in_token_range"),
            VaultError::BulkSize { .. } => ErrorCode::invalid("pans", "count"),
            VaultError::RevealReason => ErrorCode::invalid("reason", "reason"),
            VaultError::RevealLimit { retry_after_s } => {
                ErrorCode::new(Class::RateLimited, "rate-limited", "Too many reveals")
                    .at_rule("reveal.rate_limit")
                    .retry_after(*retry_after_s)
                    .public_detail("this identity has used its reveals for the hour")
            }
            VaultError::RevealApproval(e) => {
                let class = match e {
                    super::RevealApprovalError::Required | super::RevealApprovalError::OtherCard => {
                        Class::Invalid
                    }
                    _ => Class::Conflict,
                };
                ErrorCode::new(class, "reveal-approval", "Reveal not approved")
                    .at_field("request_id", e.rule())
            }
            VaultError::PasswordMismatch { remaining } => ErrorCode::new(
                Class::Invalid,
                "password-mismatch",
                "Payment password does not match",
            )
            .at_field("password", "mismatch")
            .context(format!("remaining={remaining}")),
            VaultError::PasswordLocked { until } => {
                let wait = u64::try_from(until.seconds() - crate::domain::time::Timestamp::now().seconds())
                    .unwrap_or(1);
                ErrorCode::new(Class::Locked, "password-locked", "Payment password locked")
                    .at_field("password", "locked")
                    .retry_after(wait.max(1))
            }
            VaultError::PasswordNotSet => {
                ErrorCode::new(Class::Conflict, "password-not-set", "No payment password")
                    .at_field("password", "not_set")
            }
            VaultError::PasswordAlreadySet => ErrorCode::new(
                Class::Conflict,
                "password-already-set",
                "Payment password already set",
            )
            .at_field("password", "already_set"),
            VaultError::CardInUse { .. } => {
                ErrorCode::new(Class::Conflict, "card-in-use", "Card has a payment in flight")
                    .at_field("card_ref", "in_flight")
            }
            VaultError::KeyVersionCurrent { .. } => {
                ErrorCode::new(Class::Conflict, "key-version-current", "Key version is current")
                    .at_field("version", "current")
            }
            VaultError::KeyVersionInUse { .. } => {
                ErrorCode::new(Class::Conflict, "key-version-in-use", "Key version still in use")
                    .at_field("version", "in_use")
            }
            VaultError::JoinedStale => ErrorCode::new(Class::Conflict, "superseded", "Superseded")
                .public_detail("a record this request depends on changed meanwhile; read it again"),
            VaultError::Contention | VaultError::KeySuperseded => {
                ErrorCode::new(Class::Unavailable, "contention", "Busy")
                    .retry_after(1)
                    .public_detail("too many concurrent changes to one record; retry")
            }
            // A fault of the store is the store's to recover from: 503,
            // never a guess that the write did or did not land.
            VaultError::Store(_) => {
                ErrorCode::new(Class::Unavailable, "storage-unavailable", "Storage unavailable")
                    .retry_after(5)
                    .public_detail(
                        "the store could not complete this request; nothing was acknowledged; retry",
                    )
            }
            VaultError::Crypto(_) | VaultError::Corrupt { .. } | VaultError::TokenSpaceExhausted => {
                ErrorCode::internal()
            }
        }
    }
}
