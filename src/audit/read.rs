//! The trail's read side, straight from the store: a chain's head, a page
//! of its records, every chain's records in order, and a verification of
//! every stored chain and the checkpoints that tie them together. Whoever
//! calls these records the access itself (the vault does, in its chain).

use super::anchor::{self, SignedAnchor};
use super::chain::{ChainHead, ChainName};
use super::checkpoint;
use super::keys::AuditKeys;
use super::record::{AuditRecord, ChainRecord};
use super::verify::{verify, Break, BreakKind, ChainHeadView, TrailReport};
use crate::domain::node::NodeName;
use crate::store::{codec, keyspace, Store, StoreError};
use std::collections::BTreeMap;

/// Records are read in pages of this many.
const SCAN_PAGE: usize = 1024;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the stored {0} does not decode")]
    Corrupt(&'static str),
    /// The head names a record the store does not hold: a hole at the tail.
    #[error("audit record {0}, which the chain head names, is missing")]
    TailMissing(u64),
    /// The record the head names is not the one the head was sealed after.
    #[error("audit record {0}, which the chain head names, does not verify")]
    TailAltered(u64),
}

/// The stored head of `chain`, or the genesis head of an empty chain.
pub(crate) async fn head<S: Store>(store: &S, chain: &ChainName) -> Result<ChainHead, ReadError> {
    Ok(stored_head(store, chain)
        .await?
        .unwrap_or_else(ChainHead::genesis))
}

/// The stored head of `chain`, if it has one.
async fn stored_head<S: Store>(store: &S, chain: &ChainName) -> Result<Option<ChainHead>, ReadError> {
    store
        .get(&chain.head_key())
        .await?
        .map(|bytes| codec::decode(&bytes).map_err(|_| ReadError::Corrupt("audit head")))
        .transpose()
}

/// The stored head, once the record it names is found intact: what a writer
/// extends the chain from after any doubt about the store (start, a failed
/// write, a failed flush). Anything else fails closed, naming the record.
pub(crate) async fn verified_head<S: Store>(
    store: &S,
    keys: &AuditKeys,
    chain: &ChainName,
) -> Result<ChainHead, ReadError> {
    let head = head(store, chain).await?;
    if head.seq == 0 {
        return Ok(head);
    }
    let bytes = store
        .get(&chain.record_key(head.seq))
        .await?
        .ok_or(ReadError::TailMissing(head.seq))?;
    let record: AuditRecord = codec::decode(&bytes).map_err(|_| ReadError::TailAltered(head.seq))?;
    if record.seq != head.seq || record.mac != head.mac || !keys.verify(chain, &record) {
        return Err(ReadError::TailAltered(head.seq));
    }
    Ok(head)
}

/// Every chain's stored head: the unnamed chain's (when it has one) and
/// each named node's.
pub(crate) async fn heads<S: Store>(store: &S) -> Result<BTreeMap<ChainName, ChainHead>, ReadError> {
    let mut out = BTreeMap::new();
    if let Some(head) = stored_head(store, &ChainName::UNNAMED).await? {
        out.insert(ChainName::UNNAMED, head);
    }
    let prefix = keyspace::AUDIT_NODE_HEAD.as_bytes();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = store.scan_prefix(prefix, after.as_deref(), SCAN_PAGE).await?;
        let Some((last, _)) = page.last() else {
            return Ok(out);
        };
        after = Some(last.clone());
        for (key, value) in &page {
            let name = key_text(&key[prefix.len()..]).ok_or(ReadError::Corrupt("audit head key"))?;
            let head = codec::decode(value).map_err(|_| ReadError::Corrupt("audit head"))?;
            out.insert(ChainName::of(Some(name)), head);
        }
    }
}

/// Up to `limit` records of `chain` after sequence number `after`.
pub async fn page<S: Store>(
    store: &S,
    chain: &ChainName,
    after: u64,
    limit: usize,
) -> Result<Vec<AuditRecord>, ReadError> {
    let start = (after > 0).then(|| chain.record_key(after));
    let page = store
        .scan_prefix(&chain.record_prefix(), start.as_deref(), limit)
        .await?;
    page.iter()
        .map(|(_, v)| codec::decode(v).map_err(|_| ReadError::Corrupt("audit record")))
        .collect()
}

/// Every stored record, chain by chain (the unnamed chain first, then the
/// named ones by name), each chain in sequence order. A record that no
/// longer decodes is `Err(seq)` at its place.
pub(crate) type Stored = BTreeMap<ChainName, Vec<Result<AuditRecord, u64>>>;

pub(crate) async fn stored<S: Store>(store: &S) -> Result<Stored, ReadError> {
    let mut out = Stored::new();
    for (prefix, named) in [
        (keyspace::AUDIT_RECORD.as_bytes(), false),
        (keyspace::AUDIT_NODE_RECORD.as_bytes(), true),
    ] {
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = store.scan_prefix(prefix, after.as_deref(), SCAN_PAGE).await?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            for (key, value) in &page {
                let (chain, seq) = if named {
                    named_record(&key[prefix.len()..]).ok_or(ReadError::Corrupt("audit record key"))?
                } else {
                    (ChainName::UNNAMED, sequence_of(&key[prefix.len()..]))
                };
                let record = codec::decode::<AuditRecord>(value).map_err(|_| seq);
                out.entry(chain).or_default().push(record);
            }
        }
    }
    Ok(out)
}

