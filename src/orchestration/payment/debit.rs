//! A debit: the order's terms checked, then the route's channels tried in
//! turn, each in two writes. The first holds the token's controls, records
//! the payment and puts the gateway's opening on the trail (of the
//! agreement number; at a backup channel with no agreement, of the card
//! and identity it applies for signing with); the second, after the bank's answer, settles the reservation
//! with the payment's new status and the caller's answer. A channel that is
//! definitely not reached gives its reservation back (the payment unsent)
//! and the next one is tried; a channel that may have acted (no answer)
//! keeps the payment processing until the settler learns the result.

use super::super::binding::{BindingId, BindingStatus};
use super::super::{layout, OrchestrationError, Orchestrator};
use super::settle::BankWord;
use super::write::{Answering, DebitAnswer, NoAnswer, PaymentWrite};
use super::{check_expiry, OrderId, PaymentId, PaymentRecord, PaymentStatus, PaymentView, RouteAttempt};
use crate::audit::Actor;
use crate::channel::protocol::RefusalCode;
use crate::domain::ids::{ChannelId, Currency, MerchantId};
use crate::domain::operation::Operation;
use crate::domain::refs::{AgreementRef, ReservationId};
use crate::domain::time::Timestamp;
use crate::store::Store;
use crate::vault::gateway::{ApplyOpening, DebitOpening, GatewayError, PayOpening, PayOrder, RecordedDebit};
use crate::vault::token::{ControlRefusal, TokenNumber, UseRequest};
use crate::vault::{Joined, Recorded, Vault, VaultError};

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
    /// Not reached: nothing happened there. The reservation is back and
    /// the payment is stored `unsent` with this channel in its attempts.
    Unreached {
        record: PaymentRecord,
        raw: Vec<u8>,
        why: String,
    },
}

/// What the debit's first write holds for the bank call that follows.
enum Sending {
    /// The agreement number's opening, recorded: pay now.
    Pay(Recorded<PayOpening>),
    /// No agreement at this channel (a backup channel): the opening of the
    /// card and identity for signing there, recorded: apply now.
    SignFirst(Recorded<ApplyOpening>),
    /// The agreement was gone when checked: the payment fails with this.
    Refused(RefusalCode),
}

