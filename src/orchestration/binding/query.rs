//! Binding queries: one binding, or all of a user's (masked data only).

use super::super::{OrchestrationError, Orchestrator};
use super::{BindingId, BindingView};
use crate::audit::{Actor, Outcome};
use crate::domain::operation::Operation;
use crate::domain::refs::UserId;
use crate::store::Store;
use crate::vault::Vault;

impl Orchestrator {
    pub async fn binding<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        id: &BindingId,
    ) -> Result<BindingView, OrchestrationError> {
        let result = self.load(vault, id).await.map(|(r, _)| r.view(false));
        let (outcome, detail) = match &result {
            Ok(_) => (Outcome::Success, None),
            Err(e) => {
                let (o, d) = e.audit();
                (o, Some(d))
            }
        };
        vault
            .record_outcome(
                actor,
                Operation::BindingRead,
                Some(vault.audit_object(id)),
                outcome,
                detail,
            )
            .await?;
        result
    }

    /// The user's bindings, newest first.
    pub async fn bindings<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        user: &UserId,
    ) -> Result<Vec<BindingView>, OrchestrationError> {
        let mut all: Vec<BindingView> = self
            .bindings_of_user(vault, user)
            .await?
            .iter()
            .map(|r| r.view(false))
            .collect();
        all.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.id.cmp(&b.id)));
        vault
            .record_outcome(
                actor,
                Operation::BindingList,
                Some(vault.audit_object(user)),
                Outcome::Success,
                Some(format!("count={}", all.len())),
            )
            .await?;
        Ok(all)
    }
}
