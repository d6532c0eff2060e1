//! The settler: a background pass over unsettled payments (the
//! `open-payment/` index, so it resumes after a restart). It closes debits
//! waiting for a code past its time-to-live, asks the bank about
//! processing ones, and closes "user paying" ones after the payment-code
//! time-out (or records them paid, if the bank says so).
//!
//! A reservation ends here only on the bank's word: paid commits it;
//! failed, closed or an order the bank has never heard of (after a grace
//! period) releases it. A payment the bank still calls processing keeps
//! its reservation however long it waits; no timer releases it. The
//! exceptions are orders the bank never received: a debit awaiting its
//! SMS code (not sent yet) whose code has expired.

use super::super::{OrchestrationError, Orchestrator};
use super::settle::BankWord;
use super::{PaymentId, PaymentStatus};
use crate::audit::Actor;
use crate::channel::protocol::RefusalCode;
use crate::domain::operation::Operation;
use crate::domain::time::Timestamp;
use crate::store::Store;
use crate::vault::gateway::GatewayError;
use crate::vault::Vault;

/// A bank that has never heard of an order this long after it was
/// recorded never got it.
const UNKNOWN_ORDER_GRACE_SECONDS: i64 = 60;

/// What one pass of the settler found and did.
#[derive(Debug, Default)]
pub struct SettlerPass {
    /// Unsettled payments at the start of the pass.
    pub open: usize,
    /// The status each payment it ended now has.
    pub settled: Vec<PaymentStatus>,
}

impl Orchestrator {
    /// One pass over every unsettled payment.
    pub async fn settle_open<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
    ) -> Result<SettlerPass, OrchestrationError> {
        let ids = self.ids_under(vault, super::super::layout::OPEN_PAYMENTS).await?;
        let mut pass = SettlerPass {
            open: ids.len(),
            settled: Vec::new(),
        };
        for id in ids {
            match self.settle_one(vault, actor, &id).await {
                Ok(Some(status)) => pass.settled.push(status),
                Ok(None) => {}
                Err(e) => tracing::warn!(payment = %id, error = %e, "settler could not settle a payment"),
            }
        }
        Ok(pass)
    }

    async fn settle_one<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        id: &PaymentId,
    ) -> Result<Option<PaymentStatus>, OrchestrationError> {
        let _one_result_at_a_time = self.payment_locks.lock(&super::super::layout::payment(id)).await;
        let (record, raw) = self.load_payment(vault, id).await?;
        let now = Timestamp::now();
        let op = Operation::PaymentDebit;
        let word = match record.status {
            PaymentStatus::AwaitingCode => {
                let expired = record
                    .backup_signing
                    .as_ref()
                    .is_none_or(|s| s.code_expires_at <= now);
                if !expired {
                    return Ok(None);
                }
                BankWord::closed("code_expired")
            }
            PaymentStatus::Processing | PaymentStatus::UserPaying => {
                match self.gateway.query(&record.channel, id.as_str()).await {
                    Ok(state) if state.status.is_final() => BankWord::from(state),
                    Ok(state) if state.status == crate::channel::protocol::PayStatus::UserPaying => {
                        let waited = now.seconds() - record.created_at.seconds();
                        let limit =
                            i64::try_from(self.payments.payment_code_timeout.as_secs()).unwrap_or(i64::MAX);
                        if waited < limit {
                            return Ok(None);
                        }
                        let closed = self.gateway.close(&record.channel, id.as_str()).await?;
                        let mut word = BankWord::from(closed);
                        if word.status == PaymentStatus::Closed {
                            word.failure = Some("user_paying_timeout".to_owned());
                        }
                        if word.status.in_flight() {
                            return Ok(None);
                        }
                        word
                    }
                    Ok(_) => return Ok(None),
                    Err(GatewayError::Refused(RefusalCode::OrderUnknown))
                        if now.seconds() - record.updated_at.seconds() > UNKNOWN_ORDER_GRACE_SECONDS =>
                    {
                        BankWord::failed("order_unknown_at_bank")
                    }
                    Err(_) => return Ok(None),
                }
            }
            _ => return Ok(None),
        };
        let settled = self.apply_bank_word(vault, actor, op, record, &raw, word).await?;
        Ok(Some(settled.status))
    }
}
