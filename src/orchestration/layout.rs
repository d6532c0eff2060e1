//! Where orchestration records live in the store's key space.

use super::binding::BindingId;
use crate::vault::refs::{CardRef, UserId};

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
