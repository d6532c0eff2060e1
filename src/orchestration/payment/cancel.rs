//! Cancel (撤销): an unpaid order is closed at the bank and its reservation
//! given back; a paid one is refunded in full within the cancel window.
//! Repeating a cancel answers with the payment as it then stands.

use super::super::{layout, OrchestrationError, Orchestrator};
use super::settle::BankWord;
use super::write::{Answering, NoAnswer, ViewAnswer};
use super::{PaymentId, PaymentStatus, PaymentView, RefundId};
use crate::audit::Actor;
use crate::domain::operation::Operation;
use crate::domain::time::Timestamp;
use crate::store::Store;
use crate::vault::{Alone, Joined, Vault};

impl Orchestrator {
    pub async fn cancel_payment<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        id: &PaymentId,
        answer: &dyn Joined<PaymentView>,
    ) -> Result<PaymentView, OrchestrationError> {
        let result = self.cancel_inner(vault, actor, id, &ViewAnswer(answer)).await;
        self.audit_failure(
            vault,
            actor,
            Operation::PaymentCancel,
            vault.audit_object(id),
            result,
        )
        .await
    }

    async fn cancel_inner<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        id: &PaymentId,
        answer: &dyn Answering,
    ) -> Result<PaymentView, OrchestrationError> {
        let _one_flow_per_payment = self.payment_locks.lock(&layout::payment(id)).await;
        let op = Operation::PaymentCancel;
        let (record, raw) = self.load_payment(vault, id).await?;
        let record = match record.status {
            PaymentStatus::AwaitingCode | PaymentStatus::Unsent => {
                // No order exists at the bank (yet, or at all).
                let mut closing = record;
                closing.cancelled = true;
                let word = BankWord::closed("cancelled");
                self.settle_payment(vault, actor, op, closing, &raw, word, answer)
                    .await?
            }
            PaymentStatus::Processing | PaymentStatus::UserPaying => {
                let state = self.gateway.close(&record.channel, id.as_str()).await?;
                let mut word = BankWord::from(state);
                if word.status.in_flight() {
                    return Err(OrchestrationError::PaymentInFlight(word.status));
                }
                if word.status == PaymentStatus::Closed {
                    word.failure = Some("cancelled".to_owned());
                }
                let mut closing = record;
                closing.cancelled = word.status == PaymentStatus::Closed;
                // Paid after all: the refund below writes the answer.
                let answer = match word.status {
                    PaymentStatus::Succeeded => &NoAnswer,
                    _ => answer,
                };
                self.settle_payment(vault, actor, op, closing, &raw, word, answer)
                    .await?
            }
            _ => record,
        };
        if record.status != PaymentStatus::Succeeded || record.cancelled {
            return Ok(record.view());
        }
        let window = i64::try_from(self.payments.cancel_window.as_secs()).unwrap_or(i64::MAX);
        if Timestamp::now().seconds() - record.created_at.seconds() > window {
            return Err(OrchestrationError::CancelWindowPassed);
        }
        let remaining = record.amount - record.refunded().min(record.amount);
        if remaining > 0 {
            let refund_id = RefundId::parse("cancel")?;
            self.refund_locked(vault, actor, op, id, &refund_id, remaining, &Alone)
                .await?;
        }
        let (mut record, raw) = self.load_payment(vault, id).await?;
        record.cancelled = true;
        record.updated_at = Timestamp::now();
        let mut batch = Self::update_payment_batch(&raw, &record)?;
        batch.append(answer.writes(&record)?);
        self.commit_payment(vault, actor, op, &record, batch).await?;
        Ok(record.view())
    }
}
