//! The simulated bank's payments: debits under an agreement (settled at
//! once, asynchronously with repeated notifications, or "user paying"),
//! queries, closing unpaid orders, refunds, and the bank's own limits
//! (per transaction, per card per day, the account balance).

use crate::channel::protocol::{
    Notification, OrderRequest, OrderState, PayRequest, PayStatus, RefundRequest, RefundResponse, Refusal,
    RefusalCode,
};
use crate::channel::statement::{LineKind, StatementLine};
use crate::sim::bank::Bank;
use crate::sim::faults::PayMode;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{MutexGuard, PoisonError};
use zeroize::Zeroizing;

struct Order {
    merchant_id: String,
    card_no: Zeroizing<String>,
    state: OrderState,
    day: i64,
    refunds: HashMap<String, u64>,
    refunded: u64,
    notifications_sent: u32,
}

impl Order {
    /// Closes the order if it is not paid yet; a paid one stays paid.
    fn close_unpaid(&mut self) {
        if matches!(self.state.status, PayStatus::Processing | PayStatus::UserPaying) {
            self.state.status = PayStatus::Closed;
        }
    }
}

#[derive(Default)]
pub(super) struct Orders {
    by_no: HashMap<String, Order>,
    /// What each card has paid (and not been refunded): debit balance use.
    spent: HashMap<String, u64>,
    /// (card, day) → amount paid that day, for the daily limit.
    daily: HashMap<(String, i64), u64>,
    txn_seq: u64,
    /// Every success, in order: what the statements are cut from.
    pub(super) ledger: Vec<StatementLine>,
    /// Lines seeded in bulk for a benchmark (`sim::seed`), with their
    /// merchant: no order stands behind them.
    pub(super) seeded: Vec<(String, StatementLine)>,
}

/// What the admin decides for an order in flight (`Bank::decide`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Paid,
    Closed,
}

/// What the admin API shows of an order: never the card number.
#[derive(Clone, Serialize)]
pub struct OrderView {
    pub order_no: String,
    pub status: PayStatus,
    pub amount: u64,
    pub refunded: u64,
    pub notifications_sent: u32,
}

/// A notification to deliver: where, and what.
pub struct Delivery {
    pub notify_url: String,
    pub notification: Notification,
    pub repeats: u32,
    pub delay_ms: u64,
}

fn refuse(code: RefusalCode, message: &str) -> Refusal {
    Refusal {
        code,
        message: message.to_owned(),
    }
}

fn today() -> i64 {
    crate::domain::time::Timestamp::now().seconds().div_euclid(86_400)
}

/// A ledger line for a success of `order` now.
fn ledger_line(
    order_no: &str,
    txn_no: String,
    refund_no: &str,
    amount: u64,
    currency: &str,
) -> StatementLine {
    let kind = match refund_no {
        "" => LineKind::Payment,
        // The vault's cancel refunds a paid order in full under this id.
        "cancel" => LineKind::Revoke,
        _ => LineKind::Refund,
    };
    StatementLine {
        trade_time: crate::domain::time::Timestamp::now().seconds(),
        channel_txn_no: txn_no,
        order_id: order_no.to_owned(),
        refund_id: refund_no.to_owned(),
        kind,
        amount,
        currency: currency.to_owned(),
        fee: 0,
    }
}

impl Orders {
    pub(super) fn merchant_of(&self, order_no: &str) -> Option<&str> {
        self.by_no.get(order_no).map(|o| o.merchant_id.as_str())
    }

    fn order_mut(&mut self, merchant_id: &str, order_no: &str) -> Result<&mut Order, Refusal> {
        self.by_no
            .get_mut(order_no)
            .filter(|o| o.merchant_id == merchant_id)
            .ok_or_else(|| refuse(RefusalCode::OrderUnknown, "no such order"))
    }

    /// Takes `amount` from `card_no`'s balance and `day`'s total, or
    /// refuses (nothing taken) when the balance does not cover it or a sum
    /// would pass `u64`: a counter is checked, never wrapped or clamped.
    fn charge(&mut self, card_no: &str, day: i64, amount: u64, balance: u64) -> Result<(), Refusal> {
        let insufficient = || refuse(RefusalCode::InsufficientFunds, "insufficient funds");
        let spent = self.spent.get(card_no).copied().unwrap_or(0);
        let daily = self.daily.get(&(card_no.to_owned(), day)).copied().unwrap_or(0);
        let spent = spent
            .checked_add(amount)
            .filter(|total| *total <= balance)
            .ok_or_else(insufficient)?;
        let daily = daily
            .checked_add(amount)
            .ok_or_else(|| refuse(RefusalCode::OverDailyLimit, "over the daily limit"))?;
        self.spent.insert(card_no.to_owned(), spent);
        self.daily.insert((card_no.to_owned(), day), daily);
        Ok(())
    }

