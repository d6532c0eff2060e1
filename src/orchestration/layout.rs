//! Where orchestration records live in the store's key space.

use super::binding::BindingId;
use super::payment::{OrderId, PaymentId};
use crate::domain::ids::{ChannelId, MerchantId};
use crate::domain::refs::{CardRef, UserId};
use crate::store::keyspace;
use crate::vault::token::TokenNumber;

pub(crate) fn channel_state(channel: &ChannelId) -> Vec<u8> {
    keyspace::CHANNEL_STATE.key(channel.as_str())
}

pub(crate) const CHANNEL_STATE_PREFIX: &[u8] = keyspace::CHANNEL_STATE.as_bytes();

pub(crate) fn binding(id: &BindingId) -> Vec<u8> {
    keyspace::BINDING.key(id)
}

/// Bindings of one user: `user-binding/<user>/<binding>` → empty.
pub(crate) fn user_bindings_prefix(user: &UserId) -> Vec<u8> {
    keyspace::USER_BINDING.key(format_args!("{user}/"))
}

pub(crate) fn user_binding(user: &UserId, id: &BindingId) -> Vec<u8> {
    keyspace::USER_BINDING.key(format_args!("{user}/{id}"))
}

/// Bindings of one card (any user): `card-binding/<card>/<binding>` → empty.
pub(crate) fn card_bindings_prefix(card: &CardRef) -> Vec<u8> {
    keyspace::CARD_BINDING.key(format_args!("{card}/"))
}

pub(crate) fn card_binding(card: &CardRef, id: &BindingId) -> Vec<u8> {
    keyspace::CARD_BINDING.key(format_args!("{card}/{id}"))
}

/// Payment token → the binding it debits under.
pub(crate) fn token_binding(token: &TokenNumber) -> Vec<u8> {
    keyspace::TOKEN_BINDING.key(token)
}

pub(crate) fn payment(id: &PaymentId) -> Vec<u8> {
    keyspace::PAYMENT.key(id)
}

/// Where payments whose ids start at `order` would be (a pass's bound).
pub(crate) fn payments_at(order: &str) -> Vec<u8> {
    keyspace::PAYMENT.key(order)
}

/// A merchant's order → its payment: one payment per order.
pub(crate) fn order(merchant: &MerchantId, order: &OrderId) -> Vec<u8> {
    keyspace::ORDER.key(format_args!("{}/{}", merchant.as_str(), order.as_str()))
}

/// Payments of one binding: `binding-payment/<binding>/<payment>` → empty.
pub(crate) fn binding_payments_prefix(binding: &BindingId) -> Vec<u8> {
    keyspace::BINDING_PAYMENT.key(format_args!("{binding}/"))
}

pub(crate) fn binding_payment(binding: &BindingId, payment: &PaymentId) -> Vec<u8> {
    keyspace::BINDING_PAYMENT.key(format_args!("{binding}/{payment}"))
}

/// Payments not yet settled: `open-payment/<payment>` → empty. The
/// settler walks these (and picks them up again after a restart).
pub(crate) const OPEN_PAYMENTS: &[u8] = keyspace::OPEN_PAYMENT.as_bytes();

pub(crate) fn open_payment(payment: &PaymentId) -> Vec<u8> {
    keyspace::OPEN_PAYMENT.key(payment)
}

pub(crate) fn recon_run(id: &super::reconcile::RunId) -> Vec<u8> {
    keyspace::RECON_RUN.key(id)
}

/// Runs of one channel and date: `recon-date/<channel>/<date>/<version>`
/// → run id; the version is zero-padded, so a scan lists them in order.
pub(crate) fn recon_dates_prefix(channel: &ChannelId, date: &str) -> Vec<u8> {
    keyspace::RECON_DATE.key(format_args!("{}/{date}/", channel.as_str()))
}

pub(crate) fn recon_date(channel: &ChannelId, date: &str, version: u32) -> Vec<u8> {
    keyspace::RECON_DATE.key(format_args!("{}/{date}/{version:06}", channel.as_str()))
}

/// Discrepancies of one run: `recon-discrepancy/<run>/<n>`.
pub(crate) fn recon_discrepancies_prefix(run: &super::reconcile::RunId) -> Vec<u8> {
    keyspace::RECON_DISCREPANCY.key(format_args!("{run}/"))
}

pub(crate) fn recon_discrepancy(run: &super::reconcile::RunId, n: u64) -> Vec<u8> {
    keyspace::RECON_DISCREPANCY.key(format_args!("{run}/{n:09}"))
}

/// What was done about discrepancy `n` of `run`.
pub(crate) fn recon_resolution(run: &super::reconcile::RunId, n: u64) -> Vec<u8> {
    keyspace::RECON_RESOLUTION.key(format_args!("{run}/{n:09}"))
}

/// An unresolved discrepancy: `recon-open/<run>/<n>` → empty; resolving
/// it deletes the entry.
pub(crate) fn recon_open_of(run: &super::reconcile::RunId) -> Vec<u8> {
    keyspace::RECON_OPEN.key(format_args!("{run}/"))
}

pub(crate) fn recon_open(run: &super::reconcile::RunId, n: u64) -> Vec<u8> {
    keyspace::RECON_OPEN.key(format_args!("{run}/{n:09}"))
}

/// A payment's or refund's place under a channel: `<channel>/<order>/<refund>`
/// (ids are letters, digits, '.', '_' and '-', so '/' separates them).
fn recon_line(channel: &ChannelId, key: &super::reconcile::LineKey) -> String {
    format!("{}/{}/{}", channel.as_str(), key.order_id, key.refund_id)
}

/// An open 短款: `recon-short/<channel>/<order>/<refund>` → the discrepancy.
pub(crate) fn recon_shorts_of(channel: &ChannelId) -> Vec<u8> {
    keyspace::RECON_SHORT.key(format_args!("{}/", channel.as_str()))
}

pub(crate) fn recon_short(channel: &ChannelId, key: &super::reconcile::LineKey) -> Vec<u8> {
    keyspace::RECON_SHORT.key(recon_line(channel, key))
}

/// The run whose file first showed a payment or refund:
/// `recon-seen/<channel>/<order>/<refund>` → run and date.
pub(crate) fn recon_seen(channel: &ChannelId, key: &super::reconcile::LineKey) -> Vec<u8> {
    keyspace::RECON_SEEN.key(recon_line(channel, key))
}

/// A refund a run made at the channel for an order closed here:
/// `recon-refund/<channel>/<order>/<refund>` → amount and time.
pub(crate) fn recon_refunds_of(channel: &ChannelId) -> Vec<u8> {
    keyspace::RECON_REFUND.key(format_args!("{}/", channel.as_str()))
}

pub(crate) fn recon_refund(channel: &ChannelId, key: &super::reconcile::LineKey) -> Vec<u8> {
    keyspace::RECON_REFUND.key(recon_line(channel, key))
}
