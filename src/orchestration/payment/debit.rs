//! A debit: the order's terms checked, the token's domain controls reserved
//! atomically, the payment recorded, then the bank called through the
//! route's first channel that is up. A channel that is definitely not
//! reached gives its reservation back and the next one is tried; a channel
//! that may have acted (no answer) keeps the payment processing until the
//! settler learns the result.

use super::super::binding::BindingStatus;
use super::super::{layout, OrchestrationError, Orchestrator};
use super::settle::BankWord;
use super::{check_expiry, OrderId, PaymentId, PaymentRecord, PaymentStatus, PaymentView, RouteAttempt};
use crate::audit::Actor;
use crate::domain::ids::{ChannelId, Currency, MerchantId};
use crate::domain::operation::Operation;
use crate::domain::refs::AgreementRef;
use crate::domain::time::Timestamp;
use crate::store::Store;
use crate::vault::gateway::{GatewayError, PayOrder};
use crate::vault::token::{ControlRefusal, TokenNumber, UseRequest};
use crate::vault::{Vault, VaultError};

/// One debit as a caller asks for it.
#[derive(Clone, Debug)]
pub struct Debit {
    pub token: TokenNumber,
    pub order_id: OrderId,
    /// Minor units (fen).
    pub amount: u64,
    pub currency: Currency,
    pub channel: ChannelId,
    pub merchant: MerchantId,
    pub expires_at: Timestamp,
}

/// How one attempt at one channel ended.
pub(super) enum Step {
    /// The payment has its (for now) final word: settled, processing,
    /// user paying, or waiting for a code.
    Done(PaymentRecord),
    /// Not reached: nothing happened there; the reservation is given back.
    Unreached {
        record: PaymentRecord,
        raw: Vec<u8>,
        why: String,
    },
}

