//! Bulk seeding for the reconciliation benchmark: N settled payments
//! written straight into a vault's store (not through the API, which would
//! measure the payment flow instead), and the same N payments as lines of
//! bank-sim's ledger, so a day's statement of N lines matches them. The
//! i-th payment is the same on both sides: order `pay_` and i scrambled
//! into 32 hex digits (spread like the random ids payments really have),
//! an amount drawn from i. Development only, like the simulator itself.

use crate::channel::statement::{LineKind, StatementLine};
use crate::domain::ids::{ChannelId, Currency, MerchantId};
use crate::domain::refs::{CardRef, ReservationId, UserId};
use crate::domain::time::Timestamp;
use crate::orchestration::binding::BindingId;
use crate::orchestration::payment::{OrderId, PaymentId, PaymentRecord, PaymentStatus};
use crate::store::{keyspace, Batch, Store, StoreError};
use crate::vault::token::TokenNumber;

/// Payments per store batch.
const BATCH: u64 = 10_000;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SeedError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("commit: {0}")]
    Commit(String),
    #[error("a seeded value did not parse: {0}")]
    Value(String),
}

/// An odd multiplier: i times it (mod 2^128) is one-to-one, and spreads
/// consecutive i over the whole id space.
const SPREAD: u128 = 0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835;

/// The i-th seeded payment's id (the bank's order number) and amount.
pub fn payment(i: u64) -> (String, u64) {
    let id = u128::from(i).wrapping_mul(SPREAD);
    (format!("pay_{id:032x}"), 100 + i % 9_900)
}

/// The i-th seeded payment as bank-sim's ledger line, traded at `at_s`.
pub fn line(i: u64, at_s: i64) -> StatementLine {
    let (order, amount) = payment(i);
    StatementLine {
        trade_time: at_s,
        channel_txn_no: format!("SEED{i:012}"),
        order_id: order,
        refund_id: String::new(),
        kind: LineKind::Payment,
        amount,
        currency: "CNY".to_owned(),
        fee: 0,
    }
}

fn parsed<T, E: std::fmt::Display>(value: Result<T, E>) -> Result<T, SeedError> {
    value.map_err(|e| SeedError::Value(e.to_string()))
}

/// Writes `count` settled payments on `channel` for `merchant`, made at
/// `at`, into `store`, `BATCH` at a time.
pub async fn payments<S: Store>(
    store: &S,
    channel: &ChannelId,
    merchant: &MerchantId,
    count: u64,
    at: Timestamp,
) -> Result<(), SeedError> {
    let user = parsed(UserId::parse("seed-user"))?;
    let binding = parsed(BindingId::parse(&format!("bnd_{:032x}", 1)))?;
    let token = parsed(TokenNumber::parse("8100000000001232"))?;
    let card_ref = parsed(CardRef::parse(&format!("crd_{:032x}", 1)))?;
    let currency = parsed(Currency::parse("CNY"))?;
    let mut start = 0;
    while start < count {
        let mut batch = Batch::new();
        for i in start..(start + BATCH).min(count) {
            let (order, amount) = payment(i);
            let record = PaymentRecord {
                id: parsed(PaymentId::parse(&order))?,
                order_id: parsed(OrderId::parse(&format!("seed-{i}")))?,
                merchant: merchant.clone(),
                user: user.clone(),
                binding: binding.clone(),
                token: token.clone(),
                card_ref: card_ref.clone(),
                masked_card: "621799******0001".to_owned(),
                amount,
                currency,
                requested_channel: channel.clone(),
                channel: channel.clone(),
                attempts: Vec::new(),
                reservation: parsed(ReservationId::parse(&format!("rsv_{i:032x}")))?,
                status: PaymentStatus::Succeeded,
                bank_txn_no: Some(format!("SEED{i:012}")),
                failure: None,
                backup_signing: None,
                refunds: Vec::new(),
                cancelled: false,
                expires_at: at,
                created_at: at,
                updated_at: at,
            };
            let value = parsed(crate::vault::encode(&record))?;
            batch.put(keyspace::PAYMENT.key(&record.id), value);
        }
        store
            .commit(batch)
            .await
            .map_err(|e| SeedError::Commit(e.to_string()))?;
        start += BATCH;
    }
    Ok(())
}
