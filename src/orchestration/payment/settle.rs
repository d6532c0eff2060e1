//! Applying a bank's word to an unsettled payment: the reservation is
//! committed (paid) or released (failed, closed), then the payment's new
//! status is written. Callers hold the payment's lock and have checked it
//! is still in flight, so each result is applied once.

use super::super::{OrchestrationError, Orchestrator};
use super::{PaymentRecord, PaymentStatus};
use crate::audit::Actor;
use crate::domain::operation::Operation;
use crate::domain::time::Timestamp;
use crate::store::Store;
use crate::vault::{ReservationState, Vault, VaultError};

/// What the bank said about an order.
pub(super) struct BankWord {
    pub status: PaymentStatus,
    pub bank_txn_no: Option<String>,
    pub failure: Option<String>,
}

impl BankWord {
    pub fn failed(reason: &str) -> Self {
        BankWord {
            status: PaymentStatus::Failed,
            bank_txn_no: None,
            failure: Some(reason.to_owned()),
        }
    }

    /// No channel of the route was reached (the reservation is back
    /// already; releasing again is harmless).
    pub fn unsent() -> Self {
        BankWord {
            status: PaymentStatus::Unsent,
            bank_txn_no: None,
            failure: Some("channel_unavailable".to_owned()),
        }
    }

    pub fn closed(reason: &str) -> Self {
        BankWord {
            status: PaymentStatus::Closed,
            bank_txn_no: None,
            failure: Some(reason.to_owned()),
        }
    }
}

impl From<crate::channel::protocol::OrderState> for BankWord {
    fn from(state: crate::channel::protocol::OrderState) -> Self {
        BankWord {
            status: state.status.into(),
            bank_txn_no: Some(state.bank_txn_no),
            failure: state.failure.map(|code| code.as_str().to_owned()),
        }
    }
}

impl Orchestrator {
    pub(super) async fn apply_bank_word<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        operation: Operation,
        mut record: PaymentRecord,
        raw: &[u8],
        word: BankWord,
    ) -> Result<PaymentRecord, OrchestrationError> {
        let now = Timestamp::now();
        let status = record.status.transition(word.status)?;
        match status {
            PaymentStatus::Succeeded => {
                match vault.commit_reservation(actor, &record.reservation, now).await {
                    Ok(_) => {}
                    Err(VaultError::ReservationSettled(ReservationState::Released)) => {
                        // The bank took the money after the platform gave the
                        // use back (closed on time-out, then paid): recorded
                        // as paid and flagged for reconciliation.
                        tracing::error!(payment = %record.id, "paid at the bank after its reservation was released");
                        record.failure = Some("paid_after_release".to_owned());
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            PaymentStatus::Failed | PaymentStatus::Closed | PaymentStatus::Unsent => {
                vault.release_reservation(actor, &record.reservation, now).await?;
            }
            PaymentStatus::AwaitingCode | PaymentStatus::Processing | PaymentStatus::UserPaying => {}
        }
        record.status = status;
        if word.bank_txn_no.is_some() {
            record.bank_txn_no = word.bank_txn_no;
        }
        if word.failure.is_some() {
            record.failure = word.failure;
        }
        if !record.status.in_flight() {
            record.backup_signing = None;
        }
        record.updated_at = now;
        let batch = Self::update_payment_batch(raw, &record)?;
        self.commit_payment(vault, actor, operation, &record, batch)
            .await?;
        Ok(record)
    }
}
