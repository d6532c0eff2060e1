//! Bank notifications: checked against the platform's own payment (channel,
//! merchant, amount, currency, bank transaction number) and applied once;
//! repeats are acknowledged and audited as duplicates; a notification that
//! disagrees is refused and audited.

use super::super::{layout, OrchestrationError, Orchestrator};
use super::settle::BankWord;
use super::{PaymentId, PaymentStatus, PaymentView};
use crate::audit::{Actor, Outcome};
use crate::channel::protocol::Notification;
use crate::domain::ids::ChannelId;
use crate::domain::operation::Operation;
use crate::store::Store;
use crate::vault::Vault;

/// What a notification did.
#[derive(Debug)]
pub struct Notified {
    pub payment: PaymentView,
    /// False for a repeat (or an interim status): nothing changed.
    pub applied: bool,
}

impl Orchestrator {
    pub async fn notify<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        channel: &ChannelId,
        notification: &Notification,
    ) -> Result<Notified, OrchestrationError> {
        let id = PaymentId::parse(&notification.order_no).ok();
        let result = match &id {
            Some(id) => self.notify_inner(vault, actor, channel, id, notification).await,
            None => Err(OrchestrationError::NotificationMismatch("order_no")),
        };
        let object = id.map_or_else(|| vault.audit_object(channel), |id| vault.audit_object(&id));
        match &result {
            Err(e) => {
                let (outcome, detail) = e.audit();
                vault
                    .record_outcome(
                        actor,
                        Operation::PaymentNotify,
                        Some(object.clone()),
                        outcome,
                        Some(detail),
                    )
                    .await?;
            }
            Ok(n) if !n.applied => {
                let detail = format!("duplicate status={}", notification.status.as_str());
                vault
                    .record_outcome(
                        actor,
                        Operation::PaymentNotify,
                        Some(object.clone()),
                        Outcome::Success,
                        Some(detail),
                    )
                    .await?;
            }
            Ok(_) => {}
        }
        result
    }

    async fn notify_inner<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        channel: &ChannelId,
        id: &PaymentId,
        n: &Notification,
    ) -> Result<Notified, OrchestrationError> {
        let _one_result_at_a_time = self.payment_locks.lock(&layout::payment(id)).await;
        let (record, raw) = self.load_payment(vault, id).await?;
        let mismatch = if &record.channel != channel {
            Some("channel")
        } else if n.merchant_id != self.gateway.merchant_id() {
            Some("merchant_id")
        } else if n.amount != record.amount {
            Some("amount")
        } else if n.currency != record.currency.as_str() {
            Some("currency")
        } else if record.bank_txn_no.as_ref().is_some_and(|t| t != &n.bank_txn_no) {
            Some("bank_txn_no")
        } else {
            None
        };
        if let Some(field) = mismatch {
            tracing::warn!(payment = %id, field, "notification disagrees with the payment; refused");
            return Err(OrchestrationError::NotificationMismatch(field));
        }
        let status = PaymentStatus::from(n.status);
        if status.in_flight() {
            return Ok(Notified {
                payment: record.view(),
                applied: false,
            });
        }
        if !record.status.in_flight() {
            if record.status == status {
                return Ok(Notified {
                    payment: record.view(),
                    applied: false,
                });
            }
            tracing::error!(payment = %id, ours = record.status.as_str(), bank = n.status.as_str(), "bank result contradicts a settled payment: reconcile");
            return Err(OrchestrationError::NotificationMismatch("status"));
        }
        let word = BankWord {
            status,
            bank_txn_no: Some(n.bank_txn_no.clone()),
            failure: n.failure.map(|c| c.as_str().to_owned()),
        };
        let record = self
            .apply_bank_word(vault, actor, Operation::PaymentNotify, record, &raw, word)
            .await?;
        Ok(Notified {
            payment: record.view(),
            applied: true,
        })
    }
}