impl Orchestrator {
    /// Debits `debit.token`. Returns the payment and whether it is new (a
    /// repeated order with the same terms returns the existing payment).
    /// `answer` (the caller's record of its answer) joins the write that
    /// settles the payment, where there is one.
    pub async fn debit<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        debit: Debit,
        answer: &dyn Joined<(PaymentView, bool)>,
    ) -> Result<(PaymentView, bool), OrchestrationError> {
        let result = self.debit_inner(vault, actor, &debit, &DebitAnswer(answer)).await;
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
        answer: &dyn Answering,
    ) -> Result<(PaymentView, bool), OrchestrationError> {
        let now = Timestamp::now();
        crate::domain::amount::Amount::parse(debit.amount)?;
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
        self.routing.refresh(vault).await;
        for channel in self.routing.candidates(&debit.channel) {
            let attempt = Attempt {
                debit,
                id: &id,
                binding_id: &binding_id,
                channel: &channel,
                attempts: &attempts,
                previous: previous.as_ref(),
            };
            let (record, raw, sending) = match self.first_write(vault, actor, attempt).await {
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
            let step = match sending {
                Sending::Pay(opening) => self.pay_at(vault, actor, record, raw, opening, answer).await?,
                Sending::Refused(code) => {
                    let word = BankWord::failed(code.as_str());
                    let op = Operation::PaymentDebit;
                    Step::Done(
                        self.settle_payment(vault, actor, op, record, &raw, word, answer)
                            .await?,
                    )
                }
                Sending::SignFirst(opening) => {
                    self.sign_then_pay(vault, actor, record, raw, opening, answer)
                        .await?
                }
            };
            match step {
                Step::Done(record) => return Ok((record.view(), true)),
                Step::Unreached { record, raw, why } => {
                    tracing::warn!(payment = %id, channel = channel.as_str(), reason = %why, "channel not reached; trying the route's next channel");
                    attempts = record.attempts.clone();
                    previous = Some((record, raw));
                    unreached_now = true;
                }
            }
        }
        match previous {
            Some((record, raw)) if unreached_now => {
                // Every channel of the route was tried; the last one's
                // write left the payment unsent. Channels the token refused
                // after it are added to its attempts.
                if record.attempts != attempts {
                    let mut record = record;
                    record.attempts = attempts;
                    record.updated_at = Timestamp::now();
                    let batch = Self::update_payment_batch(&raw, &record)?;
                    self.commit_payment(vault, actor, Operation::PaymentDebit, &record, batch)
                        .await?;
                }
                Err(OrchestrationError::ChannelUnavailable)
            }
            _ => Err(VaultError::Refused(channel_refusal.unwrap_or(ControlRefusal::Channel)).into()),
        }
    }

    /// The debit's first write at one channel, under the binding's lock (so
    /// an unbind sees this payment): the binding still signed, the token's
    /// controls reserved, the payment recorded (new, or the previous
    /// attempt's record moved to this channel), and the gateway's opening
    /// of the agreement number on the trail, all in one write.
    async fn first_write<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        attempt: Attempt<'_>,
    ) -> Result<(PaymentRecord, Vec<u8>, Sending), OrchestrationError> {
        let Attempt {
            debit,
            id,
            binding_id,
            channel,
            attempts,
            previous,
        } = attempt;
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
        let opening = match binding.agreement_at(channel) {
            Some(agreement) => {
                let order = PayOrder {
                    channel,
                    agreement_ref: agreement,
                    order_no: id.as_str(),
                    amount: debit.amount,
                    currency: debit.currency,
                };
                match self.gateway.open_pay(vault, order).await {
                    Ok(opening) => Ok(DebitOpening::Pay(opening)),
                    Err(GatewayError::Refused(code)) => Err(code),
                    Err(e) => return Err(e.into()),
                }
            }
            None => {
                let request_no = format!("{id}-{}", attempts.len());
                let opening = self.gateway.open_apply(
                    channel,
                    binding.user.as_str(),
                    &binding.card_ref,
                    &binding.identity_ref,
                    &request_no,
                );
                Ok(DebitOpening::Apply(opening))
            }
        };
        let (opening, refused) = match opening {
            Ok(opening) => (Some(opening), None),
            Err(code) => (None, Some(code)),
        };
        let record = match previous {
            None => PaymentRecord {
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
                // Replaced by the reservation the write makes.
                reservation: ReservationId::generate().map_err(VaultError::from)?,
                status: PaymentStatus::Processing,
                bank_txn_no: None,
                failure: None,
                backup_signing: None,
                refunds: Vec::new(),
                cancelled: false,
                expires_at: debit.expires_at,
                created_at: now,
                updated_at: now,
            },
            Some((record, _)) => {
                let mut record = record.clone();
                record.status = restarted.unwrap_or(PaymentStatus::Processing);
                record.failure = None;
                record.channel = channel.clone();
                record.attempts = attempts.to_vec();
                record.updated_at = now;
                record
            }
        };
        let write = PaymentWrite {
            audit: Self::payment_audit(vault, Operation::PaymentDebit, &record),
            record,
            before: previous.map(|(_, raw)| raw.as_slice()),
            requires: Some((layout::binding(binding_id), binding_raw)),
            answer: &NoAnswer,
        };
        let use_request = UseRequest {
            amount: debit.amount,
            currency: debit.currency,
            channel: channel.clone(),
            merchant: debit.merchant.clone(),
        };
        let written = vault
            .reserve_joined(actor, &debit.token, &use_request, now, &write, opening)
            .await;
        let (reservation, recorded) = match written {
            Ok(done) => done,
            Err(VaultError::JoinedStale) => {
                // The binding or the payment changed under the write (on
                // any node): nothing was written.
                let (binding, _) = self.load(vault, binding_id).await?;
                if binding.status != BindingStatus::Signed {
                    return Err(OrchestrationError::BindingClosed(binding.status));
                }
                return Err(VaultError::Contention.into());
            }
            Err(e) => return Err(e.into()),
        };
        let sending = match (recorded.map(Recorded::sendable), refused) {
            (Some(RecordedDebit::Pay(pay)), _) => Sending::Pay(pay),
            (Some(RecordedDebit::Apply(apply)), _) => Sending::SignFirst(apply),
            (None, Some(code)) => Sending::Refused(code),
            // Either an opening or a refusal was made above.
            (None, None) => {
                return Err(VaultError::Corrupt {
                    what: "debit opening",
                }
                .into())
            }
        };
        let record = write.record_under(&reservation);
        let raw = crate::vault::encode(&record)?;
        Ok((record, raw, sending))
    }

    /// Pays under an agreement whose first write is behind the payment (a
    /// backup channel's signing came between): the opening is recorded on
    /// its own, then sent.
    pub(super) async fn pay_under<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        record: PaymentRecord,
        raw: Vec<u8>,
        agreement: &AgreementRef,
        answer: &dyn Answering,
    ) -> Result<Step, OrchestrationError> {
        let order = PayOrder {
            channel: &record.channel,
            agreement_ref: agreement,
            order_no: record.id.as_str(),
            amount: record.amount,
            currency: record.currency,
        };
        let op = Operation::PaymentDebit;
        let opening = match self.gateway.open_pay(vault, order).await {
            Ok(opening) => opening,
            Err(GatewayError::Refused(code)) => {
                let word = BankWord::failed(code.as_str());
                let record = self
                    .settle_payment(vault, actor, op, record, &raw, word, answer)
                    .await?;
                return Ok(Step::Done(record));
            }
            Err(e) => return Err(e.into()),
        };
        let recorded = self.gateway.record_opening(vault, actor, opening).await?;
        self.pay_at(vault, actor, record, raw, recorded, answer).await
    }

    /// Sends the debit whose opening is recorded, and writes what the bank
    /// said (the second write of the attempt).
    async fn pay_at<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        record: PaymentRecord,
        raw: Vec<u8>,
        opening: Recorded<PayOpening>,
        answer: &dyn Answering,
    ) -> Result<Step, OrchestrationError> {
        let sent = self.gateway.pay(vault, opening).await;
        let op = Operation::PaymentDebit;
        let word = match sent {
            Ok(state) => {
                self.routing.succeeded(vault, &record.channel).await;
                BankWord::from(state)
            }
            Err(GatewayError::Refused(code)) => {
                self.routing.succeeded(vault, &record.channel).await;
                BankWord::failed(code.as_str())
            }
            Err(GatewayError::Unavailable(why)) => {
                self.routing.failed(vault, &record.channel).await;
                return self.unreached(vault, actor, record, &raw, why).await;
            }
            Err(GatewayError::Unanswered(why)) => {
                // The bank may have taken it: stay processing; the settler
                // asks the bank.
                self.routing.failed(vault, &record.channel).await;
                tracing::warn!(payment = %record.id, reason = %why, "no answer to a debit; left processing");
                return Ok(Step::Done(record));
            }
            Err(e) => {
                tracing::error!(payment = %record.id, error = %e, "debit failed in the gateway");
                let word = BankWord::failed("gateway_error");
                self.settle_payment(vault, actor, op, record, &raw, word, answer)
                    .await?;
                return Err(e.into());
            }
        };
        let record = self
            .settle_payment(vault, actor, op, record, &raw, word, answer)
            .await?;
        Ok(Step::Done(record))
    }

    /// The channel was not reached (nothing happened there): the
    /// reservation back and the payment unsent, with this channel in its
    /// attempts, in one write.
    pub(super) async fn unreached<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        mut record: PaymentRecord,
        raw: &[u8],
        why: String,
    ) -> Result<Step, OrchestrationError> {
        record.attempts.push(RouteAttempt {
            channel: record.channel.clone(),
            reason: "unavailable".to_owned(),
        });
        let op = Operation::PaymentDebit;
        let record = self
            .settle_payment(vault, actor, op, record, raw, BankWord::unsent(), &NoAnswer)
            .await?;
        let raw = crate::vault::encode(&record)?;
        Ok(Step::Unreached { record, raw, why })
    }
}

/// One channel attempt of a debit, as the first write needs it.
struct Attempt<'a> {
    debit: &'a Debit,
    id: &'a PaymentId,
    binding_id: &'a BindingId,
    channel: &'a ChannelId,
    attempts: &'a [RouteAttempt],
    previous: Option<&'a (PaymentRecord, Vec<u8>)>,
}
