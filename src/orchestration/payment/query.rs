//! Reading payments, by id or by order. A payment still processing at the
//! bank is asked about first (order query), and settled if the bank knows.

use super::super::{layout, OrchestrationError, Orchestrator};
use super::settle::BankWord;
use super::{OrderId, PaymentId, PaymentRecord, PaymentStatus, PaymentView};
use crate::audit::{Actor, Outcome};
use crate::domain::ids::MerchantId;
use crate::domain::operation::Operation;
use crate::store::Store;
use crate::vault::Vault;

impl Orchestrator {
    pub async fn payment<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        id: &PaymentId,
    ) -> Result<PaymentView, OrchestrationError> {
        let result = self.load_payment(vault, id).await.map(|(record, _)| record);
        self.read_audited(vault, actor, vault.audit_object(id), result)
            .await
    }

    pub async fn payment_by_order<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        merchant: &MerchantId,
        order: &OrderId,
    ) -> Result<PaymentView, OrchestrationError> {
        let result = self
            .payment_of_order(vault, merchant, order)
            .await
            .and_then(|found| {
                found
                    .map(|(record, _)| record)
                    .ok_or(OrchestrationError::PaymentNotFound)
            });
        let object = vault.audit_object(&super::OrderSubject::new(Some(merchant), order));
        self.read_audited(vault, actor, object, result).await
    }

    async fn read_audited<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        object: crate::vault::AuditObject,
        found: Result<PaymentRecord, OrchestrationError>,
    ) -> Result<PaymentView, OrchestrationError> {
        let (outcome, detail) = match &found {
            Ok(record) => (Outcome::Success, format!("status={}", record.status.as_str())),
            Err(e) => e.audit(),
        };
        vault
            .record_outcome(actor, Operation::PaymentRead, Some(object), outcome, Some(detail))
            .await?;
        let record = found?;
        if matches!(
            record.status,
            PaymentStatus::Processing | PaymentStatus::UserPaying
        ) {
            return Ok(self.ask_bank(vault, actor, &record.id).await.unwrap_or_else(|e| {
                tracing::warn!(payment = %record.id, error = %e, "order query failed; answering with the stored state");
                record.view()
            }));
        }
        Ok(record.view())
    }

    /// Asks the channel about an unsettled payment and applies a final answer.
    pub(super) async fn ask_bank<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        id: &PaymentId,
    ) -> Result<PaymentView, OrchestrationError> {
        let _one_result_at_a_time = self.payment_locks.lock(&layout::payment(id)).await;
        let (record, raw) = self.load_payment(vault, id).await?;
        if !matches!(
            record.status,
            PaymentStatus::Processing | PaymentStatus::UserPaying
        ) {
            return Ok(record.view());
        }
        let state = self.gateway.query(&record.channel, id.as_str()).await?;
        if !state.status.is_final() {
            return Ok(record.view());
        }
        let op = Operation::PaymentRead;
        let record = self
            .apply_bank_word(vault, actor, op, record, &raw, BankWord::from(state))
            .await?;
        Ok(record.view())
    }
}
