//! Line-by-line matching of a channel's statement against the vault's
//! payments and refunds, keyed by the ids the vault sent (the payment id is
//! the bank's order number; a refund's id is the merchant refund number).
//! Pure: the same lines in any order give the same findings.

use crate::channel::statement::StatementLine;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// What a statement line or a vault success is keyed by.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LineKey {
    pub order_id: String,
    /// Empty for the payment itself.
    pub refund_id: String,
}

impl LineKey {
    pub fn of(line: &StatementLine) -> Self {
        LineKey {
            order_id: line.order_id.clone(),
            refund_id: line.refund_id.clone(),
        }
    }
}

/// Where the vault stands on one payment or refund.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VaultState {
    Succeeded,
    /// Still waiting for the bank's word.
    InFlight,
    /// Closed, failed or never sent: no money moved, as the vault sees it.
    NotPaid,
    /// Paid at the bank after the platform had given the token's use back
    /// (`paid_after_release`): the money is the channel's to return.
    PaidAfterRelease,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VaultItem {
    pub amount: u64,
    pub state: VaultState,
}

/// Every line and every vault success of the date ends in one class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    Matched,
    /// 长款: the channel has money the vault does not show (paid at the
    /// bank, closed, failed or unknown here, or paid after the platform
    /// released the order).
    ChannelOnly,
    /// 短款: the vault shows a success the channel's file does not; held
    /// as doubtful (it may be on the next day's file).
    VaultOnly,
    AmountMismatch,
    /// The channel shows a success the vault is still waiting on.
    StatusMismatch,
    /// The same payment or refund on the file more than once.
    Duplicate,
}

impl Class {
    pub const ALL: [Class; 6] = [
        Class::Matched,
        Class::ChannelOnly,
        Class::VaultOnly,
        Class::AmountMismatch,
        Class::StatusMismatch,
        Class::Duplicate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Class::Matched => "matched",
            Class::ChannelOnly => "channel_only",
            Class::VaultOnly => "vault_only",
            Class::AmountMismatch => "amount_mismatch",
            Class::StatusMismatch => "status_mismatch",
            Class::Duplicate => "duplicate",
        }
    }
}

/// One finding: a key, its class, and both sides' amounts.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Finding {
    pub key: LineKey,
    pub class: Class,
    pub channel_amount: Option<u64>,
    pub vault_amount: Option<u64>,
}

