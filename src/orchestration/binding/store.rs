//! Reading and writing binding records, each write with its audit record.

use super::super::{layout, OrchestrationError, Orchestrator};
use super::{BindingId, BindingRecord, BindingStatus};
use crate::audit::{Actor, Outcome};
use crate::domain::operation::Operation;
use crate::domain::refs::{CardRef, UserId};
use crate::store::{Batch, Store};
use crate::vault::{decode, encode, Layer, Vault, VaultError};

impl Orchestrator {
    pub(crate) async fn load<S: Store>(
        &self,
        vault: &Vault<S>,
        id: &BindingId,
    ) -> Result<(BindingRecord, Vec<u8>), OrchestrationError> {
        let raw = vault
            .store_view(Layer::Orchestration)
            .get(&layout::binding(id))
            .await
            .map_err(VaultError::from)?
            .ok_or(OrchestrationError::BindingNotFound)?;
        Ok((decode(&raw, "binding")?, raw))
    }

    /// The new record with its two indexes (first write of a binding).
    pub(super) fn create_batch(record: &BindingRecord) -> Result<Batch, VaultError> {
        let key = layout::binding(&record.id);
        let mut batch = Batch::new();
        batch
            .expect_absent(key.clone())
            .put(key, encode(record)?)
            .put(layout::user_binding(&record.user, &record.id), Vec::new())
            .put(layout::card_binding(&record.card_ref, &record.id), Vec::new());
        Ok(batch)
    }

    /// Replaces the record read as `before`.
    pub(crate) fn update_batch(before: &[u8], record: &BindingRecord) -> Result<Batch, VaultError> {
        let key = layout::binding(&record.id);
        let mut batch = Batch::new();
        batch.expect_equals(key.clone(), before).put(key, encode(record)?);
        Ok(batch)
    }

    /// Replaces the record read as `before` with its signed form, and
    /// indexes its token (debits find their binding through it).
    pub(super) fn signed_batch(before: &[u8], record: &BindingRecord) -> Result<Batch, VaultError> {
        let mut batch = Self::update_batch(before, record)?;
        if let Some(token) = &record.token {
            batch.put(
                layout::token_binding(token),
                record.id.as_str().as_bytes().to_vec(),
            );
        }
        Ok(batch)
    }

    /// The binding a payment token debits under: the one it was issued
    /// for, or, for a token issued separately for a card, the card's only
    /// signed binding.
    pub(crate) async fn binding_of_token<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &crate::audit::Actor,
        token: &crate::vault::token::TokenNumber,
    ) -> Result<(BindingRecord, Vec<u8>), OrchestrationError> {
        let indexed = vault
            .store_view(Layer::Orchestration)
            .get(&layout::token_binding(token))
            .await
            .map_err(VaultError::from)?;
        if let Some(raw) = indexed {
            let id = std::str::from_utf8(&raw)
                .ok()
                .and_then(|s| BindingId::parse(s).ok())
                .ok_or(VaultError::Corrupt { what: "token index" })?;
            return self.load(vault, &id).await;
        }
        let card = vault.token(actor, token).await?.card_ref;
        let mut signed = self
            .bindings_of_card(vault, &card)
            .await?
            .into_iter()
            .filter(|b| b.status == BindingStatus::Signed);
        match (signed.next(), signed.next()) {
            (Some(only), None) => self.load(vault, &only.id).await,
            _ => Err(OrchestrationError::TokenNotBound),
        }
    }

    /// Commits `batch` with an audit record; a lost race is `Contention`
    /// (callers hold the binding's lock, so it means another node wrote).
    pub(super) async fn commit<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        operation: Operation,
        record: &BindingRecord,
        batch: Batch,
        outcome: Outcome,
    ) -> Result<(), OrchestrationError> {
        let detail = match (&record.failure, record.status) {
            (Some(reason), _) => format!("status=failed reason={reason}"),
            (None, status) => format!("status={} card={}", status.as_str(), record.card_ref),
        };
        let written = vault
            .commit_from_above(
                batch,
                actor,
                operation,
                Some(vault.audit_object(&record.id)),
                outcome,
                Some(detail),
            )
            .await?;
        if written {
            Ok(())
        } else {
            Err(VaultError::Contention.into())
        }
    }

    /// Every binding of a card, or of a user, through their index.
    pub(super) async fn bindings_under<S: Store>(
        &self,
        vault: &Vault<S>,
        prefix: Vec<u8>,
    ) -> Result<Vec<BindingRecord>, OrchestrationError> {
        let mut out = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = vault
                .store_view(Layer::Orchestration)
                .scan_prefix(&prefix, after.as_deref(), 256)
                .await
                .map_err(VaultError::from)?;
            for (key, _) in &page {
                let id = std::str::from_utf8(&key[prefix.len()..])
                    .ok()
                    .and_then(|s| BindingId::parse(s).ok())
                    .ok_or(VaultError::Corrupt {
                        what: "binding index",
                    })?;
                out.push(self.load(vault, &id).await?.0);
            }
            match page.last() {
                Some((key, _)) if page.len() == 256 => after = Some(key.clone()),
                _ => return Ok(out),
            }
        }
    }

    pub(super) async fn bindings_of_card<S: Store>(
        &self,
        vault: &Vault<S>,
        card: &CardRef,
    ) -> Result<Vec<BindingRecord>, OrchestrationError> {
        self.bindings_under(vault, layout::card_bindings_prefix(card))
            .await
    }

    pub(super) async fn bindings_of_user<S: Store>(
        &self,
        vault: &Vault<S>,
        user: &UserId,
    ) -> Result<Vec<BindingRecord>, OrchestrationError> {
        self.bindings_under(vault, layout::user_bindings_prefix(user))
            .await
    }
}

impl BindingRecord {
    /// Still able to become (or already) a signed binding.
    pub(super) fn is_live(&self, now: crate::domain::time::Timestamp) -> bool {
        match self.status {
            BindingStatus::Signed | BindingStatus::Unbinding => true,
            BindingStatus::AwaitingCode | BindingStatus::PreBound => self.code_expires_at > now,
            BindingStatus::Failed | BindingStatus::Unbound => false,
        }
    }
}
