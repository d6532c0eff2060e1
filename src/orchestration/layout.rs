//! Where orchestration records live in the store's key space.

use super::binding::BindingId;
use super::payment::{OrderId, PaymentId};
use crate::domain::ids::MerchantId;
use crate::domain::refs::{CardRef, UserId};
use crate::vault::token::TokenNumber;

pub(crate) fn binding(id: &BindingId) -> Vec<u8> {
    format!("binding/{id}").into_bytes()
}

/// Bindings of one user: `user-binding/<user>/<binding>` → empty.
pub(crate) fn user_bindings_prefix(user: &UserId) -> Vec<u8> {
    format!("user-binding/{user}/").into_bytes()
}

pub(crate) fn user_binding(user: &UserId, id: &BindingId) -> Vec<u8> {
    format!("user-binding/{user}/{id}").into_bytes()
}

/// Bindings of one card (any user): `card-binding/<card>/<binding>` → empty.
pub(crate) fn card_bindings_prefix(card: &CardRef) -> Vec<u8> {
    format!("card-binding/{card}/").into_bytes()
}

pub(crate) fn card_binding(card: &CardRef, id: &BindingId) -> Vec<u8> {
    format!("card-binding/{card}/{id}").into_bytes()
}

/// Payment token → the binding it debits under.
pub(crate) fn token_binding(token: &TokenNumber) -> Vec<u8> {
    format!("token-binding/{token}").into_bytes()
}

pub(crate) fn payment(id: &PaymentId) -> Vec<u8> {
    format!("payment/{id}").into_bytes()
}

/// A merchant's order → its payment: one payment per order.
pub(crate) fn order(merchant: &MerchantId, order: &OrderId) -> Vec<u8> {
    format!("order/{}/{}", merchant.as_str(), order.as_str()).into_bytes()
}

/// Payments of one binding: `binding-payment/<binding>/<payment>` → empty.
pub(crate) fn binding_payments_prefix(binding: &BindingId) -> Vec<u8> {
    format!("binding-payment/{binding}/").into_bytes()
}

pub(crate) fn binding_payment(binding: &BindingId, payment: &PaymentId) -> Vec<u8> {
    format!("binding-payment/{binding}/{payment}").into_bytes()
}

/// Payments not yet settled: `open-payment/<payment>` → empty. The
/// settler walks these (and picks them up again after a restart).
pub(crate) const OPEN_PAYMENTS: &[u8] = b"open-payment/";

pub(crate) fn open_payment(payment: &PaymentId) -> Vec<u8> {
    format!("open-payment/{payment}").into_bytes()
}
