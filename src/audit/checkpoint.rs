//! Checkpoint records tie several nodes' chains into one trail. Now and
//! then each node appends an `audit.checkpoint` record to its own chain
//! whose detail lists every chain's head at that moment; the record is
//! MACed like any other, so the list cannot be edited. `audit verify` then
//! finds a record deleted from the tail of any chain, or a whole chain
//! removed, once a checkpoint in another chain has recorded it: the chain
//! alone cannot show a tail cut together with its head.
//!
//! What no checkpoint inside the store can show: every chain cut back
//! together to an earlier consistent moment. That needs a copy outside the
//! vault: the signed checkpoints of `anchor`, kept off the host.

use super::chain::{ChainHead, ChainName};
use super::read::Stored;
use super::verify::{note_break, BreakKind, VerifyReport};
use crate::domain::node::NodeName;
use crate::domain::operation::Operation;
use std::collections::BTreeMap;

/// The other chains' heads a node last checkpointed: it checkpoints again
/// once one of them moved (its own moves with every checkpoint).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpointed(BTreeMap<ChainName, ChainHead>);

impl Checkpointed {
    /// The heads of every chain but `own`.
    pub(crate) fn others(heads: &BTreeMap<ChainName, ChainHead>, own: &ChainName) -> Self {
        let mut others = heads.clone();
        others.remove(own);
        Checkpointed(others)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The unnamed chain's label in a checkpoint (no node name is `-`).
const UNNAMED_LABEL: &str = "-";

/// The detail of a checkpoint record: `heads` then `chain=seq:mac` for
/// every chain, by name.
pub(crate) fn detail(heads: &BTreeMap<ChainName, ChainHead>) -> String {
    let mut out = String::from("heads");
    for (chain, head) in heads {
        let label = chain.node().map_or(UNNAMED_LABEL, NodeName::as_str);
        out.push_str(&format!(" {label}={}:{}", head.seq, head.mac));
    }
    out
}

/// The heads a checkpoint detail lists (`None`: not a checkpoint's detail).
fn parse(detail: &str) -> Option<Vec<(ChainName, ChainHead)>> {
    let mut words = detail.split(' ');
    if words.next()? != "heads" {
        return None;
    }
    words
        .map(|word| {
            let (label, head) = word.split_once('=')?;
            let (seq, mac) = head.split_once(':')?;
            let chain = match label {
                UNNAMED_LABEL => ChainName::UNNAMED,
                name => ChainName::of(Some(NodeName::parse(name).ok()?)),
            };
            let head = ChainHead {
                seq: seq.parse().ok()?,
                mac: mac.to_owned(),
            };
            Some((chain, head))
        })
        .collect()
}

/// Checks every checkpoint in the verified part of each chain against the
/// chains it names, and marks a chain that no longer holds a record as a
/// checkpoint recorded it (unless it broke earlier already). A chain that
/// is gone altogether gets a report of its own.
pub(crate) fn check_all(stored: &Stored, chains: &mut BTreeMap<ChainName, VerifyReport>) {
    let mut found: Vec<(ChainName, u64)> = Vec::new();
    for (chain, records) in stored {
        let verified_below = chains
            .get(chain)
            .and_then(|r| r.first_break.as_ref())
            .map_or(u64::MAX, |b| b.seq);
        let checkpoints = records
            .iter()
            .map_while(|r| r.as_ref().ok())
            .take_while(|r| r.seq < verified_below)
            .filter(|r| r.operation == Operation::AuditCheckpoint.as_str() && r.outcome == "success");
        for record in checkpoints {
            let Some(heads) = record.detail.as_deref().and_then(parse) else {
                continue;
            };
            for (named, head) in heads {
                if head.seq > 0 && !holds(stored.get(&named), &head) {
                    found.push((named, head.seq));
                }
            }
        }
    }
    for (chain, seq) in found {
        note_break(chains, chain, seq, BreakKind::BehindCheckpoint);
    }
}

/// Whether `records` (one chain's, in order) hold the record `head` names.
pub(super) fn holds(records: Option<&Vec<Result<super::AuditRecord, u64>>>, head: &ChainHead) -> bool {
    let Some(records) = records else { return false };
    // In an intact chain record n sits at index n - 1; search otherwise.
    let at = usize::try_from(head.seq - 1)
        .ok()
        .and_then(|i| records.get(i))
        .and_then(|r| r.as_ref().ok())
        .filter(|r| r.seq == head.seq);
    let record = at.or_else(|| {
        records
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .find(|r| r.seq == head.seq)
    });
    record.is_some_and(|r| r.mac == head.mac)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// The unnamed chain at 7 and node b's at 3.
    pub(in crate::audit) fn two_heads() -> BTreeMap<ChainName, ChainHead> {
        let head = |seq, byte: &str| ChainHead {
            seq,
            mac: byte.repeat(32),
        };
        BTreeMap::from([
            (ChainName::UNNAMED, head(7, "ab")),
            (ChainName::of(Some(NodeName::parse("b").unwrap())), head(3, "cd")),
        ])
    }

    #[test]
    fn a_checkpoint_detail_round_trips() {
        let heads = two_heads();
        let text = detail(&heads);
        assert!(text.starts_with("heads -=7:"), "{text}");
        assert_eq!(parse(&text), Some(heads.into_iter().collect()));
        assert_eq!(parse("intact records=3"), None);
        assert_eq!(parse("heads B=1:x"), None);
    }
}