    fn give_back(&mut self, card_no: &str, amount: u64) {
        if let Some(spent) = self.spent.get_mut(card_no) {
            *spent = spent.saturating_sub(amount);
        }
    }

    /// Amount paid or waiting to be paid today on `card_no`; `None` past
    /// `u64`, which is over every limit.
    fn committed_today(&self, card_no: &str, day: i64) -> Option<u64> {
        let daily = self.daily.get(&(card_no.to_owned(), day)).copied().unwrap_or(0);
        self.by_no
            .values()
            .filter(|o| o.card_no.as_str() == card_no && o.day == day)
            .filter(|o| matches!(o.state.status, PayStatus::Processing | PayStatus::UserPaying))
            .try_fold(daily, |sum, o| sum.checked_add(o.state.amount))
    }
}

impl Bank {
    fn orders(&self) -> MutexGuard<'_, Orders> {
        self.orders.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a debit. A repeated order number with the same terms gets the
    /// order's current state; with other terms, `order_conflict`.
    pub fn pay(&self, request: &PayRequest) -> Result<(OrderState, Option<Delivery>), Refusal> {
        let faults = self.faults();
        let card_no = self
            .agreement_card(&request.merchant_id, &request.agreement_no)
            .ok_or_else(|| refuse(RefusalCode::AgreementUnknown, "no active agreement"))?;
        let mut orders = self.orders();
        if let Some(order) = orders.by_no.get(&request.order_no) {
            let same = order.merchant_id == request.merchant_id
                && order.card_no == card_no
                && order.state.amount == request.amount
                && order.state.currency == request.currency;
            return if same {
                Ok((order.state.clone(), None))
            } else {
                Err(refuse(
                    RefusalCode::OrderConflict,
                    "order number used with other terms",
                ))
            };
        }
        let holder = self
            .holders
            .get(card_no.as_str())
            .ok_or_else(|| refuse(RefusalCode::CardUnknown, "card not issued by this bank"))?;
        if faults.per_transaction_limit.is_some_and(|l| request.amount > l) {
            return Err(refuse(
                RefusalCode::OverTransactionLimit,
                "over the per-transaction limit",
            ));
        }
        let day = today();
        if faults.daily_limit.is_some_and(|l| {
            orders
                .committed_today(&card_no, day)
                .and_then(|committed| committed.checked_add(request.amount))
                .is_none_or(|total| total > l)
        }) {
            return Err(refuse(RefusalCode::OverDailyLimit, "over the daily limit"));
        }
        let spent = orders.spent.get(card_no.as_str()).copied().unwrap_or(0);
        if spent
            .checked_add(request.amount)
            .is_none_or(|total| total > holder.balance_fen)
        {
            return Err(refuse(RefusalCode::InsufficientFunds, "insufficient funds"));
        }
        orders.txn_seq += 1;
        let status = match faults.pay_mode {
            PayMode::Sync => PayStatus::Succeeded,
            PayMode::Async => PayStatus::Processing,
            PayMode::UserPaying => PayStatus::UserPaying,
        };
        let state = OrderState {
            order_no: request.order_no.clone(),
            bank_txn_no: format!("BT{:012}", orders.txn_seq),
            status,
            amount: request.amount,
            currency: request.currency.clone(),
            failure: None,
        };
        if status == PayStatus::Succeeded {
            orders.charge(&card_no, day, request.amount, holder.balance_fen)?;
            let line = ledger_line(
                &request.order_no,
                state.bank_txn_no.clone(),
                "",
                request.amount,
                &request.currency,
            );
            orders.ledger.push(line);
        }
        let delivery = match (status, &request.notify_url) {
            (PayStatus::Processing, Some(url)) => Some(Delivery {
                notify_url: url.clone(),
                notification: Notification {
                    merchant_id: request.merchant_id.clone(),
                    order_no: request.order_no.clone(),
                    bank_txn_no: state.bank_txn_no.clone(),
                    status: PayStatus::Succeeded,
                    amount: request.amount,
                    currency: request.currency.clone(),
                    failure: None,
                },
                repeats: faults.notify_repeats,
                delay_ms: faults.notify_delay_ms,
            }),
            _ => None,
        };
        orders.by_no.insert(
            request.order_no.clone(),
            Order {
                merchant_id: request.merchant_id.clone(),
                card_no,
                state: state.clone(),
                day,
                refunds: HashMap::new(),
                refunded: 0,
                notifications_sent: 0,
            },
        );
        Ok((state, delivery))
    }

