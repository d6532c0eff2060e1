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
use crate::vault::{Vault, VaultError};

impl Orchestrator {
    pub async fn unbind<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        id: &BindingId,
    ) -> Result<BindingView, OrchestrationError> {
        let result = self.unbind_inner(vault, actor, id).await;
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
    ) -> Result<BindingView, OrchestrationError> {
        // Debits check the binding and record their payment under this
        // lock, so none can start between the check below and the end.
        let _no_debit_starts = self.binding_gate.write(&layout::binding(id)).await;
        let (record, _) = self.load(vault, id).await?;
        match record.status {
            BindingStatus::Unbound => return Ok(record.view(true)),
            BindingStatus::Signed => {}
            other => return Err(OrchestrationError::BindingClosed(other)),
        }
        let payments = self.payments_of_binding(vault, id).await?;
        if payments.iter().any(|p| p.status.in_flight()) {
            return Err(OrchestrationError::PaymentsInFlight);
        }
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
        let now = Timestamp::now();
        if let Some(token) = &record.token {
            match vault.delete_token(actor, token, now).await {
                Ok(_) | Err(VaultError::Lifecycle(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        // Re-read: cancelling agreements does not touch the binding, but
        // the write must still be against the exact stored bytes.
        let (mut record, raw) = self.load(vault, id).await?;
        record.status = BindingStatus::Unbound;
        record.updated_at = now;
        let batch = Self::update_batch(&raw, &record)?;
        self.commit(
            vault,
            actor,
            Operation::BindingUnbind,
            &record,
            batch,
            Outcome::Success,
        )
        .await?;
        Ok(record.view(false))
    }
}
