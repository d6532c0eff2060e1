//! How bindings behave: code lifetimes and attempts, what happens when a
//! card is already bound to another user, and the controls of the payment
//! token a signed binding gets.

use crate::time::Timestamp;
use crate::vault::token::{ChannelId, ControlsSpec, Currency, DomainControls};
use crate::vault::validation::ValidationError;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::time::Duration;

/// A card already bound (signed) by another platform user.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SharedCardPolicy {
    /// Refuse (the default): one card, one platform account. The refusal
    /// does not say which user holds it.
    #[default]
    Refuse,
    /// Allow a separate binding (family cards); the bank decides, since it
    /// keeps one agreement per merchant user.
    Allow,
}

/// Domain controls of the token a signed binding gets.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenDefaults {
    pub max_uses: u32,
    /// Minor units (fen).
    pub per_transaction_limit: u64,
    pub cumulative_limit: u64,
    pub currency: String,
    pub validity_days: u32,
}

impl Default for TokenDefaults {
    fn default() -> Self {
        TokenDefaults {
            max_uses: 1_000,
            per_transaction_limit: 5_000_000,
            cumulative_limit: 50_000_000,
            currency: "CNY".to_owned(),
            validity_days: 365,
        }
    }
}

impl TokenDefaults {
    /// The controls for a token usable on `channels` only (a binding's
    /// channel and its backups), from `now`.
    pub fn controls(
        &self,
        channels: BTreeSet<ChannelId>,
        now: Timestamp,
    ) -> Result<DomainControls, ValidationError> {
        DomainControls::new(ControlsSpec {
            max_uses: self.max_uses,
            per_transaction_limit: self.per_transaction_limit,
            cumulative_limit: self.cumulative_limit,
            currency: Currency::parse(&self.currency)?,
            valid_from: now,
            valid_until: Timestamp(now.seconds() + i64::from(self.validity_days) * 86_400),
            channels,
            merchants: None,
        })
    }
}

#[derive(Clone, Debug)]
pub struct BindingPolicy {
    pub shared_card: SharedCardPolicy,
    /// How long an SMS code (the bank's or ours) may be confirmed.
    pub code_ttl: Duration,
    /// Wrong codes before the binding fails.
    pub max_code_attempts: u32,
    pub token: TokenDefaults,
}

impl Default for BindingPolicy {
    fn default() -> Self {
        BindingPolicy {
            shared_card: SharedCardPolicy::Refuse,
            code_ttl: Duration::from_secs(300),
            max_code_attempts: 5,
            token: TokenDefaults::default(),
        }
    }
}

/// How debits behave.
#[derive(Clone, Debug)]
pub struct PaymentPolicy {
    /// The furthest ahead an order may expire.
    pub max_order_ttl: Duration,
    /// A "user paying" debit is closed after this long without a result.
    pub payment_code_timeout: Duration,
    /// How often an unsettled payment is queried at its channel.
    pub poll_interval: Duration,
    /// A paid order can be cancelled (fully refunded) this long after it was made.
    pub cancel_window: Duration,
}

impl Default for PaymentPolicy {
    fn default() -> Self {
        PaymentPolicy {
            max_order_ttl: Duration::from_secs(86_400),
            payment_code_timeout: Duration::from_secs(30),
            poll_interval: Duration::from_secs(2),
            cancel_window: Duration::from_secs(86_400),
        }
    }
}
