//! Refunds: only of a succeeded payment, never while it is in flight;
//! partial refunds add up to at most the captured amount; a repeated refund
//! id is the same refund. A refund gives nothing back to the token's
//! domain controls (uses and cumulative amount stay spent): the controls
//! bound how much a token can ever move, so a refunded token cannot be
//! cycled past them.

use super::super::{layout, OrchestrationError, Orchestrator};
use super::{PaymentId, PaymentRecord, PaymentStatus, Refund, RefundId, RefundStatus};
use crate::audit::Actor;
use crate::domain::operation::Operation;
use crate::domain::time::Timestamp;
use crate::store::Store;
use crate::vault::gateway::GatewayError;
use crate::vault::{Joined, Vault};

impl Orchestrator {
    pub async fn refund<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        id: &PaymentId,
        refund_id: &RefundId,
        amount: u64,
        answer: &dyn Joined<(Refund, bool)>,
    ) -> Result<(Refund, bool), OrchestrationError> {
        let result = async {
            let _one_flow_per_payment = self.payment_locks.lock(&layout::payment(id)).await;
            let op = Operation::PaymentRefund;
            self.refund_locked(vault, actor, op, id, refund_id, amount, answer)
                .await
        }
        .await;
        self.audit_failure(
            vault,
            actor,
            Operation::PaymentRefund,
            vault.audit_object(id),
            result,
        )
        .await
    }

    /// A refund; the caller holds the payment's lock. Returns the refund
    /// and whether this call created it; `answer` joins the write of the
    /// bank's answer.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn refund_locked<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        operation: Operation,
        id: &PaymentId,
        refund_id: &RefundId,
        amount: u64,
        answer: &dyn Joined<(Refund, bool)>,
    ) -> Result<(Refund, bool), OrchestrationError> {
        crate::domain::amount::Amount::parse(amount)?;
        let (mut record, raw) = self.load_payment(vault, id).await?;
        let now = Timestamp::now();
        let created = match record.refunds.iter().find(|r| &r.id == refund_id) {
            Some(existing) if existing.amount != amount => return Err(OrchestrationError::RefundConflict),
            Some(existing) if existing.status != RefundStatus::Processing => {
                return Ok((existing.clone(), false))
            }
            Some(_) => false,
            None => {
                match record.status {
                    PaymentStatus::Succeeded => {}
                    s if s.in_flight() => return Err(OrchestrationError::PaymentInFlight(s)),
                    s => return Err(OrchestrationError::NotRefundable(s)),
                }
                let refundable = record.amount - record.refunds_claimed().min(record.amount);
                if amount == 0 || amount > refundable {
                    return Err(OrchestrationError::RefundExceedsCaptured { refundable });
                }
                record.refunds.push(Refund {
                    id: refund_id.clone(),
                    amount,
                    status: RefundStatus::Processing,
                    failure: None,
                    created_at: now,
                    updated_at: now,
                });
                true
            }
        };
        // Recorded as processing before the bank is asked, so a crash or a
        // lost answer leaves a refund that a repeat asks about again.
        let raw = if created {
            record.updated_at = now;
            let batch = Self::update_payment_batch(&raw, &record)?;
            self.commit_payment(vault, actor, operation, &record, batch)
                .await?;
            crate::vault::encode(&record)?
        } else {
            raw
        };
        let at_bank = self
            .gateway
            .refund(&record.channel, id.as_str(), refund_id.as_str(), amount)
            .await;
        let (status, failure) = match at_bank {
            Ok(_) => (RefundStatus::Succeeded, None),
            Err(GatewayError::Refused(code)) => (RefundStatus::Failed, Some(code.as_str().to_owned())),
            Err(e) => {
                // Unknown whether the bank refunded: stays processing.
                return Err(e.into());
            }
        };
        let mut updated: PaymentRecord = record;
        let refund = match updated.refunds.iter_mut().find(|r| &r.id == refund_id) {
            Some(r) => {
                r.status = status;
                r.failure = failure;
                r.updated_at = Timestamp::now();
                r.clone()
            }
            None => return Err(OrchestrationError::RefundNotFound),
        };
        updated.updated_at = Timestamp::now();
        let mut batch = Self::update_payment_batch(&raw, &updated)?;
        let done = (refund, created);
        batch.append(answer.writes(&done)?);
        self.commit_payment(vault, actor, operation, &updated, batch)
            .await?;
        Ok(done)
    }

    pub async fn refund_of<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        id: &PaymentId,
        refund_id: &RefundId,
    ) -> Result<Refund, OrchestrationError> {
        let payment = self.payment(vault, actor, id).await?;
        payment
            .refunds
            .into_iter()
            .find(|r| &r.id == refund_id)
            .ok_or(OrchestrationError::RefundNotFound)
    }
}
