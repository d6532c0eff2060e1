//! Fault injection: set at start-up by flags, changed at run time by the
//! admin call `PUT /sim/admin/faults`. Applies to the quick-pay calls.

use crate::channel::protocol::{Refusal, RefusalCode};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum VerifyMode {
    /// Card, name, ID number and reserved phone must all match; the bank
    /// signs only after its SMS code comes back.
    #[default]
    FourElements,
    /// UnionPay style: card and name only, and the channel signs at once
    /// (pre-binding); the platform must run its own SMS check.
    CardAndName,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Faults {
    /// Added before every quick-pay answer.
    pub latency_ms: u64,
    /// Share of quick-pay calls (0.0 to 1.0) answered 500 `system_error`.
    pub error_rate: f64,
    /// Every quick-pay call answers 503 `unavailable`.
    pub unavailable: bool,
    /// Whether this bank sends its own SMS code when signing.
    pub sends_sms: bool,
    pub verify: VerifyMode,
    /// How the bank answers a debit.
    pub pay_mode: PayMode,
    /// An asynchronous payment settles (and is notified) this long after
    /// it was accepted.
    pub notify_delay_ms: u64,
    /// Each notification is delivered this many times, concurrently, the
    /// way banks retry.
    pub notify_repeats: u32,
    /// The bank's own limits for quick pay, in fen: per transaction and
    /// per card per day. `None`: no limit.
    pub per_transaction_limit: Option<u64>,
    pub daily_limit: Option<u64>,
    /// How the daily statements are cut and what is wrong with them.
    pub statement: StatementFaults,
    /// Closing an order in flight answers "closed" but leaves it in
    /// flight, so the back office can still pay it: a bank's race.
    pub close_races_payment: bool,
}

/// The statement's cut-off and the discrepancies reconciliation is tested
/// against. Order ids are the merchant's (the vault's payment ids).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatementFaults {
    /// 日切: a trade in the last this many seconds of a Beijing day is on
    /// the next day's file. 0 to 86399.
    pub cutoff_s: u64,
    /// Orders whose lines are left out (the bank shows less: 短款).
    pub omit: Vec<String>,
    /// Orders with an extra successful payment line the bank alone has
    /// (长款), of `extra_amount` fen.
    pub extra: Vec<String>,
    pub extra_amount: u64,
    /// Orders whose payment line says one fen more.
    pub alter: Vec<String>,
    /// Orders whose payment line appears twice.
    pub duplicate: Vec<String>,
    /// The file cut in half, summary gone.
    pub truncate: bool,
    /// A digest that is not the file's.
    pub bad_digest: bool,
    /// The most bytes one part of the file carries (0: 4 MiB); a part
    /// ends at a line's end.
    pub part_bytes: u64,
    /// Each part names the file's size one byte more than it is.
    pub wrong_size: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum PayMode {
    /// The result is in the answer.
    #[default]
    Sync,
    /// "processing"; the result follows by notification.
    Async,
    /// Payment-code style: "user paying" until the user acts (never, in
    /// the simulator) or the merchant closes the order.
    UserPaying,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            latency_ms: 0,
            error_rate: 0.0,
            unavailable: false,
            sends_sms: true,
            verify: VerifyMode::FourElements,
            pay_mode: PayMode::Sync,
            notify_delay_ms: 200,
            notify_repeats: 1,
            per_transaction_limit: None,
            daily_limit: None,
            statement: StatementFaults::default(),
            close_races_payment: false,
        }
    }
}

impl Faults {
    pub fn check(&self) -> Result<(), &'static str> {
        if !(0.0..=1.0).contains(&self.error_rate) {
            return Err("error_rate must be between 0.0 and 1.0");
        }
        if self.latency_ms > 60_000 {
            return Err("latency_ms must be at most 60000");
        }
        if self.notify_delay_ms > 600_000 {
            return Err("notify_delay_ms must be at most 600000");
        }
        if !(1..=20).contains(&self.notify_repeats) {
            return Err("notify_repeats must be between 1 and 20");
        }
        if self.statement.cutoff_s >= 86_400 {
            return Err("statement.cutoff_s must be below 86400");
        }
        Ok(())
    }

    /// Waits the injected latency, then fails the call if a fault says so.
    pub async fn before_call(&self) -> Result<(), Refusal> {
        if self.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(self.latency_ms)).await;
        }
        if self.unavailable {
            return Err(Refusal {
                code: RefusalCode::Unavailable,
                message: "the bank is unavailable".to_owned(),
            });
        }
        if self.error_rate > 0.0 {
            let draw = crate::domain::random::below(1_000_000).unwrap_or(0);
            #[allow(clippy::cast_precision_loss)] // below 2^20: exact
            if (draw as f64) < self.error_rate * 1_000_000.0 {
                return Err(Refusal {
                    code: RefusalCode::SystemError,
                    message: "injected system error".to_owned(),
                });
            }
        }
        Ok(())
    }
}
