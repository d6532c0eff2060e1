//! Break-glass detokenisation: the PAN of a stored card, for an operator
//! with a stated reason. The API grants it to almost nobody; the vault
//! checks the reason, holds each identity to `reveals_per_hour` and audits
//! every attempt; under dual control (`reveal_dual_control`) it reveals only
//! on a request another identity approved. The hour's reveals are a record in the store, written in
//! the same write as the reveal's audit record, so the limit counts across
//! every node and survives restarts.

use super::audited::{now_ms, Audit};
use super::records::{decode, encode};
use super::retry::Retry;
use super::reveal_approval::{request_key, RevealApprovalError};
use super::{Vault, VaultError};
use crate::audit::Outcome;
use crate::domain::operation::Operation;
use crate::domain::refs::{CardRef, RevealRequestId};
use crate::policy::RevealGrant;
use crate::store::{keyspace, Batch, Store};
use serde::{Deserialize, Serialize};
use std::fmt;
use zeroize::Zeroizing;

/// The limit's sliding window.
const WINDOW_MS: i64 = 3_600_000;

/// One identity's reveals within the last window (milliseconds, oldest first).
#[derive(Default, Serialize, Deserialize)]
struct RevealWindow {
    at_ms: Vec<i64>,
}

impl RevealWindow {
    /// Forgets reveals older than the window; `Err(seconds)` until one
    /// frees up when `limit` remain.
    fn admit(&mut self, now_ms: i64, limit: u32) -> Result<(), u64> {
        self.at_ms.retain(|t| now_ms - t < WINDOW_MS);
        if self.at_ms.len() < limit as usize {
            return Ok(());
        }
        let frees_at = self.at_ms.first().map_or(now_ms + WINDOW_MS, |t| t + WINDOW_MS);
        Err(u64::try_from((frees_at - now_ms + 999) / 1000)
            .unwrap_or(1)
            .max(1))
    }
}

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
pub(super) fn reason_is_acceptable(reason: &str) -> bool {
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

/// What a reveal rests on: under dual control, a request another identity
/// approved (its reason is the reveal's); without it, a reason given now.
#[derive(Clone, Copy, Debug)]
pub enum RevealBasis<'a> {
    Approved(&'a RevealRequestId),
    Reason(&'a str),
}

impl<S: Store> Vault<S> {
    /// The PAN of `card_ref`, for the holder of a break-glass grant: on an
    /// approved request of theirs for this card (consumed by the reveal),
    /// or, with dual control off, on an acceptable reason. Every attempt is
    /// audited.
    pub async fn reveal_pan(
        &self,
        grant: &RevealGrant,
        card_ref: &CardRef,
        basis: RevealBasis<'_>,
    ) -> Result<RevealedPan, VaultError> {
        let actor = grant.actor();
        let mut audit = Audit::new(actor, Operation::CardReveal, Some(card_ref.to_string()));
        let approval = match basis {
            RevealBasis::Approved(id) => {
                audit.detail = Some(format!("request={id}"));
                match self.approved_request(id, &actor.identity, card_ref).await {
                    Ok((record, raw)) => {
                        audit.detail = Some(format!(
                            "request={id} approved_by={} reason: {}",
                            record.approved_by.as_deref().unwrap_or("?"),
                            record.reason
                        ));
                        Some((request_key(id), raw))
                    }
                    Err(e) => return self.audited(audit, Err(e)).await,
                }
            }
            RevealBasis::Reason(reason) => {
                let reason = reason.trim();
                if !reason_is_acceptable(reason) {
                    audit.detail = Some("reason refused".to_owned());
                    return self.audited(audit, Err(VaultError::RevealReason)).await;
                }
                audit.detail = Some(format!("reason: {reason}"));
                if self.config.reveal_dual_control {
                    let required = VaultError::RevealApproval(RevealApprovalError::Required);
                    return self.audited(audit, Err(required)).await;
                }
                None
            }
        };
        let key = keyspace::REVEAL_WINDOW.key(&actor.identity);
        let mut retry = Retry::new();
        loop {
            let stored = self.store.get(&key).await?;
            let mut window: RevealWindow = match &stored {
                Some(bytes) => decode(bytes, "reveal window")?,
                None => RevealWindow::default(),
            };
            let now = now_ms();
            if let Err(retry_after_s) = window.admit(now, self.config.reveals_per_hour) {
                return self
                    .audited(audit, Err(VaultError::RevealLimit { retry_after_s }))
                    .await;
            }
            let pan = match self.open_pan(card_ref).await {
                Ok(pan) => pan,
                Err(e) => return self.audited(audit, Err(e)).await,
            };
            window.at_ms.push(now);
            let mut batch = Batch::new();
            match stored {
                Some(bytes) => batch.expect_equals(key.clone(), bytes),
                None => batch.expect_absent(key.clone()),
            };
            batch.put(key.clone(), encode(&window)?);
            // One approval, one reveal: the request goes with it.
            if let Some((request, raw)) = &approval {
                batch
                    .expect_equals(request.clone(), raw.clone())
                    .delete(request.clone());
            }
            // Counted and audited before the digits leave the vault: no
            // record, no reveal.
            if self.apply_audited(batch, &audit, Outcome::Success, None).await? {
                return Ok(RevealedPan {
                    digits: Zeroizing::new(pan.expose_digits().to_owned()),
                    masked: pan.masked().as_str().to_owned(),
                });
            }
            if let Some((request, raw)) = &approval {
                if self.store.get(request).await?.as_deref() != Some(raw.as_slice()) {
                    // Another reveal used this approval first.
                    let gone = VaultError::NotFound {
                        what: "reveal request",
                    };
                    return self.audited(audit, Err(gone)).await;
                }
            }
            // Another reveal of this identity (on any node) came first.
            retry.after_conflict().await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{reason_is_acceptable, RevealWindow, WINDOW_MS};

    #[test]
    fn the_window_admits_the_limit_and_frees_a_slot_an_hour_after_the_oldest() {
        let mut window = RevealWindow::default();
        for t in [0, 1_000, 2_000] {
            assert_eq!(window.admit(t, 3), Ok(()));
            window.at_ms.push(t);
        }
        assert_eq!(window.admit(3_000, 3), Err(3_597));
        assert_eq!(window.admit(WINDOW_MS, 3), Ok(()));
        assert_eq!(window.at_ms, [1_000, 2_000]);
        assert!(RevealWindow::default().admit(0, 0).is_err());
    }

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
