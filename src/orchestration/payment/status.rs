//! A payment's status and the moves between them. Every change of a
//! stored payment's status goes through `PaymentStatus::transition`, so a
//! bank word that would reopen a settled payment is an error, not a write.

use crate::channel::protocol::PayStatus;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Signing at a backup channel first: waiting for the user's SMS code.
    AwaitingCode,
    Processing,
    UserPaying,
    Succeeded,
    Failed,
    /// Closed unpaid: cancelled, timed out, or expired.
    Closed,
    /// No channel of the route was reached: nothing happened at any bank
    /// and the reservation is back. The same order id with the same terms
    /// tries again; a cancel closes it.
    Unsent,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 7] = [
        PaymentStatus::AwaitingCode,
        PaymentStatus::Processing,
        PaymentStatus::UserPaying,
        PaymentStatus::Succeeded,
        PaymentStatus::Failed,
        PaymentStatus::Closed,
        PaymentStatus::Unsent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::AwaitingCode => "awaiting_code",
            PaymentStatus::Processing => "processing",
            PaymentStatus::UserPaying => "user_paying",
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Closed => "closed",
            PaymentStatus::Unsent => "unsent",
        }
    }

    /// Not settled yet: the reservation is held and the binding is busy.
    pub fn in_flight(self) -> bool {
        matches!(
            self,
            PaymentStatus::AwaitingCode | PaymentStatus::Processing | PaymentStatus::UserPaying
        )
    }

    /// The status after `to`, or an error for a move no bank answer or
    /// caller may make. Succeeded, failed and closed are final; an unsent
    /// payment only starts again or closes; a status may repeat while in flight (the
    /// bank says "processing" twice, or the debit moves to a backup).
    pub fn transition(self, to: PaymentStatus) -> Result<PaymentStatus, IllegalTransition> {
        use PaymentStatus::*;
        let allowed = match self {
            AwaitingCode => matches!(to, Processing | Failed | Closed | Unsent),
            Processing => matches!(
                to,
                Processing | AwaitingCode | UserPaying | Succeeded | Failed | Closed | Unsent
            ),
            UserPaying => matches!(to, UserPaying | Processing | Succeeded | Failed | Closed),
            Unsent => matches!(to, Processing | Closed),
            Succeeded | Failed | Closed => false,
        };
        if allowed {
            Ok(to)
        } else {
            Err(IllegalTransition { from: self, to })
        }
    }
}

impl PaymentStatus {
    /// The one move out of a final status: reconciliation accepting as
    /// paid an order the bank's statement shows it took the money for
    /// though the vault closed it (or saw it fail). Only `Succeeded`
    /// comes of it; an unsent or in-flight payment is not the statement's
    /// to settle.
    pub fn accept_as_paid(self) -> Result<PaymentStatus, IllegalTransition> {
        let to = PaymentStatus::Succeeded;
        match self {
            PaymentStatus::Closed | PaymentStatus::Failed | PaymentStatus::Succeeded => Ok(to),
            from => Err(IllegalTransition { from, to }),
        }
    }
}

impl From<PayStatus> for PaymentStatus {
    fn from(s: PayStatus) -> Self {
        match s {
            PayStatus::Succeeded => PaymentStatus::Succeeded,
            PayStatus::Processing => PaymentStatus::Processing,
            PayStatus::UserPaying => PaymentStatus::UserPaying,
            PayStatus::Failed => PaymentStatus::Failed,
            PayStatus::Closed => PaymentStatus::Closed,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a {from} payment cannot become {to}", from = .from.as_str(), to = .to.as_str())]
pub struct IllegalTransition {
    pub from: PaymentStatus,
    pub to: PaymentStatus,
}

#[cfg(test)]
mod tests {
    use super::PaymentStatus::{self, *};

    /// The whole table, written out: a change to `transition` that is not
    /// also made here fails.
    const ALLOWED: &[(PaymentStatus, PaymentStatus)] = &[
        (AwaitingCode, Processing),
        (AwaitingCode, Failed),
        (AwaitingCode, Closed),
        (AwaitingCode, Unsent),
        (Processing, Processing),
        (Processing, AwaitingCode),
        (Processing, UserPaying),
        (Processing, Succeeded),
        (Processing, Failed),
        (Processing, Closed),
        (Processing, Unsent),
        (UserPaying, UserPaying),
        (UserPaying, Processing),
        (UserPaying, Succeeded),
        (UserPaying, Failed),
        (UserPaying, Closed),
        (Unsent, Processing),
        (Unsent, Closed),
    ];

    #[test]
    fn exactly_the_table_s_transitions_are_allowed() {
        for from in PaymentStatus::ALL {
            for to in PaymentStatus::ALL {
                let moved = from.transition(to);
                assert_eq!(moved.is_ok(), ALLOWED.contains(&(from, to)), "{from:?} -> {to:?}");
                if let Err(e) = moved {
                    assert_eq!((e.from, e.to), (from, to));
                }
            }
        }
    }

    #[test]
    fn only_a_settled_payment_is_accepted_as_paid() {
        for from in PaymentStatus::ALL {
            let accepted = from.accept_as_paid();
            assert_eq!(
                accepted.is_ok(),
                matches!(from, Closed | Failed | Succeeded),
                "{from:?}"
            );
            assert!(accepted.map_or(true, |to| to == Succeeded));
        }
    }

    #[test]
    fn settled_payments_never_move() {
        for from in [Succeeded, Failed, Closed] {
            assert!(PaymentStatus::ALL.iter().all(|&to| from.transition(to).is_err()));
        }
    }

    #[test]
    fn an_unsent_payment_holds_nothing_and_only_starts_again_or_closes() {
        assert!(
            !Unsent.in_flight(),
            "its reservation is back; an unbind may proceed"
        );
        let next: Vec<_> = PaymentStatus::ALL
            .into_iter()
            .filter(|&to| Unsent.transition(to).is_ok())
            .collect();
        assert_eq!(next, [Processing, Closed]);
    }

    #[test]
    fn the_error_names_both_statuses() {
        let e = Succeeded.transition(Processing).unwrap_err();
        assert_eq!(e.to_string(), "a succeeded payment cannot become processing");
    }
}