impl Orchestrator {
    /// Debits `debit.token`. Returns the payment and whether it is new (a
    /// repeated order with the same terms returns the existing payment).
    pub async fn debit<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        debit: Debit,
    ) -> Result<(PaymentView, bool), OrchestrationError> {
        let result = self.debit_inner(vault, actor, &debit).await;
        self.audit_failure(
            vault,
            actor,
            Operation::PaymentDebit,
            vault.audit_object(&super::OrderSubject::new(None, &debit.order_id)),
            result,
        )
        .await
    }

    async fn debit_inner<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        debit: &Debit,
    ) -> Result<(PaymentView, bool), OrchestrationError> {
        let now = Timestamp::now();
        check_expiry(debit.expires_at, now, self.payments.max_order_ttl.as_secs())?;
        let order_key = layout::order(&debit.merchant, &debit.order_id);
        let _one_debit_per_order = self.order_locks.lock(&order_key).await;
        let mut previous: Option<(PaymentRecord, Vec<u8>)> = None;
        if let Some((existing, raw)) = self
            .payment_of_order(vault, &debit.merchant, &debit.order_id)
            .await?
        {
            let same = existing.token == debit.token
                && existing.amount == debit.amount
                && existing.currency == debit.currency
                && existing.requested_channel == debit.channel
                && existing.expires_at == debit.expires_at;
            if !same {
                return Err(OrchestrationError::OrderConflict);
            }
            if existing.status != PaymentStatus::Unsent {
                return Ok((existing.view(), false));
            }
            // Nothing happened at any bank: the same order tries its route
            // again, as the same payment.
            previous = Some((existing, raw));
        }
        let binding_id = self.binding_of_token(vault, actor, &debit.token).await?.0.id;
        let id = match &previous {
            Some((existing, _)) => existing.id.clone(),
            None => PaymentId::generate()?,
        };
        let mut attempts: Vec<RouteAttempt> = previous
            .as_ref()
            .map(|(existing, _)| existing.attempts.clone())
            .unwrap_or_default();
        let mut channel_refusal = None;
        // Whether `previous` is this call's own attempt that was not
        // reached (not a stored unsent payment being retried).
        let mut unreached_now = false;
        for channel in self.routing.candidates(&debit.channel) {
            let reserved = self
                .reserve_and_record(
                    vault,
                    actor,
                    debit,
                    &id,
                    &binding_id,
                    &channel,
                    &attempts,
                    previous.as_ref(),
                )
                .await;
            let (record, raw, agreement) = match reserved {
                Ok(done) => done,
                Err(OrchestrationError::Vault(VaultError::Refused(ControlRefusal::Channel))) => {
                    // The token may not use this backup: try the next one.
                    channel_refusal = Some(ControlRefusal::Channel);
                    attempts.push(RouteAttempt {
                        channel,
                        reason: "token_channel_control".to_owned(),
                    });
                    continue;
                }
                Err(e) => return Err(e),
            };
            let step = match agreement {
                Some(agreement) => self.pay_at(vault, actor, record, raw, &agreement).await?,
                None => self.sign_then_pay(vault, actor, record, raw).await?,
            };
            match step {
                Step::Done(record) => return Ok((record.view(), true)),
                Step::Unreached { record, raw, why } => {
                    tracing::warn!(payment = %id, channel = channel.as_str(), reason = %why, "channel not reached; trying the route's next channel");
                    attempts.push(RouteAttempt {
                        channel,
                        reason: "unavailable".to_owned(),
                    });
                    previous = Some((record, raw));
                    unreached_now = true;
                }
            }
        }
        match previous {
            Some((record, raw)) if unreached_now => {
                // Every channel of the route was tried; the reservation of
                // the last one is already back.
                let mut record = record;
                record.attempts = attempts;
                self.apply_bank_word(
                    vault,
                    actor,
                    Operation::PaymentDebit,
                    record,
                    &raw,
                    BankWord::unsent(),
                )
                .await?;
                Err(OrchestrationError::ChannelUnavailable)
            }
            _ => Err(VaultError::Refused(channel_refusal.unwrap_or(ControlRefusal::Channel)).into()),
        }
    }

    /// Under the binding's lock (so an unbind sees this payment): checks
    /// the binding is signed, reserves the controls for `channel`, and
    /// writes the payment (new, or the previous attempt's record moved to
    /// this channel).
    #[allow(clippy::too_many_arguments)]
    async fn reserve_and_record<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        debit: &Debit,
        id: &PaymentId,
        binding_id: &super::super::binding::BindingId,
        channel: &ChannelId,
        attempts: &[RouteAttempt],
        previous: Option<&(PaymentRecord, Vec<u8>)>,
    ) -> Result<(PaymentRecord, Vec<u8>, Option<AgreementRef>), OrchestrationError> {
        // Checked before anything is reserved, so a refusal holds nothing.
        let restarted = previous
            .map(|(record, _)| record.status.transition(PaymentStatus::Processing))
            .transpose()?;
        let _unbind_waits = self.binding_gate.read(&layout::binding(binding_id)).await;
        let (binding, binding_raw) = self.load(vault, binding_id).await?;
        if binding.status != BindingStatus::Signed {
            return Err(OrchestrationError::BindingClosed(binding.status));
        }
        let now = Timestamp::now();
        let use_request = UseRequest {
            amount: debit.amount,
            currency: debit.currency,
            channel: channel.clone(),
            merchant: debit.merchant.clone(),
        };
        let reservation = vault.reserve(actor, &debit.token, &use_request, now).await?;
        let (record, batch) = match previous {
            None => {
                let record = PaymentRecord {
                    id: id.clone(),
                    order_id: debit.order_id.clone(),
                    merchant: debit.merchant.clone(),
                    user: binding.user.clone(),
                    binding: binding.id.clone(),
                    token: debit.token.clone(),
                    card_ref: binding.card_ref.clone(),
                    masked_card: binding.masked_card.clone(),
                    amount: debit.amount,
                    currency: debit.currency,
                    requested_channel: debit.channel.clone(),
                    channel: channel.clone(),
                    attempts: attempts.to_vec(),
                    reservation: reservation.id,
                    status: PaymentStatus::Processing,
                    bank_txn_no: None,
                    failure: None,
                    backup_signing: None,
                    refunds: Vec::new(),
                    cancelled: false,
                    expires_at: debit.expires_at,
                    created_at: now,
                    updated_at: now,
                };
                let batch = Self::create_payment_batch(&record)?;
                (record, batch)
            }
            Some((record, raw)) => {
                let mut record = record.clone();
                record.status = restarted.unwrap_or(PaymentStatus::Processing);
                record.failure = None;
                record.channel = channel.clone();
                record.attempts = attempts.to_vec();
                record.reservation = reservation.id;
                record.updated_at = now;
                let batch = Self::update_payment_batch(raw, &record)?;
                (record, batch)
            }
        };
        let (mut batch, binding_key) = (batch, layout::binding(binding_id));
        // The binding as read, signed: an unbind that began meanwhile (on
        // any node) makes this write fail.
        batch.expect_equals(binding_key, binding_raw);
        let written = self
            .commit_payment(vault, actor, Operation::PaymentDebit, &record, batch)
            .await;
        if let Err(e) = written {
            vault
                .release_reservation(actor, &record.reservation, Timestamp::now())
                .await?;
            let (binding, _) = self.load(vault, binding_id).await?;
            if binding.status != BindingStatus::Signed {
                return Err(OrchestrationError::BindingClosed(binding.status));
            }
            return Err(e);
        }
        let raw = crate::vault::encode(&record)?;
        Ok((record, raw, binding.agreement_at(channel).cloned()))
    }

    /// Debits under `agreement` at the payment's channel.
    pub(super) async fn pay_at<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        record: PaymentRecord,
        raw: Vec<u8>,
        agreement: &AgreementRef,
    ) -> Result<Step, OrchestrationError> {
        let order = PayOrder {
            channel: &record.channel,
            agreement_ref: agreement,
            order_no: record.id.as_str(),
            amount: record.amount,
            currency: record.currency,
        };
        let answer = self.gateway.pay(vault, actor, order).await;
        let op = Operation::PaymentDebit;
        let word = match answer {
            Ok(state) => {
                self.routing.succeeded(&record.channel);
                BankWord::from(state)
            }
            Err(GatewayError::Refused(code)) => {
                self.routing.succeeded(&record.channel);
                BankWord::failed(code.as_str())
            }
            Err(GatewayError::Unavailable(why)) => {
                self.routing.failed(&record.channel);
                vault
                    .release_reservation(actor, &record.reservation, Timestamp::now())
                    .await?;
                return Ok(Step::Unreached { record, raw, why });
            }
            Err(GatewayError::Unanswered(why)) => {
                // The bank may have taken it: stay processing; the settler
                // asks the bank.
                self.routing.failed(&record.channel);
                tracing::warn!(payment = %record.id, reason = %why, "no answer to a debit; left processing");
                return Ok(Step::Done(record));
            }
            Err(e) => {
                tracing::error!(payment = %record.id, error = %e, "debit failed in the gateway");
                self.apply_bank_word(vault, actor, op, record, &raw, BankWord::failed("gateway_error"))
                    .await?;
                return Err(e.into());
            }
        };
        let record = self.apply_bank_word(vault, actor, op, record, &raw, word).await?;
        Ok(Step::Done(record))
    }
}