/// Matches `lines` against `vault` (every item the lines name, and every
/// item of the date), where `due` are the keys the vault expects on this
/// date's file (its successes of the date). Findings are sorted.
pub fn match_lines(
    lines: &[StatementLine],
    vault: &BTreeMap<LineKey, VaultItem>,
    due: &BTreeSet<LineKey>,
) -> Vec<Finding> {
    let mut by_key: BTreeMap<LineKey, Vec<u64>> = BTreeMap::new();
    for line in lines {
        by_key.entry(LineKey::of(line)).or_default().push(line.amount);
    }
    let mut findings = Vec::with_capacity(by_key.len() + due.len());
    for (key, mut amounts) in by_key {
        let item = vault.get(&key).copied();
        // Order-independent: the line agreeing with the vault stands for
        // the key; the rest are duplicates.
        amounts.sort_unstable();
        let first = item
            .and_then(|i| amounts.iter().position(|a| *a == i.amount))
            .unwrap_or(0);
        let standing = amounts.remove(first);
        let class = match item {
            None => Class::ChannelOnly,
            Some(i) => match i.state {
                VaultState::NotPaid | VaultState::PaidAfterRelease => Class::ChannelOnly,
                VaultState::InFlight => Class::StatusMismatch,
                VaultState::Succeeded if i.amount == standing => Class::Matched,
                VaultState::Succeeded => Class::AmountMismatch,
            },
        };
        let vault_amount = item.map(|i| i.amount);
        findings.push(Finding {
            key: key.clone(),
            class,
            channel_amount: Some(standing),
            vault_amount,
        });
        for extra in amounts {
            findings.push(Finding {
                key: key.clone(),
                class: Class::Duplicate,
                channel_amount: Some(extra),
                vault_amount,
            });
        }
    }
    let named: BTreeSet<LineKey> = lines.iter().map(LineKey::of).collect();
    for key in due.difference(&named) {
        findings.push(Finding {
            key: key.clone(),
            class: Class::VaultOnly,
            channel_amount: None,
            vault_amount: vault.get(key).map(|i| i.amount),
        });
    }
    findings.sort();
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::statement::LineKind;
    use proptest::prelude::*;

    fn line(order: &str, refund: &str, amount: u64) -> StatementLine {
        StatementLine {
            trade_time: 0,
            channel_txn_no: "t".into(),
            order_id: order.into(),
            refund_id: refund.into(),
            kind: if refund.is_empty() {
                LineKind::Payment
            } else {
                LineKind::Refund
            },
            amount,
            currency: "CNY".into(),
            fee: 0,
        }
    }

    fn key(order: &str, refund: &str) -> LineKey {
        LineKey {
            order_id: order.into(),
            refund_id: refund.into(),
        }
    }

    fn item(amount: u64, state: VaultState) -> VaultItem {
        VaultItem { amount, state }
    }

    /// The day the classes are drawn from: each class once.
    fn day() -> (
        Vec<StatementLine>,
        BTreeMap<LineKey, VaultItem>,
        BTreeSet<LineKey>,
    ) {
        let vault = BTreeMap::from([
            (key("p1", ""), item(100, VaultState::Succeeded)),
            (key("p1", "r1"), item(40, VaultState::Succeeded)),
            (key("p2", ""), item(200, VaultState::Succeeded)),
            (key("p3", ""), item(300, VaultState::Succeeded)),
            (key("p4", ""), item(400, VaultState::NotPaid)),
            (key("p5", ""), item(500, VaultState::InFlight)),
            (key("p6", ""), item(600, VaultState::Succeeded)),
        ]);
        let due = vault
            .iter()
            .filter(|(_, i)| i.state == VaultState::Succeeded)
            .map(|(k, _)| k.clone())
            .collect();
        let lines = vec![
            line("p1", "", 100),
            line("p1", "r1", 40),
            line("p2", "", 201),
            line("p4", "", 400),
            line("p5", "", 500),
            line("p6", "", 600),
            line("p6", "", 600),
            line("p9", "", 900),
        ];
        (lines, vault, due)
    }

    #[test]
    fn each_class_is_found_where_it_is() {
        let (lines, vault, due) = day();
        let classes: Vec<(String, &str)> = match_lines(&lines, &vault, &due)
            .iter()
            .map(|f| {
                (
                    format!("{}/{}", f.key.order_id, f.key.refund_id),
                    f.class.as_str(),
                )
            })
            .collect();
        assert_eq!(
            classes,
            [
                ("p1/".to_owned(), "matched"),
                ("p1/r1".to_owned(), "matched"),
                ("p2/".to_owned(), "amount_mismatch"),
                ("p3/".to_owned(), "vault_only"),
                ("p4/".to_owned(), "channel_only"),
                ("p5/".to_owned(), "status_mismatch"),
                ("p6/".to_owned(), "matched"),
                ("p6/".to_owned(), "duplicate"),
                ("p9/".to_owned(), "channel_only"),
            ]
        );
    }

    proptest! {
        /// Any order of the lines gives the same findings.
        #[test]
        fn any_permutation_of_the_lines_gives_the_same_findings(seed in any::<u64>()) {
            let (mut lines, vault, due) = day();
            let expected = match_lines(&lines, &vault, &due);
            // A Fisher-Yates shuffle driven by the seed.
            let mut state = seed | 1;
            for i in (1..lines.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let j = usize::try_from(state % (i as u64 + 1)).unwrap();
                lines.swap(i, j);
            }
            prop_assert_eq!(match_lines(&lines, &vault, &due), expected);
        }

        /// Only the vault's items the lines name or that are due matter:
        /// a run holds those alone, however long the channel's history.
        #[test]
        fn items_neither_named_nor_due_change_nothing(
            lines in proptest::collection::vec((0u8..12, 1u64..4), 0..20),
            vault in proptest::collection::btree_map(0u8..24, (1u64..4, 0u8..4, any::<bool>()), 0..24),
        ) {
            let states = [VaultState::Succeeded, VaultState::InFlight, VaultState::NotPaid, VaultState::PaidAfterRelease];
            let name = |n: u8| format!("p{n}");
            let lines: Vec<StatementLine> = lines.iter().map(|(n, a)| line(&name(*n), "", *a)).collect();
            let items: BTreeMap<LineKey, VaultItem> = vault
                .iter()
                .map(|(n, (a, st, _))| (key(&name(*n), ""), item(*a, states[usize::from(*st)])))
                .collect();
            let due: BTreeSet<LineKey> = vault
                .iter()
                .filter(|(_, (_, st, today))| *st == 0 && *today)
                .map(|(n, _)| key(&name(*n), ""))
                .collect();
            let named: BTreeSet<LineKey> = lines.iter().map(LineKey::of).collect();
            let held: BTreeMap<LineKey, VaultItem> = items
                .iter()
                .filter(|(k, _)| named.contains(*k) || due.contains(*k))
                .map(|(k, i)| (k.clone(), *i))
                .collect();
            prop_assert_eq!(match_lines(&lines, &held, &due), match_lines(&lines, &items, &due));
        }
    }
}
