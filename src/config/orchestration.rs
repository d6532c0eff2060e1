//! `[binding]`, `[payment]`, `[routing]` and `[reconciliation]`: how the orchestration layer
//! behaves. It builds its policies from these
//! (`orchestration::OrchestrationConfig::from_settings`).

use super::{within, ConfigError};
use serde::Deserialize;

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

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PaymentSection {
    /// The furthest ahead an order may expire. Default 86400 s (a day).
    pub max_order_ttl_s: u64,
    /// A "user paying" debit is closed after this long. Default 30 s.
    pub payment_code_timeout_s: u64,
    /// How often unsettled payments are asked about. Default 2000 ms.
    pub poll_interval_ms: u64,
    /// How long after a payment a cancel may still refund it. Default 86400 s.
    pub cancel_window_s: u64,
    /// A settled payment nothing changed for this long (and that can no
    /// longer be cancelled or retried) is deleted, audited by
    /// `local:retention`, at the cards' `retention_check_interval_s`.
    /// Default 0: kept until deleted otherwise. Payment rules in China ask
    /// for transaction records to be kept for at least five years.
    pub retention_s: u64,
}

impl Default for PaymentSection {
    fn default() -> Self {
        PaymentSection {
            max_order_ttl_s: 86_400,
            payment_code_timeout_s: 30,
            poll_interval_ms: 2_000,
            cancel_window_s: 86_400,
            retention_s: 0,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingSection {
    /// Consecutive failures that mark a channel down. Default 3.
    pub failure_threshold: u32,
    /// How long a channel marked down by failures is skipped. Default 30 s.
    pub cooldown_s: u64,
    pub routes: Vec<RouteSection>,
}

impl Default for RoutingSection {
    fn default() -> Self {
        RoutingSection {
            failure_threshold: 3,
            cooldown_s: 30,
            routes: Vec::new(),
        }
    }
}

/// A primary channel and its backups, in the order they are tried.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSection {
    pub primary: String,
    pub backups: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BindingSection {
    /// A card already bound by another user: `refuse` (default) or `allow`.
    pub shared_card: SharedCardPolicy,
    /// How long an SMS code may be confirmed. Default 300 s.
    pub code_ttl_s: u64,
    /// Wrong codes before a binding fails. Default 5.
    pub max_code_attempts: u32,
    /// Controls of the payment token a signed binding gets.
    pub token: TokenDefaults,
}

impl Default for BindingSection {
    fn default() -> Self {
        BindingSection {
            shared_card: SharedCardPolicy::Refuse,
            code_ttl_s: 300,
            max_code_attempts: 5,
            token: TokenDefaults::default(),
        }
    }
}

impl BindingSection {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        within("binding.code_ttl_s", self.code_ttl_s, 30..=1_800)?;
        within("binding.max_code_attempts", self.max_code_attempts, 1..=10)?;
        within("binding.token.validity_days", self.token.validity_days, 1..=3_650)?;
        Ok(())
    }
}

impl PaymentSection {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        within("payment.max_order_ttl_s", self.max_order_ttl_s, 60..=86_400)?;
        within(
            "payment.payment_code_timeout_s",
            self.payment_code_timeout_s,
            1..=600,
        )?;
        within("payment.poll_interval_ms", self.poll_interval_ms, 100..=60_000)?;
        within("payment.cancel_window_s", self.cancel_window_s, 60..=604_800)?;
        Ok(())
    }
}

impl RoutingSection {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        within("routing.failure_threshold", self.failure_threshold, 1..=100)?;
        within("routing.cooldown_s", self.cooldown_s, 1..=3_600)?;
        Ok(())
    }
}

/// What a run does, without asking, with a payment the bank took after the
/// platform had given its token's use back (`paid_after_release`, 长款).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AfterRelease {
    /// Leave it open for a person to resolve (the default).
    #[default]
    Queue,
    /// Refund it in full through the channel, as a refund of the payment.
    Refund,
    /// Accept it as paid: the token's controls are asked again (one more
    /// use and the amount, committed), and it is refunded as `Refund`
    /// would when they refuse.
    Accept,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReconciliationSection {
    /// How many days a 短款 (a success no statement showed) is held open
    /// for a later file before a run escalates it for recovery. Default 3
    /// (1 to 30).
    pub short_window_days: u32,
    pub paid_after_release: AfterRelease,
    /// The Beijing time (`HH:MM`) after which each configured channel's
    /// statement of the day before is reconciled, once, as
    /// `local:reconciliation`, on the node holding the task's lease.
    /// Absent (the default): runs are started by hand only.
    pub daily_at: Option<String>,
    /// How often the daily run looks for a day still to reconcile.
    /// Default 300 s (10 to 3600).
    pub check_interval_s: u64,
    /// About how many of a statement's lines a run holds at a time: a day
    /// of more is matched in passes by order id (at most 256), each
    /// reading the kept file again. Default 100000 (1 to 10000000).
    pub lines_per_pass: u64,
}

impl Default for ReconciliationSection {
    fn default() -> Self {
        ReconciliationSection {
            short_window_days: 3,
            paid_after_release: AfterRelease::Queue,
            daily_at: None,
            check_interval_s: 300,
            lines_per_pass: 100_000,
        }
    }
}

impl ReconciliationSection {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        within("reconciliation.short_window_days", self.short_window_days, 1..=30)?;
        within(
            "reconciliation.check_interval_s",
            self.check_interval_s,
            10..=3_600,
        )?;
        within(
            "reconciliation.lines_per_pass",
            self.lines_per_pass,
            1..=10_000_000,
        )?;
        if let Some(at) = &self.daily_at {
            minute_of_day(at).ok_or_else(|| {
                super::invalid(
                    "reconciliation.daily_at",
                    "must be HH:MM (Beijing time), 00:00 to 23:59",
                )
            })?;
        }
        Ok(())
    }
}

/// `HH:MM` as minutes after midnight.
pub fn minute_of_day(text: &str) -> Option<u16> {
    let (h, m) = text.split_once(':')?;
    let two_digits = |t: &str| {
        (t.len() == 2 && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse::<u16>().ok())
            .flatten()
    };
    let (h, m) = (two_digits(h)?, two_digits(m)?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}
