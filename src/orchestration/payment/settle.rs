//! Applying a bank's word to an unsettled payment: the reservation is
//! committed (paid) or released (failed, closed, unsent) in the same write
//! as the payment's new status. Callers hold the payment's lock and have
//! checked it is still in flight, so each result is applied once.

use super::super::{OrchestrationError, Orchestrator};
use super::write::{Answering, NoAnswer, PaymentWrite};
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
    /// Applies `word` with nobody waiting on the answer (notifications,
    /// the settler, cancels, queries).
    pub(super) async fn apply_bank_word<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        operation: Operation,
        record: PaymentRecord,
        raw: &[u8],
        word: BankWord,
    ) -> Result<PaymentRecord, OrchestrationError> {
        self.settle_payment(vault, actor, operation, record, raw, word, &NoAnswer)
            .await
    }

    /// Applies `word`: the reservation's settlement (committed when paid,
    /// released when failed, closed or unsent), the payment's new record,
    /// its audit record and `answer`, in one write. A payment still in
    /// flight settles nothing and is written alone.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn settle_payment<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        operation: Operation,
        mut record: PaymentRecord,
        raw: &[u8],
        word: BankWord,
        answer: &dyn Answering,
    ) -> Result<PaymentRecord, OrchestrationError> {
        let now = Timestamp::now();
        record.status = record.status.transition(word.status)?;
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
        // A caller's record taken meanwhile (the same key answered on
        // another node) must not keep the payment's own write from landing.
        for answer in [answer, &NoAnswer as &dyn Answering] {
            match self
                .write_settled(vault, actor, operation, &mut record, raw, answer, now)
                .await
            {
                Err(OrchestrationError::Vault(VaultError::JoinedStale)) => {}
                other => return other.map(|()| record),
            }
        }
        // The payment itself changed: another node (its settler, a
        // notification) applied the bank's word first. Its record stands.
        let (stored, stored_raw) = self.load_payment(vault, &record.id).await?;
        if stored_raw != raw {
            return Ok(stored);
        }
        Err(VaultError::JoinedStale.into())
    }

    #[allow(clippy::too_many_arguments)]
    async fn write_settled<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        operation: Operation,
        record: &mut PaymentRecord,
        raw: &[u8],
        answer: &dyn Answering,
        now: Timestamp,
    ) -> Result<(), OrchestrationError> {
        let write = PaymentWrite {
            record: record.clone(),
            before: Some(raw),
            requires: None,
            audit: Self::payment_audit(vault, operation, record),
            answer,
        };
        let settled = match record.status {
            PaymentStatus::Succeeded => {
                vault
                    .commit_reservation_joined(actor, &record.reservation, now, &write)
                    .await
            }
            PaymentStatus::Failed | PaymentStatus::Closed | PaymentStatus::Unsent => {
                vault
                    .release_reservation_joined(actor, &record.reservation, now, &write)
                    .await
            }
            PaymentStatus::AwaitingCode | PaymentStatus::Processing | PaymentStatus::UserPaying => {
                let batch = write.batch(record)?;
                return self.commit_payment(vault, actor, operation, record, batch).await;
            }
        };
        match settled {
            Ok(_) => Ok(()),
            Err(VaultError::ReservationSettled(ReservationState::Released))
                if record.status == PaymentStatus::Succeeded =>
            {
                // The bank took the money after the platform gave the use
                // back (closed on time-out, then paid): recorded as paid
                // and flagged for reconciliation.
                tracing::error!(payment = %record.id, "paid at the bank after its reservation was released");
                record.failure = Some(super::PAID_AFTER_RELEASE.to_owned());
                let batch = write.batch(record)?;
                self.commit_payment(vault, actor, operation, record, batch).await
            }
            Err(e) => Err(e.into()),
        }
    }
}