    /// An asynchronous order settles: paid, unless it was closed meanwhile.
    /// Returns whether it is (now or already) paid, so a notification goes out.
    pub fn settle(&self, order_no: &str) -> bool {
        let mut orders = self.orders();
        let Some(order) = orders.by_no.get_mut(order_no) else {
            return false;
        };
        match order.state.status {
            PayStatus::Processing => {
                let (card, day, amount) = (order.card_no.to_string(), order.day, order.state.amount);
                let balance = self.holders.get(card.as_str()).map_or(0, |h| h.balance_fen);
                // Other payments may have used the balance meanwhile: an
                // order the balance no longer covers fails, as at a bank.
                let charged = orders.charge(&card, day, amount, balance);
                let Some(order) = orders.by_no.get_mut(order_no) else {
                    return false;
                };
                match charged {
                    Ok(()) => {
                        order.state.status = PayStatus::Succeeded;
                        let line = ledger_line(
                            order_no,
                            order.state.bank_txn_no.clone(),
                            "",
                            order.state.amount,
                            &order.state.currency,
                        );
                        orders.ledger.push(line);
                        true
                    }
                    Err(refusal) => {
                        order.state.status = PayStatus::Failed;
                        order.state.failure = Some(refusal.code);
                        false
                    }
                }
            }
            PayStatus::Succeeded => true,
            _ => false,
        }
    }

    /// Admin: the bank decides an order still in flight, as its own back
    /// office would (paid: charged like a settling async order; closed:
    /// unpaid), with no notification: the platform learns it by query.
    /// A settled order keeps its result. `None`: no such order.
    pub fn decide(&self, order_no: &str, decision: Decision) -> Option<OrderState> {
        match decision {
            Decision::Paid => {
                self.settle(order_no);
            }
            Decision::Closed => self.orders().by_no.get_mut(order_no)?.close_unpaid(),
        }
        self.orders().by_no.get(order_no).map(|o| o.state.clone())
    }

    /// Admin: adds `count` seeded payments of `merchant_id`, traded at
    /// `at_s`, to the ledger (`sim::seed::line`).
    pub fn seed_ledger(&self, merchant_id: &str, count: u64, at_s: i64) {
        let mut orders = self.orders();
        orders.seeded.reserve(usize::try_from(count).unwrap_or(0));
        for i in 0..count {
            orders
                .seeded
                .push((merchant_id.to_owned(), crate::sim::seed::line(i, at_s)));
        }
    }

    pub fn count_notification(&self, order_no: &str) {
        if let Some(order) = self.orders().by_no.get_mut(order_no) {
            order.notifications_sent += 1;
        }
    }

    pub fn query(&self, request: &OrderRequest) -> Result<OrderState, Refusal> {
        let mut orders = self.orders();
        Ok(orders
            .order_mut(&request.merchant_id, &request.order_no)?
            .state
            .clone())
    }

    /// Closes an unpaid order. A paid one stays paid (the answer says so:
    /// the merchant refunds it instead); closing twice answers alike.
    ///
    /// With `close_races_payment`, an order in flight answers closed but
    /// stays in flight: the user was paying at that moment, and the back
    /// office may still take the money (`decide`), which only the
    /// statement then shows.
    pub fn close(&self, request: &OrderRequest) -> Result<OrderState, Refusal> {
        let races = self.faults().close_races_payment;
        let mut orders = self.orders();
        let order = orders.order_mut(&request.merchant_id, &request.order_no)?;
        let in_flight = matches!(order.state.status, PayStatus::Processing | PayStatus::UserPaying);
        if races && in_flight {
            let mut answered = order.state.clone();
            answered.status = PayStatus::Closed;
            return Ok(answered);
        }
        order.close_unpaid();
        Ok(order.state.clone())
    }

