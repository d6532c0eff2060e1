//! What a run resolves itself when `[reconciliation] paid_after_release`
//! is `"refund"` or `"accept"`: money the channel took for an order the
//! vault shows unpaid (长款) goes back to the payer through the channel,
//! or, under `"accept"`, is accepted as paid when the token's domain
//! controls allow one more use of that amount (`payment::accept`), and
//! refunded as below when they refuse.
//! - A payment the bank took after the platform released its order
//!   (`paid_after_release`) is refunded through the payment's own refund
//!   flow, so the payment shows it.
//! - An order closed or failed here that the bank paid after all (it
//!   raced the close) is refunded at the channel, and the refund kept
//!   under `recon-refund`, so the next day's file shows a refund the vault
//!   knows.
//!
//! The refund id is `rcn-` and the order id: one per order, so a re-run,
//! or a retry after a crash, asks the bank for the same refund again and
//! nothing is refunded twice. A line for an order the vault does not know
//! is left for a person: whose money it is cannot be told from here.
//! Whatever does not go through stays open, its failure audited.

use super::super::payment::{PaymentId, RefundId, RefundStatus};
use super::super::{layout, OrchestrationError, Orchestrator};
use super::matcher::{Class, LineKey, VaultItem, VaultState};
use super::resolve::{resolution_write, Action, DiscrepancyView, Resolution};
use super::run::RunView;
use crate::audit::Actor;
use crate::config::AfterRelease;
use crate::domain::ids::ChannelId;
use crate::domain::operation::Operation;
use crate::domain::time::Timestamp;
use crate::store::{Batch, Store};
use crate::vault::{decode, encode, Alone, Layer, Vault, VaultError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A refund a run made at the channel for an order closed here, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelRefund {
    pub amount: u64,
    pub at: Timestamp,
}

/// The refund a run asks for on `order`'s behalf.
pub(super) fn refund_key(order: &str) -> LineKey {
    LineKey {
        order_id: order.to_owned(),
        refund_id: format!("rcn-{order}"),
    }
}

impl Orchestrator {
    /// Carries out the configured automatic actions on `run`'s
    /// discrepancies; one that fails is left open, its failure audited.
    pub(super) async fn resolve_automatically<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        run: &mut RunView,
        items: &BTreeMap<LineKey, VaultItem>,
    ) {
        let accepting = match self.reconciliation.paid_after_release {
            AfterRelease::Queue => return,
            AfterRelease::Refund => false,
            AfterRelease::Accept => true,
        };
        let channel = run.channel.clone();
        for discrepancy in &mut run.discrepancies {
            let finding = &discrepancy.finding;
            let state = items.get(&finding.key).map(|i| i.state);
            let paid_to_the_channel = finding.class == Class::ChannelOnly && finding.key.refund_id.is_empty();
            let result = match (paid_to_the_channel, state, finding.channel_amount) {
                (true, Some(VaultState::PaidAfterRelease), _) => {
                    match self.accepted(vault, actor, discrepancy, accepting).await {
                        Some(accepted) => accepted,
                        None => self.refund_released(vault, actor, discrepancy).await,
                    }
                }
                (true, Some(VaultState::NotPaid), Some(amount)) => {
                    match self.accepted(vault, actor, discrepancy, accepting).await {
                        Some(accepted) => accepted,
                        None => {
                            self.refund_closed(vault, actor, &channel, discrepancy, amount)
                                .await
                        }
                    }
                }
                _ => continue,
            };
            let object = vault.audit_object(&discrepancy.id);
            let audited = self
                .audit_failure(vault, actor, Operation::ReconciliationResolve, object, result)
                .await;
            match audited {
                Ok(resolution) => discrepancy.resolution = Some(resolution),
                Err(e) => {
                    tracing::warn!(discrepancy = %discrepancy.id, error = %e, "automatic refund failed: left open")
                }
            }
        }
    }

    /// Under `accept`, the payment accepted as paid and the discrepancy
    /// resolved so; `None` when it is to be refunded instead (the policy
    /// is `refund`, or a domain control refused, which is audited).
    async fn accepted<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        discrepancy: &DiscrepancyView,
        accepting: bool,
    ) -> Option<Result<Resolution, OrchestrationError>> {
        if !accepting {
            return None;
        }
        let payment = match PaymentId::parse(&discrepancy.finding.key.order_id) {
            Ok(payment) => payment,
            Err(e) => return Some(Err(e.into())),
        };
        match self.accept_as_paid(vault, actor, &payment).await {
            Ok(reservation) => {
                let reason = format!(
                    "automatic: the channel took {} fen for an order not paid here; accepted as paid under reservation {reservation}",
                    discrepancy.finding.channel_amount.unwrap_or_default()
                );
                Some(
                    self.record_resolution(
                        vault,
                        actor,
                        discrepancy,
                        Action::AcceptedAsPaid,
                        reason,
                        Batch::new(),
                    )
                    .await,
                )
            }
            Err(OrchestrationError::Vault(VaultError::Refused(refusal))) => {
                tracing::info!(discrepancy = %discrepancy.id, %refusal, "not accepted as paid: refunding");
                None
            }
            Err(e) => Some(Err(e)),
        }
    }

    /// Refunds what is left of a payment taken after release, through the
    /// payment's refund flow, and records the discrepancy resolved.
    async fn refund_released<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        discrepancy: &DiscrepancyView,
    ) -> Result<Resolution, OrchestrationError> {
        let order = &discrepancy.finding.key.order_id;
        let payment = PaymentId::parse(order)?;
        let refund_id = RefundId::parse(&refund_key(order).refund_id)?;
        let (record, _) = self.load_payment(vault, &payment).await?;
        let amount = match record.refunds.iter().find(|r| r.id == refund_id) {
            Some(asked_before) => asked_before.amount,
            None => record.amount.saturating_sub(record.refunds_claimed()),
        };
        let (refund, _) = self
            .refund(vault, actor, &payment, &refund_id, amount, &Alone)
            .await?;
        if refund.status != RefundStatus::Succeeded {
            return Err(OrchestrationError::RefundFailedAtChannel);
        }
        self.record_refund(vault, actor, discrepancy, refund.amount, None)
            .await
    }

    /// Refunds, at the channel, a payment the bank took for an order the
    /// vault closed, keeps the refund, and records the discrepancy resolved.
    async fn refund_closed<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        channel: &ChannelId,
        discrepancy: &DiscrepancyView,
        amount: u64,
    ) -> Result<Resolution, OrchestrationError> {
        let order = &discrepancy.finding.key.order_id;
        let key = refund_key(order);
        let kept = layout::recon_refund(channel, &key);
        let before = vault
            .store_view(Layer::Orchestration)
            .get(&kept)
            .await
            .map_err(VaultError::from)?;
        let amount = match &before {
            Some(raw) => decode::<ChannelRefund>(raw, "channel refund")?.amount,
            None => amount,
        };
        self.gateway
            .refund(channel, order, &key.refund_id, amount)
            .await?;
        let refund = ChannelRefund {
            amount,
            at: Timestamp::now(),
        };
        let mut batch = Batch::new();
        if before.is_none() {
            batch.expect_absent(kept.clone()).put(kept, encode(&refund)?);
        }
        self.record_refund(vault, actor, discrepancy, amount, Some(batch))
            .await
    }

    /// Writes the discrepancy's resolution as refunded (with `batch`, if
    /// any, in the same write).
    async fn record_refund<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        discrepancy: &DiscrepancyView,
        amount: u64,
        batch: Option<Batch>,
    ) -> Result<Resolution, OrchestrationError> {
        let reason = format!(
            "automatic: the channel took {amount} fen for an order not paid here; refunded as {}",
            refund_key(&discrepancy.finding.key.order_id).refund_id
        );
        let batch = batch.unwrap_or_default();
        self.record_resolution(
            vault,
            actor,
            discrepancy,
            Action::RefundedAtChannel,
            reason,
            batch,
        )
        .await
    }

    /// Writes the discrepancy's resolution, with `batch` in the same write.
    async fn record_resolution<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        discrepancy: &DiscrepancyView,
        action: Action,
        reason: String,
        mut batch: Batch,
    ) -> Result<Resolution, OrchestrationError> {
        let resolution = Resolution {
            action,
            reason,
            by: actor.identity.clone(),
            at: Timestamp::now(),
        };
        let record = resolution_write(
            vault,
            &mut batch,
            &discrepancy.id,
            Class::ChannelOnly,
            &resolution,
        )?;
        if !vault
            .commit_from_above_records(batch, actor, vec![record])
            .await?
        {
            return Err(OrchestrationError::AlreadyResolved);
        }
        Ok(resolution)
    }
}
