//! Unbind (解约): refused while any of the binding's payments is in
//! flight; otherwise its agreements are cancelled at their channels, its
//! payment token deleted (final: it can never debit again), and the
//! binding kept, marked unbound.

use super::super::{layout, OrchestrationError, Orchestrator};
use super::{BindingId, BindingStatus, BindingView};
use crate::audit::{Actor, Outcome};
use crate::channel::protocol::RefusalCode;
use crate::domain::operation::Operation;
use crate::domain::time::Timestamp;
use crate::store::Store;
use crate::vault::gateway::GatewayError;
use crate::vault::{Alone, Joined, Vault, VaultError};

impl Orchestrator {
    pub async fn unbind<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        id: &BindingId,
        answer: &dyn Joined<BindingView>,
    ) -> Result<BindingView, OrchestrationError> {
        let result = self.unbind_inner(vault, actor, id, answer).await;
        self.audit_failure(
            vault,
            actor,
            Operation::BindingUnbind,
            vault.audit_object(id),
            result,
        )
        .await
    }

    async fn unbind_inner<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        id: &BindingId,
        answer: &dyn Joined<BindingView>,
    ) -> Result<BindingView, OrchestrationError> {
        // In this process, debits check the binding and record their
        // payment under this lock; across processes, the `unbinding` write
        // below is what stops them (a debit's first write requires the
        // binding's bytes as it read them, signed).
        let _no_debit_starts = self.binding_gate.write(&layout::binding(id)).await;
        let (record, raw) = self.load(vault, id).await?;
        match record.status {
            BindingStatus::Unbound => return Ok(record.view(true)),
            BindingStatus::Signed | BindingStatus::Unbinding => {}
            other => return Err(OrchestrationError::BindingClosed(other)),
        }
        if self.has_payments_in_flight(vault, id).await? {
            return Err(OrchestrationError::PaymentsInFlight);
        }
        let record = if record.status == BindingStatus::Signed {
            let (unbinding, unbinding_raw) = self
                .move_binding(vault, actor, record, &raw, BindingStatus::Unbinding, &Alone)
                .await?;
            // A debit that wrote before the move is seen now.
            if self.has_payments_in_flight(vault, id).await? {
                self.move_binding(
                    vault,
                    actor,
                    unbinding,
                    &unbinding_raw,
                    BindingStatus::Signed,
                    &Alone,
                )
                .await?;
                return Err(OrchestrationError::PaymentsInFlight);
            }
            unbinding
        } else {
            record
        };
        let agreements = record
            .agreement_ref
            .iter()
            .chain(record.backup_agreements.iter().map(|(_, a)| a));
        for agreement in agreements {
            match self.gateway.cancel(vault, actor, agreement).await {
                Ok(()) | Err(GatewayError::Refused(RefusalCode::AgreementUnknown)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(token) = &record.token {
            match vault.delete_token(actor, token, Timestamp::now()).await {
                Ok(_) | Err(VaultError::Lifecycle(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        // Re-read: cancelling agreements does not touch the binding, but
        // the write must still be against the exact stored bytes.
        let (record, raw) = self.load(vault, id).await?;
        let (record, _) = self
            .move_binding(vault, actor, record, &raw, BindingStatus::Unbound, answer)
            .await?;
        Ok(record.view(false))
    }

    async fn has_payments_in_flight<S: Store>(
        &self,
        vault: &Vault<S>,
        id: &BindingId,
    ) -> Result<bool, OrchestrationError> {
        let payments = self.payments_of_binding(vault, id).await?;
        Ok(payments.iter().any(|p| p.status.in_flight()))
    }

    /// Writes the binding read as `raw` with status `to` (and `answer`),
    /// audited as an unbind step; returns it and its stored bytes.
    async fn move_binding<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        mut record: super::BindingRecord,
        raw: &[u8],
        to: BindingStatus,
        answer: &dyn Joined<BindingView>,
    ) -> Result<(super::BindingRecord, Vec<u8>), OrchestrationError> {
        record.status = to;
        record.updated_at = Timestamp::now();
        let mut batch = Self::update_batch(raw, &record)?;
        batch.append(answer.writes(&record.view(false))?);
        self.commit(
            vault,
            actor,
            Operation::BindingUnbind,
            &record,
            batch,
            Outcome::Success,
        )
        .await?;
        let stored = crate::vault::encode(&record)?;
        Ok((record, stored))
    }
}
