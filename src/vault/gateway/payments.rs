//! Debits and their follow-ups at a channel. Only `pay` opens anything
//! (the sealed agreement number), and it is audited before it leaves;
//! query, close and refund carry the platform's own order number only.

use super::{Gateway, GatewayError};
use crate::audit::{Actor, Outcome};
use crate::channel::protocol::{
    OrderRequest, OrderState, PayRequest, RefundRequest, RefundResponse, RefusalCode, NOTIFY_PATH,
};
use crate::domain::ids::{ChannelId, Currency};
use crate::domain::operation::Operation;
use crate::domain::refs::AgreementRef;
use crate::store::Store;
use crate::vault::audited::Audit;
use crate::vault::Vault;

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

    /// Debits under a stored agreement. The answer is the bank's view of
    /// the order: succeeded, failed, processing or user paying.
    pub async fn pay<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        order: PayOrder<'_>,
    ) -> Result<OrderState, GatewayError> {
        let channel = self.channel(order.channel)?;
        let (record, agreement_no) = vault.open_agreement(order.agreement_ref).await?;
        if &record.channel != order.channel || record.cancelled_at.is_some() {
            return Err(GatewayError::Refused(RefusalCode::AgreementUnknown));
        }
        let audit =
            Audit::new(actor, Operation::GatewayPay, Some(order.order_no.to_owned())).with_detail(format!(
                "channel={} agreement={} amount={} {}",
                order.channel.as_str(),
                order.agreement_ref,
                order.amount,
                order.currency.as_str()
            ));
        vault.record(&audit, Outcome::Success, None).await?;
        let notify_url = self
            .notify_base
            .get()
            .map(|base| format!("{base}{NOTIFY_PATH}/{}", order.channel.as_str()));
        let state = channel
            .pay(PayRequest {
                merchant_id: self.merchant_id.clone(),
                order_no: order.order_no.to_owned(),
                agreement_no,
                amount: order.amount,
                currency: order.currency.as_str().to_owned(),
                notify_url,
            })
            .await?;
        check_echo(&state, order.order_no, order.amount)?;
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
