//! The daily run: once the Beijing time of day passes `daily_at`, each
//! configured channel's statement of the day before is reconciled, once.
//! "Once" is read from the store (a date with a run is done), so a node
//! that takes the task over, or a restart, does not run a date twice; a
//! channel that cannot be reached, or a file refused, is tried again at
//! the next check.

use super::super::{OrchestrationError, Orchestrator};
use super::run::RunView;
use crate::audit::Actor;
use crate::domain::date::{SettlementDate, BEIJING_OFFSET_S};
use crate::domain::time::Timestamp;
use crate::store::Store;
use crate::vault::Vault;

/// The date a daily run at `now` reconciles, if `daily_at` (minutes after
/// Beijing midnight) has passed today: the day before.
pub fn due_date(now_s: i64, daily_at: u16) -> Option<SettlementDate> {
    let minute = (now_s + BEIJING_OFFSET_S).rem_euclid(86_400) / 60;
    (minute >= i64::from(daily_at)).then(|| SettlementDate::of_time(now_s - 86_400))
}

impl Orchestrator {
    /// Reconciles, as `actor`, each channel's due date not reconciled yet;
    /// the runs made, and the channels that failed with why.
    pub async fn reconcile_due<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<(Vec<RunView>, Vec<(String, OrchestrationError)>), OrchestrationError> {
        let Some(daily_at) = self.reconciliation.daily_at else {
            return Ok((Vec::new(), Vec::new()));
        };
        let Some(date) = due_date(now.seconds(), daily_at) else {
            return Ok((Vec::new(), Vec::new()));
        };
        let date_text = date.to_string();
        let (mut runs, mut failed) = (Vec::new(), Vec::new());
        let channels: Vec<_> = self.gateway.channel_ids().collect();
        for channel in channels {
            if self.current_run(vault, &channel, &date_text).await?.is_some() {
                continue;
            }
            match self.reconcile(vault, actor, &channel, date).await {
                Ok(run) => runs.push(run),
                Err(e) => failed.push((channel.as_str().to_owned(), e)),
            }
        }
        Ok((runs, failed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_day_before_is_due_once_the_beijing_time_passes() {
        // 2026-12-06 01:59 Beijing is 2026-12-05 17:59 UTC.
        let at = |utc: &str| {
            let (d, hm) = utc.split_once(' ').unwrap();
            let (h, m) = hm.split_once(':').unwrap();
            crate::domain::date::day_number(d).unwrap() * 86_400
                + h.parse::<i64>().unwrap() * 3_600
                + m.parse::<i64>().unwrap() * 60
        };
        assert_eq!(due_date(at("2026-12-05 17:59"), 120), None);
        let due = due_date(at("2026-12-05 18:00"), 120).unwrap();
        assert_eq!(due.to_string(), "2026-12-05");
        let late = due_date(at("2026-12-06 15:59"), 120).unwrap();
        assert_eq!(
            late.to_string(),
            "2026-12-05",
            "still the day before until Beijing midnight"
        );
        assert_eq!(
            due_date(at("2026-12-06 16:00"), 0).unwrap().to_string(),
            "2026-12-06"
        );
    }
}