    pub fn refund(&self, request: &RefundRequest) -> Result<RefundResponse, Refusal> {
        let mut orders = self.orders();
        let order = orders.order_mut(&request.merchant_id, &request.order_no)?;
        if let Some(&amount) = order.refunds.get(&request.refund_no) {
            if amount != request.amount {
                return Err(refuse(
                    RefusalCode::OrderConflict,
                    "refund number used with another amount",
                ));
            }
            return Ok(RefundResponse {
                refund_no: request.refund_no.clone(),
                amount,
                refunded_total: order.refunded,
            });
        }
        if order.state.status != PayStatus::Succeeded {
            return Err(refuse(
                RefusalCode::OrderNotPaid,
                "only a paid order can be refunded",
            ));
        }
        let refunded = order.refunded.checked_add(request.amount);
        if request.amount == 0 || refunded.is_none_or(|total| total > order.state.amount) {
            return Err(refuse(
                RefusalCode::RefundExceedsPaid,
                "refunds would exceed the paid amount",
            ));
        }
        let Some(refunded) = refunded else {
            return Err(refuse(
                RefusalCode::RefundExceedsPaid,
                "refunds would exceed the paid amount",
            ));
        };
        order.refunded = refunded;
        order.refunds.insert(request.refund_no.clone(), request.amount);
        let (card, refunded_total) = (order.card_no.to_string(), order.refunded);
        let currency = order.state.currency.clone();
        orders.give_back(&card, request.amount);
        orders.txn_seq += 1;
        let line = ledger_line(
            &request.order_no,
            format!("RF{:012}", orders.txn_seq),
            &request.refund_no,
            request.amount,
            &currency,
        );
        orders.ledger.push(line);
        Ok(RefundResponse {
            refund_no: request.refund_no.clone(),
            amount: request.amount,
            refunded_total,
        })
    }

    pub fn order_views(&self) -> Vec<OrderView> {
        let mut views: Vec<OrderView> = self
            .orders()
            .by_no
            .values()
            .map(|o| OrderView {
                order_no: o.state.order_no.clone(),
                status: o.state.status,
                amount: o.state.amount,
                refunded: o.refunded,
                notifications_sent: o.notifications_sent,
            })
            .collect();
        views.sort_by(|a, b| a.order_no.cmp(&b.order_no));
        views
    }
}

#[cfg(test)]
mod tests {
    use super::super::cardholders;
    use super::super::faults::{Faults, VerifyMode};
    use super::*;
    use crate::channel::protocol::{ApplyRequest, ApplyResult};

    /// A bank whose embedded cardholder 6222020000000000018 has signed.
    fn signed_bank(faults: Faults) -> (Bank, String) {
        let bank = Bank::new(
            cardholders::embedded().unwrap(),
            Faults {
                verify: VerifyMode::CardAndName,
                ..faults
            },
        );
        let applied = bank
            .apply(&ApplyRequest {
                merchant_id: "m".into(),
                user_ref: "u".into(),
                request_no: "r1".into(),
                card_no: Zeroizing::new("6222020000000000018".into()),
                name: Zeroizing::new("张三".into()),
                id_no: Zeroizing::new("11010519491231002X".into()),
                phone: Zeroizing::new("13800138000".into()),
            })
            .unwrap();
        assert_eq!(applied.result, ApplyResult::Signed);
        (bank, applied.agreement_no.unwrap())
    }

    fn pay(bank: &Bank, agreement: &str, order: &str, amount: u64) -> Result<OrderState, RefusalCode> {
        bank.pay(&PayRequest {
            merchant_id: "m".into(),
            order_no: order.into(),
            agreement_no: Zeroizing::new(agreement.into()),
            amount,
            currency: "CNY".into(),
            notify_url: None,
        })
        .map(|(state, _)| state)
        .map_err(|r| r.code)
    }