/// Every record of every chain, for export: chain by chain, each in order.
pub async fn all<S: Store>(store: &S) -> Result<Vec<ChainRecord>, ReadError> {
    let mut out = Vec::new();
    for (chain, records) in stored(store).await? {
        for record in records {
            let record = record.map_err(|_| ReadError::Corrupt("audit record"))?;
            out.push(ChainRecord {
                chain: chain.clone(),
                record,
            });
        }
    }
    Ok(out)
}

/// How often a chain's records are read on while its head keeps moving
/// (the nodes keep writing while a verify runs).
const TOP_UPS: usize = 50;

/// Walks every stored chain against its stored head, then checks that
/// every checkpoint record names records the chains still hold. The report
/// names each chain's first break. A record that no longer decodes counts
/// as altered at its place in its chain; a chain with records and no head
/// (its head deleted) breaks at its last record.
///
/// The records are read first and each head after them, so a head is never
/// behind a record a writer committed with it: a head behind the records
/// was rewound. A head ahead of them means writes committed meanwhile: the
/// chain's newer records are read on until they reach the head (or, on a
/// node that never pauses, up to `TOP_UPS` times; the records written
/// since are left for the next verify).
///
/// `anchors` (signed checkpoints whose signatures the caller checked) are
/// checked like the checkpoint records: every head they name must still be
/// in its chain as it was signed.
pub async fn verify_stored<S: Store>(
    store: &S,
    keys: &AuditKeys,
    anchors: &[SignedAnchor],
) -> Result<TrailReport, ReadError> {
    let mut stored = stored(store).await?;
    let mut heads = heads(store).await?;
    for (chain, head) in heads.iter_mut() {
        let records = stored.entry(chain.clone()).or_default();
        top_up(store, chain, records, head).await?;
    }
    let mut chains = BTreeMap::new();
    for (chain, records) in &stored {
        let decoded = records.iter().map_while(|r| r.as_ref().ok()).cloned();
        let head = heads.get(chain).cloned().map(ChainHeadView);
        let mut report = verify(keys, chain, head.as_ref(), decoded);
        if let Some(Err(seq)) = records.iter().find(|r| r.is_err()) {
            let earlier = report.first_break.as_ref().is_some_and(|b| b.seq < *seq);
            if !earlier {
                report.first_break = Some(Break {
                    seq: *seq,
                    kind: BreakKind::Altered,
                });
            }
        }
        chains.insert(chain.clone(), report);
    }
    checkpoint::check_all(&stored, &mut chains);
    anchor::check_all(anchors, &stored, &mut chains);
    Ok(TrailReport { chains })
}

/// Reads `chain`'s records after the last of `records` while `head` is
/// ahead of them, reading the head again each time. Ends with `head` at the
/// last record read when it kept moving for all `TOP_UPS` rounds; kept
/// where it is when it stands still ahead of records that are missing.
async fn top_up<S: Store>(
    store: &S,
    chain: &ChainName,
    records: &mut Vec<Result<AuditRecord, u64>>,
    head: &mut ChainHead,
) -> Result<(), ReadError> {
    let last_seq = |records: &[Result<AuditRecord, u64>]| match records.last() {
        Some(Ok(r)) => r.seq,
        Some(Err(seq)) => *seq,
        None => 0,
    };
    for _ in 0..TOP_UPS {
        let last = last_seq(records);
        if head.seq <= last {
            return Ok(());
        }
        let after = (last > 0).then(|| chain.record_key(last));
        let page = store
            .scan_prefix(&chain.record_prefix(), after.as_deref(), SCAN_PAGE)
            .await?;
        for (key, value) in &page {
            let seq = sequence_of(&key[chain.record_prefix().len()..]);
            records.push(codec::decode::<AuditRecord>(value).map_err(|_| seq));
        }
        if page.is_empty() {
            let now = self::head(store, chain).await?;
            if now == *head {
                // Nothing more to read and the head stands: the records it
                // names are missing, which `verify` reports.
                return Ok(());
            }
            *head = now;
        }
    }
    if let Some(Ok(last)) = records.last().filter(|_| head.seq > last_seq(records)) {
        *head = ChainHead {
            seq: last.seq,
            mac: last.mac.clone(),
        };
    }
    Ok(())
}

fn key_text(bytes: &[u8]) -> Option<NodeName> {
    NodeName::parse(std::str::from_utf8(bytes).ok()?).ok()
}

/// `name/seq` after the named-record prefix.
fn named_record(rest: &[u8]) -> Option<(ChainName, u64)> {
    let slash = rest.iter().position(|b| *b == b'/')?;
    let name = key_text(&rest[..slash])?;
    Some((ChainName::of(Some(name)), sequence_of(&rest[slash + 1..])))
}

/// The sequence number zero-padded digits name (0 if they name none).
fn sequence_of(digits: &[u8]) -> u64 {
    std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_key_names_its_chain_and_sequence_number() {
        let unnamed = ChainName::UNNAMED.record_key(5477);
        let prefix = keyspace::AUDIT_RECORD.as_bytes();
        assert_eq!(sequence_of(&unnamed[prefix.len()..]), 5477);
        let b = ChainName::of(Some(NodeName::parse("b").unwrap()));
        let key = b.record_key(12);
        let prefix = keyspace::AUDIT_NODE_RECORD.as_bytes();
        assert_eq!(named_record(&key[prefix.len()..]), Some((b, 12)));
        assert_eq!(sequence_of(b"x"), 0);
    }
}
