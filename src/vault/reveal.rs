//! Break-glass detokenisation: the PAN of a stored card, for an operator
//! with a stated reason. The API grants it to almost nobody and rate-limits
//! it; the vault checks the reason and audits every attempt.

use super::audited::Audit;
use super::{Vault, VaultError};
use crate::audit::Outcome;
use crate::domain::operation::Operation;
use crate::domain::refs::CardRef;
use crate::policy::RevealGrant;
use crate::store::Store;
use std::fmt;
use zeroize::Zeroizing;

/// A revealed PAN on its way to the one caller allowed to see it. Debug
/// shows the mask; the digits are zeroized on drop.
pub struct RevealedPan {
    digits: Zeroizing<String>,
    masked: String,
}

impl RevealedPan {
    pub fn digits(&self) -> &str {
        &self.digits
    }
}

impl fmt::Debug for RevealedPan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RevealedPan({})", self.masked)
    }
}

/// 8 to 200 characters, no control characters, and no run of 12 or more
/// digits (any numeric character, fullwidth and other scripts' digits
/// included), where anything but a letter inside a run is ignored
/// (`4242.4242.4242.4242`, `4242/4242/...` are runs): the reason is audited
/// in clear, so it must not smuggle a card number into the trail. A date
/// and time together (`2026-12-05 10:30:00`) is such a run too: write the
/// time with a letter between (`2026-12-05 at 10h30`).
fn reason_is_acceptable(reason: &str) -> bool {
    let len = reason.chars().count();
    if !(8..=200).contains(&len) || reason.chars().any(char::is_control) {
        return false;
    }
    let mut run = 0;
    for c in reason.chars() {
        if c.is_numeric() {
            run += 1;
            if run >= 12 {
                return false;
            }
        } else if c.is_alphabetic() {
            run = 0;
        }
    }
    true
}

impl<S: Store> Vault<S> {
    /// The PAN of `card_ref`, for the holder of a break-glass grant with an
    /// acceptable reason; every attempt is audited.
    pub async fn reveal_pan(
        &self,
        grant: &RevealGrant,
        card_ref: &CardRef,
        reason: &str,
    ) -> Result<RevealedPan, VaultError> {
        let actor = grant.actor();
        let reason = reason.trim();
        let acceptable = reason_is_acceptable(reason);
        let detail = if acceptable {
            format!("reason: {reason}")
        } else {
            "reason refused".to_owned()
        };
        let audit = Audit::new(actor, Operation::CardReveal, Some(card_ref.to_string())).with_detail(detail);
        if !acceptable {
            return self.audited(audit, Err(VaultError::RevealReason)).await;
        }
        match self.open_pan(card_ref).await {
            Ok(pan) => {
                // Audited before the digits leave the vault: no record, no reveal.
                self.record(&audit, Outcome::Success, None).await?;
                Ok(RevealedPan {
                    digits: Zeroizing::new(pan.expose_digits().to_owned()),
                    masked: pan.masked().as_str().to_owned(),
                })
            }
            Err(e) => self.audited(audit, Err(e)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::reason_is_acceptable;

    #[test]
    fn reasons_must_be_real_and_carry_no_card_number() {
        assert!(reason_is_acceptable("chargeback dispute CB-2026-1121"));
        assert!(!reason_is_acceptable("short"));
        assert!(!reason_is_acceptable("customer said 4242 4242 4242 4242"));
        assert!(!reason_is_acceptable("card 4242-4242-4242-4242 dispute"));
        assert!(!reason_is_acceptable("line\nbreak injection"));
        assert!(!reason_is_acceptable(&"x".repeat(201)));
        // Any separator but a letter keeps a run whole.
        for disguised in [
            "card 4242.4242.4242.4242 dispute",
            "card 4242/4242/4242/4242 dispute",
            "card 4242_4242_4242_4242 dispute",
            "card (4242) 4242, 4242; 4242",
            "card ４２４２４２４２４２４２４２４２ fullwidth",
            "card 4242\u{00a0}4242\u{2009}4242 4242",
        ] {
            assert!(!reason_is_acceptable(disguised), "{disguised}");
        }
        assert!(reason_is_acceptable("case 4242 of 2026, ticket 12345"));
        assert!(reason_is_acceptable("dispute 2026-12-05 at 10h30"));
    }
}