    #[test]
    fn limits_refunds_and_repeats_follow_the_banks_rules() {
        let (bank, agreement) = signed_bank(Faults {
            per_transaction_limit: Some(5_000),
            daily_limit: Some(8_000),
            ..Faults::default()
        });
        assert_eq!(
            pay(&bank, &agreement, "o1", 5_001).unwrap_err(),
            RefusalCode::OverTransactionLimit
        );
        assert_eq!(
            pay(&bank, &agreement, "o1", 5_000).unwrap().status,
            PayStatus::Succeeded
        );
        assert_eq!(
            pay(&bank, &agreement, "o2", 3_001).unwrap_err(),
            RefusalCode::OverDailyLimit
        );
        // A repeated order number: same terms, same order; other terms, refused.
        assert_eq!(
            pay(&bank, &agreement, "o1", 5_000).unwrap().bank_txn_no,
            "BT000000000001"
        );
        assert_eq!(
            pay(&bank, &agreement, "o1", 4_000).unwrap_err(),
            RefusalCode::OrderConflict
        );
        assert_eq!(
            pay(&bank, "AG-unknown", "o3", 1).unwrap_err(),
            RefusalCode::AgreementUnknown
        );

        let refund = |no: &str, amount| {
            bank.refund(&RefundRequest {
                merchant_id: "m".into(),
                order_no: "o1".into(),
                refund_no: no.into(),
                amount,
            })
        };
        assert_eq!(refund("r1", 3_000).unwrap().refunded_total, 3_000);
        assert_eq!(
            refund("r1", 3_000).unwrap().refunded_total,
            3_000,
            "a repeat is one refund"
        );
        assert_eq!(
            refund("r2", 2_001).unwrap_err().code,
            RefusalCode::RefundExceedsPaid
        );
        assert_eq!(bank.order_views()[0].refunded, 3_000);
    }

    /// Issue 17, item 1: the simulator's balances are checked, never
    /// wrapped or clamped: sums past `u64` and past the balance are
    /// refusals, and an async order the balance no longer covers fails.
    #[test]
    fn balances_are_checked_sums() {
        let (bank, agreement) = signed_bank(Faults {
            daily_limit: Some(u64::MAX),
            ..Faults::default()
        });
        assert_eq!(
            pay(&bank, &agreement, "d1", 100).unwrap().status,
            PayStatus::Succeeded
        );
        assert_eq!(
            pay(&bank, &agreement, "d2", u64::MAX).unwrap_err(),
            RefusalCode::OverDailyLimit,
            "today's total past u64 is over any daily limit"
        );

        let (bank, agreement) = signed_bank(Faults::default());
        assert_eq!(
            pay(&bank, &agreement, "o1", 100).unwrap().status,
            PayStatus::Succeeded
        );
        for (order, amount) in [("o2", u64::MAX), ("o3", u64::MAX - 99), ("o4", 1_000_000 - 99)] {
            assert_eq!(
                pay(&bank, &agreement, order, amount).unwrap_err(),
                RefusalCode::InsufficientFunds,
                "{order}"
            );
        }
        assert_eq!(
            pay(&bank, &agreement, "o5", 1_000_000 - 100).unwrap().status,
            PayStatus::Succeeded,
            "the balance to the last fen"
        );
        let refund = bank.refund(&RefundRequest {
            merchant_id: "m".into(),
            order_no: "o1".into(),
            refund_no: "r1".into(),
            amount: u64::MAX,
        });
        assert_eq!(refund.unwrap_err().code, RefusalCode::RefundExceedsPaid);

        let (bank, agreement) = signed_bank(Faults {
            pay_mode: PayMode::Async,
            ..Faults::default()
        });
        for order in ["a1", "a2"] {
            assert_eq!(
                pay(&bank, &agreement, order, 1_000_000).unwrap().status,
                PayStatus::Processing
            );
        }
        assert!(bank.settle("a1"));
        assert!(!bank.settle("a2"), "the balance is spent");
        let query = |order: &str| {
            bank.query(&OrderRequest {
                merchant_id: "m".into(),
                order_no: order.into(),
            })
            .unwrap()
        };
        assert_eq!(query("a1").status, PayStatus::Succeeded);
        let failed = query("a2");
        assert_eq!(
            (failed.status, failed.failure),
            (PayStatus::Failed, Some(RefusalCode::InsufficientFunds))
        );
    }

    #[test]
    fn an_unpaid_order_closes_and_a_closed_async_order_is_never_paid() {
        let (bank, agreement) = signed_bank(Faults {
            pay_mode: PayMode::Async,
            ..Faults::default()
        });
        let state = pay(&bank, &agreement, "o1", 100).unwrap();
        assert_eq!(state.status, PayStatus::Processing);
        let order = OrderRequest {
            merchant_id: "m".into(),
            order_no: "o1".into(),
        };
        assert_eq!(bank.close(&order).unwrap().status, PayStatus::Closed);
        assert!(!bank.settle("o1"), "closed before it settled: no notification");
        assert_eq!(bank.query(&order).unwrap().status, PayStatus::Closed);
    }
}
