//! A payment's record written together with its reservation's change (held
//! for a debit's attempt, settled on the bank's word), the payment's audit
//! record and the caller's remembered answer: one durable write, so a crash
//! leaves all of them or none (no held reservation without its payment, no
//! settled reservation with its payment still in flight).

use super::super::Orchestrator;
use super::{OrderSubject, PaymentRecord, PaymentView};
use crate::domain::operation::Operation;
use crate::store::{Batch, Store};
use crate::vault::{Joined, JoinedRecord, Reservation, Vault, VaultError};

/// What the caller remembers of its answer (the API's idempotency record),
/// built from the payment record about to be written.
pub(crate) trait Answering: Sync {
    fn writes(&self, record: &PaymentRecord) -> Result<Batch, VaultError>;
}

/// Nobody waits on this write's answer (a notification, the settler), or
/// the caller's record was taken meanwhile by another request.
pub(super) struct NoAnswer;

impl Answering for NoAnswer {
    fn writes(&self, _record: &PaymentRecord) -> Result<Batch, VaultError> {
        Ok(Batch::new())
    }
}

/// A debit's answer: the payment as this call created (or retried) it.
pub(super) struct DebitAnswer<'a>(pub &'a dyn Joined<(PaymentView, bool)>);

impl Answering for DebitAnswer<'_> {
    fn writes(&self, record: &PaymentRecord) -> Result<Batch, VaultError> {
        self.0.writes(&(record.view(), true))
    }
}

/// The payment as the caller's answer (a cancel, a confirm).
pub(super) struct ViewAnswer<'a>(pub &'a dyn Joined<PaymentView>);

impl Answering for ViewAnswer<'_> {
    fn writes(&self, record: &PaymentRecord) -> Result<Batch, VaultError> {
        self.0.writes(&record.view())
    }
}

/// The payment's side of a reservation's write (`Vault::reserve_joined`,
/// `*_reservation_joined`).
pub(super) struct PaymentWrite<'a> {
    /// The new record; its reservation is the one the write holds.
    pub record: PaymentRecord,
    /// The record as read; `None` for a new payment.
    pub before: Option<&'a [u8]>,
    /// A key that must still hold these bytes (the binding as read,
    /// signed, for a debit's first write), so an unbind begun on any node
    /// makes the write fail.
    pub requires: Option<(Vec<u8>, Vec<u8>)>,
    pub audit: JoinedRecord,
    pub answer: &'a dyn Answering,
}

impl PaymentWrite<'_> {
    /// The payment's writes for `record`: the record, its indexes, the
    /// precondition and the answer.
    pub(super) fn batch(&self, record: &PaymentRecord) -> Result<Batch, VaultError> {
        let mut batch = match self.before {
            None => Orchestrator::create_payment_batch(record)?,
            Some(raw) => Orchestrator::update_payment_batch(raw, record)?,
        };
        if let Some((key, value)) = &self.requires {
            batch.expect_equals(key.clone(), value.clone());
        }
        batch.append(self.answer.writes(record)?);
        Ok(batch)
    }

    /// The record as written under `reservation`.
    pub(super) fn record_under(&self, reservation: &Reservation) -> PaymentRecord {
        let mut record = self.record.clone();
        record.reservation = reservation.id.clone();
        record
    }
}

impl Joined<Reservation> for PaymentWrite<'_> {
    fn writes(&self, reservation: &Reservation) -> Result<Batch, VaultError> {
        self.batch(&self.record_under(reservation))
    }

    fn records(&self, _reservation: &Reservation) -> Vec<JoinedRecord> {
        vec![self.audit.clone()]
    }
}

impl Orchestrator {
    /// The audit record of a payment's write: status, order, amount,
    /// channel, token, and the reason of a failure.
    pub(super) fn payment_audit<S: Store>(
        vault: &Vault<S>,
        operation: Operation,
        record: &PaymentRecord,
    ) -> JoinedRecord {
        let mut detail = format!(
            "status={} {} amount={} {} channel={} token={}",
            record.status.as_str(),
            vault
                .audit_object(&OrderSubject::new(None, &record.order_id))
                .as_str(),
            record.amount,
            record.currency.as_str(),
            record.channel.as_str(),
            record.token
        );
        if let Some(reason) = &record.failure {
            detail.push_str(&format!(" reason={reason}"));
        }
        JoinedRecord {
            operation,
            object: Some(vault.audit_object(&record.id)),
            detail: Some(detail),
        }
    }
}
