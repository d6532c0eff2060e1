//! Walks a chain from the first record and names the first that is
//! missing, altered or out of place; `TrailReport` gathers every chain's.

use super::chain::{ChainHead, ChainName};
use super::keys::{next_version, version_of, AuditKeys};
use super::record::AuditRecord;
use std::collections::BTreeMap;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakKind {
    /// No record with this sequence number, though later ones exist.
    Missing,
    /// The record's MAC does not match its content (edited).
    Altered,
    /// The record does not link to its predecessor (replaced or reordered).
    Unlinked,
    /// The stored head does not match the last record (records appended
    /// outside the chain, or the head itself edited).
    HeadMismatch,
    /// A checkpoint in some chain recorded this record, and the chain no
    /// longer holds it as recorded: the chain was truncated (wholly, or
    /// its tail with its head rewound) or rewritten.
    BehindCheckpoint,
    /// A signed checkpoint (an anchor kept outside the vault) recorded this
    /// record, and the chain no longer holds it as recorded: the trail was
    /// cut back or rewritten, heads and all.
    BehindSignedCheckpoint,
    /// The record's MAC is of another audit key version than the chain is
    /// at there (a version moves only at a rotation record): written with
    /// a key the chain had left, or its version spelled otherwise.
    KeyVersion,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Break {
    pub seq: u64,
    pub kind: BreakKind,
}

impl fmt::Display for Break {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            BreakKind::Missing => "is missing",
            BreakKind::Altered => "was altered (its MAC does not match)",
            BreakKind::Unlinked => "does not link to the record before it",
            BreakKind::HeadMismatch => "does not match the stored chain head",
            BreakKind::BehindCheckpoint => {
                "is missing or differs from the record a checkpoint recorded (the chain was truncated or rewritten)"
            }
            BreakKind::KeyVersion => {
                "is MACed with another audit key version than its chain was at (a key the chain had rotated away from)"
            }
            BreakKind::BehindSignedCheckpoint => {
                "is missing or differs from the record a signed checkpoint recorded (the trail was cut back or rewritten, its head rewound)"
            }
        };
        write!(f, "audit record {} {what}", self.seq)
    }
}

/// Notes a break at `seq` of `chain` found from outside the chain (a
/// checkpoint or an anchor names a record it no longer holds), unless
/// the chain broke earlier already. A chain the store lost altogether
/// gets a report of its own.
pub(crate) fn note_break(
    chains: &mut BTreeMap<ChainName, VerifyReport>,
    chain: ChainName,
    seq: u64,
    kind: BreakKind,
) {
    let report = chains.entry(chain).or_insert(VerifyReport {
        records: 0,
        head_seq: 0,
        first_break: None,
    });
    if report.first_break.as_ref().is_none_or(|b| b.seq > seq) {
        report.first_break = Some(Break { seq, kind });
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    pub records: u64,
    pub head_seq: u64,
    pub first_break: Option<Break>,
}

/// Every chain's report, by chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrailReport {
    pub chains: BTreeMap<ChainName, VerifyReport>,
}

impl TrailReport {
    pub fn intact(&self) -> bool {
        self.chains.values().all(|r| r.first_break.is_none())
    }

    /// Records checked, over every chain.
    pub fn records(&self) -> u64 {
        self.chains.values().map(|r| r.records).sum()
    }

    /// The first chain (by name) with a break, and its break.
    pub fn first_break(&self) -> Option<(&ChainName, &Break)> {
        self.chains
            .iter()
            .find_map(|(chain, r)| r.first_break.as_ref().map(|b| (chain, b)))
    }
}

/// Checks `records` of `chain` (in key order, as scanned) against the key
/// and the stored head. Stops at the first break.
pub fn verify<I>(
    keys: &AuditKeys,
    chain: &ChainName,
    head: Option<&ChainHeadView>,
    records: I,
) -> VerifyReport
where
    I: IntoIterator<Item = AuditRecord>,
{
    let head = head.map(|h| h.0.clone()).unwrap_or_else(ChainHead::genesis);
    let mut expected = ChainHead::genesis();
    let mut version = 1;
    let mut count = 0;
    for record in records {
        count += 1;
        let due = next_version(
            version,
            &record.operation,
            &record.outcome,
            record.detail.as_deref(),
        );
        let problem = if record.seq != expected.seq + 1 {
            Some(Break {
                seq: expected.seq + 1,
                kind: BreakKind::Missing,
            })
        } else if version_of(&record.mac).is_some_and(|v| v != due) {
            Some(Break {
                seq: record.seq,
                kind: BreakKind::KeyVersion,
            })
        } else if !keys.verify(chain, &record) {
            Some(Break {
                seq: record.seq,
                kind: BreakKind::Altered,
            })
        } else if record.prev_mac != expected.mac {
            Some(Break {
                seq: record.seq,
                kind: BreakKind::Unlinked,
            })
        } else {
            None
        };
        if let Some(b) = problem {
            return VerifyReport {
                records: count,
                head_seq: head.seq,
                first_break: Some(b),
            };
        }
        version = due;
        expected = ChainHead {
            seq: record.seq,
            mac: record.mac,
        };
    }
    let first_break = (expected != head).then(|| Break {
        seq: if head.seq > expected.seq {
            expected.seq + 1
        } else {
            head.seq
        },
        kind: if head.seq > expected.seq {
            BreakKind::Missing
        } else {
            BreakKind::HeadMismatch
        },
    });
    VerifyReport {
        records: count,
        head_seq: head.seq,
        first_break,
    }
}

