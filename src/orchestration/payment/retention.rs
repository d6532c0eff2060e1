//! Retention of payment records (PCI DSS 3.2.1 disposal): a payment that
//! is settled, whose order can no longer be paid or cancelled, and that
//! nothing changed since the cut-off is deleted with its order and binding
//! index entries, one audited write each. Its merchant order id may then
//! be used again. A payment holds masked data and references only, so what
//! a store file keeps of the deleted bytes is no cardholder data.

use super::super::{layout, OrchestrationError, Orchestrator};
use super::{PaymentRecord, PaymentStatus, RefundStatus};
use crate::audit::{Actor, Outcome};
use crate::domain::operation::Operation;
use crate::domain::time::Timestamp;
use crate::store::{keyspace, Batch, Store};
use crate::vault::{decode, Layer, Vault, VaultError};
use std::time::Duration;

/// Payments read per page.
const PAGE: usize = 256;

/// Whether `record` may be deleted at `now` for a `cutoff`: nothing may
/// still happen to it (no bank result, refund answer, retry of its order or
/// cancel), and it was last changed before the cut-off.
fn purgeable(record: &PaymentRecord, cutoff: Timestamp, now: Timestamp, cancel_window: Duration) -> bool {
    let window = i64::try_from(cancel_window.as_secs()).unwrap_or(i64::MAX);
    let cancellable = record.status == PaymentStatus::Succeeded
        && !record.cancelled
        && now.seconds().saturating_sub(record.created_at.seconds()) <= window;
    !record.status.in_flight()
        && !record
            .refunds
            .iter()
            .any(|r| r.status == RefundStatus::Processing)
        && record.expires_at < now
        && !cancellable
        && record.updated_at < cutoff
}

impl Orchestrator {
    /// Retention: deletes (as `actor`) every payment `purgeable` for
    /// `cutoff`, each with its indexes and an audit record. A payment
    /// changed meanwhile is kept for a later pass. Returns how many.
    pub async fn purge_payments_settled_before<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        cutoff: Timestamp,
    ) -> Result<usize, OrchestrationError> {
        let view = vault.store_view(Layer::Orchestration);
        let mut purged = 0;
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = view
                .scan_prefix(keyspace::PAYMENT.as_bytes(), after.as_deref(), PAGE)
                .await
                .map_err(VaultError::from)?;
            let now = Timestamp::now();
            for (key, raw) in &page {
                let record: PaymentRecord = decode(raw, "payment")?;
                if purgeable(&record, cutoff, now, self.payments.cancel_window)
                    && self.purge_payment(vault, actor, key, raw, &record).await?
                {
                    purged += 1;
                }
            }
            match page.last() {
                Some((key, _)) if page.len() == PAGE => after = Some(key.clone()),
                _ => return Ok(purged),
            }
        }
    }

    /// Deletes the payment read as `raw`, unless it changed since.
    async fn purge_payment<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        key: &[u8],
        raw: &[u8],
        record: &PaymentRecord,
    ) -> Result<bool, OrchestrationError> {
        let order = layout::order(&record.merchant, &record.order_id);
        let mut batch = Batch::new();
        batch
            .expect_equals(key.to_vec(), raw.to_vec())
            .delete(key.to_vec())
            .expect_equals(order.clone(), record.id.as_str().as_bytes().to_vec())
            .delete(order)
            .delete(layout::binding_payment(&record.binding, &record.id))
            .delete(layout::open_payment(&record.id));
        let audit = Self::payment_audit(vault, Operation::PaymentPurge, record);
        let detail = audit
            .detail
            .map(|d| format!("{d} last_changed={}", record.updated_at.seconds()));
        Ok(vault
            .commit_from_above(
                batch,
                actor,
                Operation::PaymentPurge,
                audit.object,
                Outcome::Success,
                detail,
            )
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::{ChannelId, Currency, MerchantId};
    use crate::domain::refs::{CardRef, ReservationId, UserId};
    use crate::orchestration::binding::BindingId;
    use crate::orchestration::payment::{OrderId, PaymentId, Refund, RefundId};
    use crate::vault::token::TokenNumber;

    const NOW: i64 = 1_800_000_000;
    const DAY: i64 = 86_400;

    /// A payment made and last changed `age` seconds before `NOW`, whose
    /// order expired an hour after it was made.
    fn payment(status: PaymentStatus, age: i64) -> PaymentRecord {
        let at = Timestamp(NOW - age);
        PaymentRecord {
            id: PaymentId::generate().unwrap(),
            order_id: OrderId::parse("o-1").unwrap(),
            merchant: MerchantId::parse("M001").unwrap(),
            user: UserId::parse("u1").unwrap(),
            binding: BindingId::generate().unwrap(),
            token: TokenNumber::parse("6200000000000005").unwrap(),
            card_ref: CardRef::generate().unwrap(),
            masked_card: "424242******4242".to_owned(),
            amount: 100,
            currency: Currency::parse("CNY").unwrap(),
            requested_channel: ChannelId::parse("bank-a").unwrap(),
            channel: ChannelId::parse("bank-a").unwrap(),
            attempts: Vec::new(),
            reservation: ReservationId::generate().unwrap(),
            status,
            bank_txn_no: None,
            failure: None,
            backup_signing: None,
            refunds: Vec::new(),
            cancelled: false,
            expires_at: Timestamp(NOW - age + 3_600),
            created_at: at,
            updated_at: at,
        }
    }

    fn purgeable_now(record: &PaymentRecord, retention: i64) -> bool {
        purgeable(
            record,
            Timestamp(NOW - retention),
            Timestamp(NOW),
            Duration::from_secs(DAY as u64),
        )
    }

    #[test]
    fn only_a_settled_payment_nothing_can_still_change_goes_after_the_cut_off() {
        for status in PaymentStatus::ALL {
            let old = payment(status, 10 * DAY);
            assert_eq!(
                purgeable_now(&old, 5 * DAY),
                !status.in_flight(),
                "{status:?}: settled ones only"
            );
            let recent = payment(status, 4 * DAY);
            assert!(
                !purgeable_now(&recent, 5 * DAY),
                "{status:?}: changed after the cut-off"
            );
        }
    }

    #[test]
    fn a_pending_refund_an_open_cancel_window_or_a_payable_order_keeps_it() {
        let mut refunding = payment(PaymentStatus::Succeeded, 10 * DAY);
        refunding.refunds.push(Refund {
            id: RefundId::parse("r1").unwrap(),
            amount: 50,
            status: RefundStatus::Processing,
            failure: None,
            created_at: refunding.created_at,
            updated_at: refunding.created_at,
        });
        assert!(!purgeable_now(&refunding, 5 * DAY));
        refunding.refunds[0].status = RefundStatus::Succeeded;
        assert!(purgeable_now(&refunding, 5 * DAY));

        // Paid within the cancel window: a cancel may still refund it,
        // however short the retention. Cancelled, nothing more can.
        let mut paid = payment(PaymentStatus::Succeeded, DAY / 2);
        assert!(!purgeable_now(&paid, 60));
        paid.cancelled = true;
        assert!(purgeable_now(&paid, 60));

        // An order not yet expired may be retried (an unsent debit).
        let mut unsent = payment(PaymentStatus::Unsent, 120);
        assert!(!purgeable_now(&unsent, 60));
        unsent.expires_at = Timestamp(NOW - 1);
        assert!(purgeable_now(&unsent, 60));
    }
}
