//! A day split into passes by order id, so a run holds one pass's lines
//! and payments at a time however many the day has. Payment ids (`pay_`
//! and 32 random hex digits) spread evenly over ranges of their first two
//! digits; any other order id a file names falls in the range its text
//! sorts into. Matching and the days' history are per key (`matcher`,
//! `across`), so the passes together find what one pass over all would.

/// Up to this many passes: the first two hex digits of a payment id.
const MOST: u64 = 256;
/// What a payment id starts with.
const PAYMENT: &str = "pay_";

/// The passes of one run: pass `i` holds the order ids from bound `i - 1`
/// (or the start) up to, not including, bound `i` (or the end).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Passes {
    bounds: Vec<String>,
}

impl Passes {
    /// Enough passes that each holds some `per_pass` lines of `lines`.
    pub fn for_lines(lines: u64, per_pass: u64) -> Self {
        let count = lines.div_ceil(per_pass.max(1)).clamp(1, MOST);
        let bounds = (1..count)
            .map(|i| format!("{PAYMENT}{:02x}", i * MOST / count))
            .collect();
        Passes { bounds }
    }

    pub fn count(&self) -> usize {
        self.bounds.len() + 1
    }

    /// The pass that holds `order_id`.
    pub fn of(&self, order_id: &str) -> usize {
        self.bounds.partition_point(|bound| bound.as_str() <= order_id)
    }

    /// Where pass `pass` starts (inclusive) and ends (exclusive); `None`
    /// for the start or the end of all order ids.
    pub fn range(&self, pass: usize) -> (Option<&str>, Option<&str>) {
        let start = pass.checked_sub(1).and_then(|i| self.bounds.get(i));
        (
            start.map(String::as_str),
            self.bounds.get(pass).map(String::as_str),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::across::{across_days, History, Short};
    use super::super::matcher::{match_lines, Class, LineKey, VaultItem, VaultState};
    use super::super::RunId;
    use super::*;
    use crate::channel::statement::{LineKind, StatementLine};
    use crate::domain::date::SettlementDate;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    #[test]
    fn passes_cover_every_order_id_once_in_order() {
        assert_eq!(Passes::for_lines(0, 100).count(), 1);
        assert_eq!(Passes::for_lines(100, 100).count(), 1);
        assert_eq!(Passes::for_lines(101, 100).count(), 2);
        assert_eq!(Passes::for_lines(10_000_000, 1).count(), 256);
        let passes = Passes::for_lines(1_000_000, 100_000);
        assert_eq!(passes.count(), 10);
        for id in ["", "a", "pay_", "pay_00", "pay_19", "pay_1a", "pay_ff", "zzz"] {
            let pass = passes.of(id);
            let (start, end) = passes.range(pass);
            assert!(
                start.is_none_or(|s| s <= id) && end.is_none_or(|e| id < e),
                "{id}"
            );
        }
    }

    fn order(n: u8) -> String {
        // Mostly payment ids, a few of the ids a file may name besides.
        match n % 16 {
            0 => format!("ord-{n}"),
            _ => format!("pay_{:02x}{:030x}", n.wrapping_mul(37), n),
        }
    }

    fn key(n: u8) -> LineKey {
        LineKey {
            order_id: order(n),
            refund_id: String::new(),
        }
    }

    proptest! {
        /// The passes together find what one pass over the whole day finds:
        /// the same findings, in the same order, and the same 短款 carried
        /// and escalated.
        #[test]
        fn passes_find_what_one_pass_finds(
            lines in proptest::collection::vec((0u8..64, 1u64..4), 0..60),
            vault in proptest::collection::btree_map(0u8..64, (1u64..4, 0u8..4), 0..60),
            shorts in proptest::collection::btree_map(0u8..64, 0i64..6, 0..10),
            per_pass in 1u64..20,
        ) {
            let date = SettlementDate::parse("2026-12-06").unwrap();
            let lines: Vec<StatementLine> = lines
                .into_iter()
                .map(|(n, amount)| StatementLine {
                    trade_time: 0,
                    channel_txn_no: "t".into(),
                    order_id: order(n),
                    refund_id: String::new(),
                    kind: LineKind::Payment,
                    amount,
                    currency: "CNY".into(),
                    fee: 0,
                })
                .collect();
            let states = [VaultState::Succeeded, VaultState::InFlight, VaultState::NotPaid, VaultState::PaidAfterRelease];
            let items: BTreeMap<LineKey, VaultItem> = vault
                .iter()
                .map(|(n, (amount, s))| (key(*n), VaultItem { amount: *amount, state: states[usize::from(*s)] }))
                .collect();
            let due: BTreeSet<LineKey> = items
                .iter()
                .filter(|(_, i)| i.state == VaultState::Succeeded)
                .map(|(k, _)| k.clone())
                .collect();
            let history = History {
                shown_on: BTreeMap::new(),
                shorts: shorts
                    .iter()
                    .map(|(n, back)| {
                        let short = Short { run: RunId::parse(&format!("rcn_{:032x}", n)).unwrap(), n: 0, date: String::new() };
                        (key(*n), (short, SettlementDate::parse(&format!("2026-12-{:02}", 6 - back)).unwrap()))
                    })
                    .collect(),
            };
            let whole = across_days(match_lines(&lines, &items, &due), &history, date, 3);

            let passes = Passes::for_lines(lines.len() as u64, per_pass);
            let mut findings = Vec::new();
            let (mut carried, mut escalated) = (Vec::new(), Vec::new());
            for pass in 0..passes.count() {
                let mine = |k: &LineKey| passes.of(&k.order_id) == pass;
                let lines: Vec<StatementLine> = lines.iter().filter(|l| passes.of(&l.order_id) == pass).cloned().collect();
                let items = items.iter().filter(|(k, _)| mine(k)).map(|(k, i)| (k.clone(), *i)).collect();
                let due = due.iter().filter(|k| mine(k)).cloned().collect();
                let history = History {
                    shown_on: BTreeMap::new(),
                    shorts: history.shorts.iter().filter(|(k, _)| mine(k)).map(|(k, s)| (k.clone(), s.clone())).collect(),
                };
                let out = across_days(match_lines(&lines, &items, &due), &history, date, 3);
                findings.extend(out.findings);
                carried.extend(out.carried);
                escalated.extend(out.escalated);
            }
            prop_assert_eq!(&findings, &whole.findings);
            prop_assert_eq!(carried, whole.carried);
            prop_assert_eq!(escalated, whole.escalated);
            let counted = |f: &[super::super::matcher::Finding], c: Class| f.iter().filter(|x| x.class == c).count();
            prop_assert_eq!(counted(&findings, Class::Matched), counted(&whole.findings, Class::Matched));
        }
    }
}