/// The stored head, opaque to callers.
#[derive(Clone, Debug)]
pub struct ChainHeadView(pub(crate) ChainHead);

#[cfg(test)]
mod tests {
    use super::super::chain::{AuditChain, AuditKey, Entry};
    use super::super::{Actor, Outcome};
    use super::*;
    use secrecy::SecretBox;

    fn key(byte: u8) -> AuditKey {
        AuditKey::new(SecretBox::new(Box::new([byte; 32])))
    }

    fn card_entry(i: u64) -> Entry<'static> {
        Entry {
            operation: "card.store",
            object: Some(format!("crd_{i}")),
            outcome: Outcome::Success,
            detail: None,
        }
    }

    /// Appends `entries` to `chain` after `head`.
    fn append(
        chain: &AuditChain,
        head: &mut ChainHead,
        entries: Vec<Entry<'static>>,
        out: &mut Vec<AuditRecord>,
    ) {
        for entry in entries {
            let at = 1_000 + head.seq as i64;
            let (record, next) = chain.next(head, &Actor::local("test"), entry, at).unwrap();
            out.push(record);
            *head = next;
        }
    }

    fn chain_of(n: u64, key_byte: u8) -> (AuditChain, Vec<AuditRecord>, ChainHead) {
        let keys = AuditKeys::new(key(key_byte));
        let chain = AuditChain::new(std::sync::Arc::new(keys), ChainName::UNNAMED);
        let mut head = ChainHead::genesis();
        let mut out = Vec::new();
        append(&chain, &mut head, (0..n).map(card_entry).collect(), &mut out);
        (chain, out, head)
    }

    fn rotation(to: u32) -> Entry<'static> {
        Entry {
            operation: crate::domain::operation::Operation::KeyRotateAudit.as_str(),
            object: None,
            outcome: Outcome::Success,
            detail: Some(super::super::keys::rotation_detail(to)),
        }
    }

    /// Three records under version 1, a rotation to 2, two more under 2.
    #[test]
    fn a_chain_rotated_at_a_record_boundary_verifies_and_holds_no_record_of_the_old_key_after_it() {
        let (chain, mut records, mut head) = chain_of(3, 3);
        chain.keys.held().add(2, key(9));
        append(
            &chain,
            &mut head,
            vec![rotation(2), card_entry(4), card_entry(5)],
            &mut records,
        );
        let versions: Vec<u32> = records.iter().map(|r| version_of(&r.mac).unwrap()).collect();
        assert_eq!(versions, [1, 1, 1, 2, 2, 2]);
        assert!(records[3].mac.starts_with("v2:"));
        assert_eq!(check(&chain, records.clone(), &head), None);

        // Whoever kept version 1 re-MACs record 5 with it: refused, though
        // the MAC itself is right under version 1.
        let old_only = AuditChain::new(std::sync::Arc::new(AuditKeys::new(key(3))), ChainName::UNNAMED);
        let mut forged = records.clone();
        forged[4].mac = String::new();
        forged[4].mac = old_only.keys.mac(1, &ChainName::UNNAMED, &forged[4]).unwrap();
        forged[5].prev_mac = forged[4].mac.clone();
        assert_eq!(
            check(&chain, forged, &head),
            Some(Break {
                seq: 5,
                kind: BreakKind::KeyVersion
            })
        );

        // A record before the rotation claiming version 2.
        let mut early = records.clone();
        early[1].mac = chain.keys.mac(2, &ChainName::UNNAMED, &early[1]).unwrap();
        assert_eq!(
            check(&chain, early, &head),
            Some(Break {
                seq: 2,
                kind: BreakKind::KeyVersion
            })
        );

        // A node that lacks the new version cannot append past the rotation.
        assert!(matches!(
            old_only.next(&head, &Actor::local("test"), card_entry(6), 9),
            Err(super::super::MissingKey(2))
        ));
    }

    fn check(chain: &AuditChain, records: Vec<AuditRecord>, head: &ChainHead) -> Option<Break> {
        verify(
            &chain.keys,
            &chain.name,
            Some(&ChainHeadView(head.clone())),
            records,
        )
        .first_break
    }

    #[test]
    fn an_intact_chain_verifies() {
        let (chain, records, head) = chain_of(5, 3);
        assert_eq!(check(&chain, records, &head), None);
    }

    #[test]
    fn each_kind_of_tampering_is_named_at_its_record() {
        let (chain, records, head) = chain_of(6, 3);
        let mut edited = records.clone();
        edited[2].outcome = "denied".into();
        assert_eq!(
            check(&chain, edited, &head),
            Some(Break {
                seq: 3,
                kind: BreakKind::Altered
            })
        );

        let mut removed = records.clone();
        removed.remove(3);
        assert_eq!(
            check(&chain, removed, &head),
            Some(Break {
                seq: 4,
                kind: BreakKind::Missing
            })
        );

        let mut swapped = records.clone();
        swapped.swap(1, 2);
        assert_eq!(check(&chain, swapped, &head).map(|b| b.seq), Some(2));

        let mut truncated = records.clone();
        truncated.pop();
        assert_eq!(
            check(&chain, truncated, &head),
            Some(Break {
                seq: 6,
                kind: BreakKind::Missing
            })
        );

        // A record re-MACed with another key does not pass.
        let (other, other_records, _) = chain_of(6, 4);
        drop(other);
        let mut forged = records.clone();
        forged[4] = other_records[4].clone();
        assert_eq!(
            check(&chain, forged, &head),
            Some(Break {
                seq: 5,
                kind: BreakKind::Altered
            })
        );
    }
}
