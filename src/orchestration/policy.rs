//! How bindings behave: code lifetimes and attempts, what happens when a
//! card is already bound to another user, and the controls of the payment
//! token a signed binding gets.

use crate::config::{BindingSection, PaymentSection, SharedCardPolicy, TokenDefaults};
use crate::domain::ids::{ChannelId, Currency};
use crate::domain::time::Timestamp;
use crate::domain::validation::ValidationError;
use crate::vault::token::{ControlsSpec, DomainControls};
use std::collections::BTreeSet;
use std::time::Duration;

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
        let settings = BindingSection::default();
        BindingPolicy {
            shared_card: settings.shared_card,
            code_ttl: Duration::from_secs(settings.code_ttl_s),
            max_code_attempts: settings.max_code_attempts,
            token: settings.token,
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
        PaymentPolicy::from_settings(&PaymentSection::default())
    }
}
