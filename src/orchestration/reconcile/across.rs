//! Across days: a day's findings read against what the channel's other
//! days showed. A payment the bank books after its cut-off (日切) is on
//! the next day's file, so the day the vault dates it finds it missing
//! (短款); that finding is held open and carried, and the file that does
//! show it settles it. A line an earlier day's file already showed is a
//! duplicate, whichever day it comes on. A 短款 no file shows within the
//! window is escalated for recovery. Pure: the run reads the history and
//! writes what this decides.

use super::matcher::{Class, Finding, LineKey};
use super::RunId;
use crate::domain::date::SettlementDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The run whose file first showed a payment or refund, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub run: RunId,
    pub date: String,
}

/// An open 短款, as stored: discrepancy `n` of `run`, of settlement `date`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Short {
    pub run: RunId,
    pub n: u64,
    pub date: String,
}

impl Short {
    /// The discrepancy this 短款 is.
    pub fn discrepancy(&self) -> super::DiscrepancyId {
        super::DiscrepancyId {
            run: self.run.clone(),
            n: self.n,
        }
    }
}

/// What the channel's other days say about this run's keys.
#[derive(Default)]
pub struct History {
    /// Keys a current run of another date showed first, with that date.
    pub shown_on: BTreeMap<LineKey, SettlementDate>,
    /// The channel's open 短款.
    pub shorts: BTreeMap<LineKey, (Short, SettlementDate)>,
}

/// A day's findings after the other days are counted, and what that
/// settles of theirs.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AcrossDays {
    pub findings: Vec<Finding>,
    /// 短款 of other days this file shows: settled as carried forward.
    pub carried: Vec<(LineKey, Short)>,
    /// 短款 of days more than the window back no file showed: escalated.
    pub escalated: Vec<(LineKey, Short)>,
}

