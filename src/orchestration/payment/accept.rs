//! Accepting as paid a payment the bank took the money for though the
//! vault had let its order go (closed, failed, or paid after its
//! reservation was released): reconciliation's `accept` policy. The
//! token's domain controls are asked again first, so an accepted payment
//! counts against them like any other; when they refuse (the token
//! unbound, expired, used up) the refusal comes back and the caller
//! refunds instead.
//!
//! Two writes, each the payment's with its reservation's change: a new
//! reservation held for the payment, then committed with the payment
//! succeeded. A crash between them leaves the payment as it was but for
//! a held reservation, which the next attempt commits instead of
//! reserving again, so the token is never charged twice.

use super::super::{OrchestrationError, Orchestrator};
use super::write::{NoAnswer, PaymentWrite};
use super::{PaymentId, PaymentRecord, PaymentStatus, PAID_AFTER_RELEASE};
use crate::audit::Actor;
use crate::domain::operation::Operation;
use crate::domain::refs::ReservationId;
use crate::domain::time::Timestamp;
use crate::store::Store;
use crate::vault::gateway::PayOpening;
use crate::vault::token::UseRequest;
use crate::vault::{ReservationState, Vault, VaultError};

impl Orchestrator {
    /// Makes `payment` succeeded under a newly reserved and committed use
    /// of its token. `Err(Vault(Refused(_)))` when a control refuses, with
    /// nothing changed. Accepting a payment already accepted is harmless.
    pub(crate) async fn accept_as_paid<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        payment: &PaymentId,
    ) -> Result<ReservationId, OrchestrationError> {
        let (record, raw) = self.load_payment(vault, payment).await?;
        let accepted_already = record.status == PaymentStatus::Succeeded && record.failure.is_none();
        if accepted_already {
            return Ok(record.reservation);
        }
        record.status.accept_as_paid()?;
        let held = vault.reservation(actor, &record.reservation).await?;
        let (record, raw) = if held.state == ReservationState::Held {
            // Reserved by an attempt that stopped before committing.
            (record, raw)
        } else {
            self.reserve_again(vault, actor, record, &raw).await?;
            self.load_payment(vault, payment).await?
        };
        let mut accepted = record.clone();
        accepted.status = record.status.accept_as_paid()?;
        accepted.failure = None;
        // The bank took the money: no cancel closed it after all.
        accepted.cancelled = false;
        accepted.updated_at = Timestamp::now();
        let write = PaymentWrite {
            audit: Self::payment_audit(vault, Operation::ReconciliationResolve, &accepted),
            record: accepted,
            before: Some(&raw),
            requires: None,
            answer: &NoAnswer,
        };
        vault
            .commit_reservation_joined(actor, &record.reservation, Timestamp::now(), &write)
            .await?;
        Ok(record.reservation)
    }

    /// Holds one use and the amount of the payment's token again, the
    /// payment pointing at the new reservation in the same write.
    async fn reserve_again<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        record: PaymentRecord,
        raw: &[u8],
    ) -> Result<(), OrchestrationError> {
        let request = UseRequest {
            amount: record.amount,
            currency: record.currency,
            channel: record.channel.clone(),
            merchant: record.merchant.clone(),
        };
        let mut pending = record.clone();
        // Until committed it stays as it was, marked as the bank's money.
        pending.failure = Some(PAID_AFTER_RELEASE.to_owned());
        let write = PaymentWrite {
            audit: Self::payment_audit(vault, Operation::ReconciliationResolve, &pending),
            record: pending,
            before: Some(raw),
            requires: None,
            answer: &NoAnswer,
        };
        let nothing_opened: Option<PayOpening> = None;
        vault
            .reserve_joined(
                actor,
                &record.token,
                &request,
                Timestamp::now(),
                &write,
                nothing_opened,
            )
            .await
            .map_err(|e| match e {
                VaultError::JoinedStale => VaultError::Contention,
                other => other,
            })?;
        Ok(())
    }
}
