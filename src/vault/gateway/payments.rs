//! Debits and their follow-ups at a channel. Only a debit opens anything
//! (the sealed agreement number), and only once its opening's audit record
//! is durable (`Recorded<PayOpening>`): in the debit's own first write, or
//! alone. Query, close and refund carry the platform's own order number
//! only.

use super::{Gateway, GatewayError};
use crate::audit::Actor;
use crate::channel::protocol::{
    OrderRequest, OrderState, PayRequest, RefundRequest, RefundResponse, RefusalCode, NOTIFY_PATH,
};
use crate::channel::statement::{StatementPart, StatementRequest};
use crate::domain::ids::{ChannelId, Currency};
use crate::domain::operation::Operation;
use crate::domain::refs::AgreementRef;
use crate::store::Store;
use crate::vault::{AuditObject, JoinedRecord, Opening, Recorded, Vault};

/// One debit as the gateway sends it.
#[derive(Clone, Debug)]
pub struct PayOrder<'a> {
    pub channel: &'a ChannelId,
    pub agreement_ref: &'a AgreementRef,
    /// The platform's payment id: the bank's order number.
    pub order_no: &'a str,
    pub amount: u64,
    pub currency: Currency,
}

/// A debit the gateway will send once its opening is recorded. Its fields
/// stay inside the vault; the layers above only carry it to the write.
pub struct PayOpening {
    channel: ChannelId,
    agreement_ref: AgreementRef,
    order_no: String,
    amount: u64,
    currency: Currency,
}

impl Opening for PayOpening {
    /// The audit record of the agreement number leaving for the channel.
    fn record(&self) -> JoinedRecord {
        JoinedRecord {
            operation: Operation::GatewayPay,
            object: Some(AuditObject::named_by_vault(self.order_no.clone())),
            detail: Some(format!(
                "channel={} agreement={} amount={} {}",
                self.channel.as_str(),
                self.agreement_ref,
                self.amount,
                self.currency.as_str()
            )),
        }
    }
}

impl Gateway {
    /// Where banks post results: set once, when the listener's address is known.
    pub fn set_notify_base(&self, base: String) {
        let _first_set_wins = self.notify_base.set(base);
    }

    /// The channel an agreement was signed at, and whether it is still live.
    pub async fn agreement_channel<S: Store>(
        &self,
        vault: &Vault<S>,
        agreement_ref: &AgreementRef,
    ) -> Result<(ChannelId, bool), GatewayError> {
        let record = vault.agreement_record(agreement_ref).await?;
        Ok((record.channel, record.cancelled_at.is_none()))
    }

    /// A debit about to be sent: the channel is configured and the
    /// agreement is live there. Nothing is opened yet; its audit record
    /// is written with the debit's first write (`Vault::reserve_joined`)
    /// or by `record_opening`.
    pub async fn open_pay<S: Store>(
        &self,
        vault: &Vault<S>,
        order: PayOrder<'_>,
    ) -> Result<PayOpening, GatewayError> {
        self.channel(order.channel)?;
        let record = vault.agreement_record(order.agreement_ref).await?;
        if &record.channel != order.channel || record.cancelled_at.is_some() {
            return Err(GatewayError::Refused(RefusalCode::AgreementUnknown));
        }
        Ok(PayOpening {
            channel: order.channel.clone(),
            agreement_ref: order.agreement_ref.clone(),
            order_no: order.order_no.to_owned(),
            amount: order.amount,
            currency: order.currency,
        })
    }

    /// An opening's audit record in a write of its own (a binding start;
    /// a debit whose first write is behind it: a backup channel's signing
    /// came between).
    pub async fn record_opening<S: Store, O: Opening>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        opening: O,
    ) -> Result<Recorded<O>, GatewayError> {
        vault.record_entry(actor, opening.record().entry()).await?;
        Ok(Recorded::new(opening))
    }

    /// Debits under a stored agreement whose opening is on the trail. The
    /// answer is the bank's view of the order: succeeded, failed,
    /// processing or user paying.
    pub async fn pay<S: Store>(
        &self,
        vault: &Vault<S>,
        recorded: Recorded<PayOpening>,
    ) -> Result<OrderState, GatewayError> {
        let order = recorded.into_inner();
        let channel = self.channel(&order.channel)?;
        let (record, agreement_no) = vault.open_agreement(&order.agreement_ref).await?;
        if record.channel != order.channel || record.cancelled_at.is_some() {
            return Err(GatewayError::Refused(RefusalCode::AgreementUnknown));
        }
        let notify_url = self
            .notify_base
            .get()
            .map(|base| format!("{base}{NOTIFY_PATH}/{}", order.channel.as_str()));
        let state = channel
            .pay(PayRequest {
                merchant_id: self.merchant_id.clone(),
                order_no: order.order_no.clone(),
                agreement_no,
                amount: order.amount,
                currency: order.currency.as_str().to_owned(),
                notify_url,
            })
            .await?;
        check_echo(&state, &order.order_no, order.amount)?;
        Ok(state)
    }

    /// The bank's view of an order.
    pub async fn query(&self, channel: &ChannelId, order_no: &str) -> Result<OrderState, GatewayError> {
        let state = self.channel(channel)?.query(self.order(order_no)).await?;
        if state.order_no != order_no {
            return Err(GatewayError::Protocol("query answered for another order".into()));
        }
        Ok(state)
    }

    /// Closes an unpaid order; the answer says if it was paid after all.
    pub async fn close(&self, channel: &ChannelId, order_no: &str) -> Result<OrderState, GatewayError> {
        let state = self.channel(channel)?.close(self.order(order_no)).await?;
        if state.order_no != order_no {
            return Err(GatewayError::Protocol("close answered for another order".into()));
        }
        Ok(state)
    }

    pub async fn refund(
        &self,
        channel: &ChannelId,
        order_no: &str,
        refund_no: &str,
        amount: u64,
    ) -> Result<RefundResponse, GatewayError> {
        let request = RefundRequest {
            merchant_id: self.merchant_id.clone(),
            order_no: order_no.to_owned(),
            refund_no: refund_no.to_owned(),
            amount,
        };
        let answer = self.channel(channel)?.refund(request).await?;
        if answer.refund_no != refund_no || answer.amount != amount {
            return Err(GatewayError::Protocol(
                "refund answer does not match the request".into(),
            ));
        }
        Ok(answer)
    }

    /// The part from `offset` of the channel's statement of settlement
    /// date `date` (`YYYY-MM-DD`), as it was published: the caller puts
    /// the parts together and checks the whole.
    pub async fn statement_part(
        &self,
        channel: &ChannelId,
        date: &str,
        offset: u64,
    ) -> Result<StatementPart, GatewayError> {
        let request = StatementRequest {
            merchant_id: self.merchant_id.clone(),
            date: date.to_owned(),
            offset,
        };
        let part = self.channel(channel)?.statement(request).await?;
        if part.date != date {
            return Err(GatewayError::Protocol("the statement is of another date".into()));
        }
        Ok(part)
    }

    fn order(&self, order_no: &str) -> OrderRequest {
        OrderRequest {
            merchant_id: self.merchant_id.clone(),
            order_no: order_no.to_owned(),
        }
    }
}

/// A bank answer about another order or amount is not an answer.
fn check_echo(state: &OrderState, order_no: &str, amount: u64) -> Result<(), GatewayError> {
    if state.order_no != order_no || state.amount != amount {
        return Err(GatewayError::Protocol(
            "the bank answered for another order or amount".into(),
        ));
    }
    Ok(())
}