/// Reads `findings` of `date` against `history`; a 短款 older than
/// `window_days` and not shown here is escalated.
pub fn across_days(
    findings: Vec<Finding>,
    history: &History,
    date: SettlementDate,
    window_days: u32,
) -> AcrossDays {
    let mut out = AcrossDays::default();
    let other_day = |d: &SettlementDate| *d != date;
    for mut finding in findings {
        let shown_elsewhere = history.shown_on.get(&finding.key).filter(|d| other_day(d));
        if finding.channel_amount.is_none() {
            // Missing here, but another day's file has it: nothing missing.
            if shown_elsewhere.is_none() {
                out.findings.push(finding);
            }
            continue;
        }
        if finding.class != Class::Duplicate {
            if shown_elsewhere.is_some() {
                finding.class = Class::Duplicate;
            } else if let Some((short, day)) = history.shorts.get(&finding.key) {
                if other_day(day) {
                    out.carried.push((finding.key.clone(), short.clone()));
                }
            }
        }
        out.findings.push(finding);
    }
    let carried: std::collections::BTreeSet<&LineKey> = out.carried.iter().map(|(k, _)| k).collect();
    for (key, (short, day)) in &history.shorts {
        let overdue = date.day_number() - day.day_number() > i64::from(window_days);
        if overdue && !carried.contains(key) {
            out.escalated.push((key.clone(), short.clone()));
        }
    }
    out.findings.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::super::matcher::{match_lines, VaultItem, VaultState};
    use super::*;
    use crate::channel::statement::{LineKind, StatementLine};
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn line(order: &str, amount: u64) -> StatementLine {
        StatementLine {
            trade_time: 0,
            channel_txn_no: "t".into(),
            order_id: order.into(),
            refund_id: String::new(),
            kind: LineKind::Payment,
            amount,
            currency: "CNY".into(),
            fee: 0,
        }
    }

    fn key(order: &str) -> LineKey {
        LineKey {
            order_id: order.into(),
            refund_id: String::new(),
        }
    }

    fn run_id(n: u8) -> RunId {
        RunId::parse(&format!("rcn_{:032x}", n)).unwrap()
    }

    /// Reconciles `lines` of `date` as the run does, against `history`,
    /// and updates the history as the run's write would.
    fn reconcile_day(
        lines: &[StatementLine],
        vault: &BTreeMap<LineKey, (VaultItem, SettlementDate)>,
        date: SettlementDate,
        run: u8,
        history: &mut History,
    ) -> AcrossDays {
        let items = vault.iter().map(|(k, (i, _))| (k.clone(), *i)).collect();
        let due = vault
            .iter()
            .filter(|(_, (i, d))| i.state == VaultState::Succeeded && *d == date)
            .map(|(k, _)| k.clone())
            .collect();
        let out = across_days(match_lines(lines, &items, &due), history, date, 3);
        for (k, _) in out.carried.iter().chain(&out.escalated) {
            history.shorts.remove(k);
        }
        for (n, f) in out
            .findings
            .iter()
            .filter(|f| f.class != Class::Matched)
            .enumerate()
        {
            if f.class == Class::VaultOnly {
                let short = Short {
                    run: run_id(run),
                    n: n as u64,
                    date: date.to_string(),
                };
                history.shorts.insert(f.key.clone(), (short, date));
            }
        }
        for l in lines {
            history.shown_on.entry(LineKey::of(l)).or_insert(date);
        }
        out
    }

    fn classes(findings: &[Finding]) -> Vec<(LineKey, Class)> {
        let mut v: Vec<_> = findings.iter().map(|f| (f.key.clone(), f.class)).collect();
        v.sort();
        v
    }

    #[test]
    fn a_short_is_carried_to_the_file_that_shows_it_and_escalated_past_the_window() {
        let day = SettlementDate::parse("2026-12-01").unwrap();
        let succeeded = |a| VaultItem {
            amount: a,
            state: VaultState::Succeeded,
        };
        let vault = BTreeMap::from([
            (key("p1"), (succeeded(100), day)),
            (key("p2"), (succeeded(200), day)),
        ]);
        let mut history = History::default();
        let first = reconcile_day(&[], &vault, day, 1, &mut history);
        assert_eq!(first.findings.len(), 2, "both missing on their own day");
        let next = reconcile_day(&[line("p1", 100)], &vault, day.next(), 2, &mut history);
        assert_eq!(classes(&next.findings), [(key("p1"), Class::Matched)]);
        assert_eq!(next.carried.len(), 1);
        assert!(next.escalated.is_empty(), "p2 is still inside the window");
        let later = reconcile_day(&[], &vault, day.next().next().next().next(), 3, &mut history);
        assert_eq!(later.escalated.len(), 1, "p2: four days on, no file showed it");
        // A line the first file showed is a duplicate on any later file.
        let again = reconcile_day(&[line("p1", 100)], &vault, day.next().next(), 4, &mut history);
        assert_eq!(classes(&again.findings), [(key("p1"), Class::Duplicate)]);
    }

    proptest! {
        /// Any split of a day's lines over that day and the next, once both
        /// are reconciled (in date order), leaves the same classes as one
        /// file with every line: a 短款 the second file settles is carried,
        /// not a class. Duplicated lines carry one amount here: which of
        /// two differing copies stands is a matter of which came first.
        #[test]
        fn any_split_of_the_lines_over_two_days_gives_the_same_classes(
            spec in proptest::collection::vec((0u8..6, 0u8..3, any::<bool>(), any::<bool>()), 1..12)
        ) {
            let day = SettlementDate::parse("2026-12-01").unwrap();
            let mut vault = BTreeMap::new();
            let mut lines = Vec::new();
            let mut split = Vec::new();
            for (i, (state, copies, second_day, dated_next)) in spec.iter().enumerate() {
                let order = format!("p{i}");
                let amount = 100 + i as u64;
                let state = match state {
                    0 => None,
                    1 => Some(VaultState::NotPaid),
                    2 => Some(VaultState::InFlight),
                    _ => Some(VaultState::Succeeded),
                };
                if let Some(state) = state {
                    let dated = if *dated_next { day.next() } else { day };
                    vault.insert(key(&order), (VaultItem { amount, state }, dated));
                }
                for copy in 0..*copies {
                    lines.push(line(&order, amount));
                    split.push(*second_day ^ (copy == 1));
                }
            }
            // One file with every line, every vault success due.
            let items = vault.iter().map(|(k, (i, _))| (k.clone(), *i)).collect();
            let due: BTreeSet<LineKey> = vault
                .iter()
                .filter(|(_, (i, _))| i.state == VaultState::Succeeded)
                .map(|(k, _)| k.clone())
                .collect();
            let whole = classes(&match_lines(&lines, &items, &due));
            // The same lines split over two days.
            let (first, second): (Vec<_>, Vec<_>) = lines.iter().cloned().zip(&split).partition(|(_, s)| !**s);
            let first: Vec<_> = first.into_iter().map(|(l, _)| l).collect();
            let second: Vec<_> = second.into_iter().map(|(l, _)| l).collect();
            let mut history = History::default();
            let one = reconcile_day(&first, &vault, day, 1, &mut history);
            let two = reconcile_day(&second, &vault, day.next(), 2, &mut history);
            let settled: BTreeSet<&LineKey> = two.carried.iter().map(|(k, _)| k).collect();
            let mut both: Vec<Finding> = one
                .findings
                .into_iter()
                .filter(|f| !(f.class == Class::VaultOnly && settled.contains(&f.key)))
                .collect();
            both.extend(two.findings);
            prop_assert_eq!(classes(&both), whole);
        }
    }
}
