//! Reading and writing payment records, each write with its audit record.

use super::super::{layout, OrchestrationError, Orchestrator};
use super::{OrderId, PaymentId, PaymentRecord};
use crate::audit::{Actor, Outcome};
use crate::domain::ids::MerchantId;
use crate::domain::operation::Operation;
use crate::store::{Batch, Store};
use crate::vault::{decode, encode, Layer, Vault, VaultError};

impl Orchestrator {
    pub(crate) async fn load_payment<S: Store>(
        &self,
        vault: &Vault<S>,
        id: &PaymentId,
    ) -> Result<(PaymentRecord, Vec<u8>), OrchestrationError> {
        let raw = vault
            .store_view(Layer::Orchestration)
            .get(&layout::payment(id))
            .await
            .map_err(VaultError::from)?
            .ok_or(OrchestrationError::PaymentNotFound)?;
        Ok((decode(&raw, "payment")?, raw))
    }

    pub(super) async fn payment_of_order<S: Store>(
        &self,
        vault: &Vault<S>,
        merchant: &MerchantId,
        order: &OrderId,
    ) -> Result<Option<(PaymentRecord, Vec<u8>)>, OrchestrationError> {
        let Some(raw) = vault
            .store_view(Layer::Orchestration)
            .get(&layout::order(merchant, order))
            .await
            .map_err(VaultError::from)?
        else {
            return Ok(None);
        };
        let id = std::str::from_utf8(&raw)
            .ok()
            .and_then(|s| PaymentId::parse(s).ok())
            .ok_or(VaultError::Corrupt { what: "order index" })?;
        self.load_payment(vault, &id).await.map(Some)
    }

    /// A new payment with its order, binding and open-payment indexes.
    pub(super) fn create_payment_batch(record: &PaymentRecord) -> Result<Batch, VaultError> {
        let key = layout::payment(&record.id);
        let order_key = layout::order(&record.merchant, &record.order_id);
        let mut batch = Batch::new();
        batch
            .expect_absent(key.clone())
            .expect_absent(order_key.clone())
            .put(key, encode(record)?)
            .put(order_key, record.id.as_str().as_bytes().to_vec())
            .put(layout::binding_payment(&record.binding, &record.id), Vec::new());
        Self::open_index(&mut batch, record);
        Ok(batch)
    }

    /// Replaces the record read as `before`, keeping the open-payment index
    /// in step with the status.
    pub(super) fn update_payment_batch(before: &[u8], record: &PaymentRecord) -> Result<Batch, VaultError> {
        let key = layout::payment(&record.id);
        let mut batch = Batch::new();
        batch.expect_equals(key.clone(), before).put(key, encode(record)?);
        Self::open_index(&mut batch, record);
        Ok(batch)
    }

    fn open_index(batch: &mut Batch, record: &PaymentRecord) {
        let open = layout::open_payment(&record.id);
        if record.status.in_flight() {
            batch.put(open, Vec::new());
        } else {
            batch.delete(open);
        }
    }

    /// Commits `batch` with an audit record naming the payment's status.
    pub(super) async fn commit_payment<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        operation: Operation,
        record: &PaymentRecord,
        batch: Batch,
    ) -> Result<(), OrchestrationError> {
        let audit = Self::payment_audit(vault, operation, record);
        let written = vault
            .commit_from_above(
                batch,
                actor,
                operation,
                audit.object,
                Outcome::Success,
                audit.detail,
            )
            .await?;
        if written {
            Ok(())
        } else {
            Err(VaultError::Contention.into())
        }
    }

    /// Every payment of a binding.
    pub(crate) async fn payments_of_binding<S: Store>(
        &self,
        vault: &Vault<S>,
        binding: &super::super::binding::BindingId,
    ) -> Result<Vec<PaymentRecord>, OrchestrationError> {
        let prefix = layout::binding_payments_prefix(binding);
        let ids = self.ids_under(vault, &prefix).await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.load_payment(vault, &id).await?.0);
        }
        Ok(out)
    }

    /// Payment ids under an index prefix.
    pub(super) async fn ids_under<S: Store>(
        &self,
        vault: &Vault<S>,
        prefix: &[u8],
    ) -> Result<Vec<PaymentId>, OrchestrationError> {
        let mut out = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = vault
                .store_view(Layer::Orchestration)
                .scan_prefix(prefix, after.as_deref(), 256)
                .await
                .map_err(VaultError::from)?;
            for (key, _) in &page {
                let id = std::str::from_utf8(&key[prefix.len()..])
                    .ok()
                    .and_then(|s| PaymentId::parse(s).ok())
                    .ok_or(VaultError::Corrupt {
                        what: "payment index",
                    })?;
                out.push(id);
            }
            match page.last() {
                Some((key, _)) if page.len() == 256 => after = Some(key.clone()),
                _ => return Ok(out),
            }
        }
    }
}
