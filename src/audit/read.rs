//! The trail's read side, straight from the store: the head, a page of
//! records, every record in order, and a verification of the stored chain.
//! Whoever calls these records the access itself (the vault does, in the
//! same chain).

use super::chain::{head_key, AuditKey, ChainHead, RECORD_PREFIX};
use super::record::AuditRecord;
use super::record_key;
use super::verify::{verify, Break, BreakKind, ChainHeadView, VerifyReport};
use crate::store::{codec, Store, StoreError};

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

/// The stored head, or the genesis head of an empty trail.
pub(crate) async fn head<S: Store>(store: &S) -> Result<ChainHead, ReadError> {
    match store.get(head_key()).await? {
        Some(bytes) => codec::decode(&bytes).map_err(|_| ReadError::Corrupt("audit head")),
        None => Ok(ChainHead::genesis()),
    }
}

/// The stored head, once the record it names is found intact: what a writer
/// extends the chain from after any doubt about the store (start, a failed
/// write, a failed flush). Anything else fails closed, naming the record.
pub(crate) async fn verified_head<S: Store>(store: &S, key: &AuditKey) -> Result<ChainHead, ReadError> {
    let head = head(store).await?;
    if head.seq == 0 {
        return Ok(head);
    }
    let bytes = store
        .get(&record_key(head.seq))
        .await?
        .ok_or(ReadError::TailMissing(head.seq))?;
    let record: AuditRecord = codec::decode(&bytes).map_err(|_| ReadError::TailAltered(head.seq))?;
    if record.seq != head.seq || record.mac != head.mac || !key.verify(&record) {
        return Err(ReadError::TailAltered(head.seq));
    }
    Ok(head)
}

/// Up to `limit` records after sequence number `after`.
pub async fn page<S: Store>(store: &S, after: u64, limit: usize) -> Result<Vec<AuditRecord>, ReadError> {
    let start = (after > 0).then(|| record_key(after));
    let page = store.scan_prefix(RECORD_PREFIX, start.as_deref(), limit).await?;
    page.iter()
        .map(|(_, v)| codec::decode(v).map_err(|_| ReadError::Corrupt("audit record")))
        .collect()
}

/// Every record in sequence order.
pub async fn all<S: Store>(store: &S) -> Result<Vec<AuditRecord>, ReadError> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = page(store, after, SCAN_PAGE).await?;
        let Some(last) = page.last() else { return Ok(out) };
        after = last.seq;
        out.extend(page);
    }
}

/// Walks the whole stored chain against the stored head; the report names
/// the first break. A record that no longer decodes counts as altered at
/// its place in the chain.
pub async fn verify_stored<S: Store>(store: &S, key: &AuditKey) -> Result<VerifyReport, ReadError> {
    let head = head(store).await?;
    let mut records = Vec::new();
    let mut undecodable = None;
    let mut after: Option<Vec<u8>> = None;
    'scan: loop {
        let page = store
            .scan_prefix(RECORD_PREFIX, after.as_deref(), SCAN_PAGE)
            .await?;
        let Some((last_key, _)) = page.last() else { break };
        after = Some(last_key.clone());
        for (key, value) in &page {
            match codec::decode::<AuditRecord>(value) {
                Ok(record) => records.push(record),
                Err(_) => {
                    undecodable = Some(sequence_of(key));
                    break 'scan;
                }
            }
        }
    }
    let mut report = verify(key, Some(&ChainHeadView(head)), records);
    if let Some(seq) = undecodable {
        let earlier = report.first_break.as_ref().is_some_and(|b| b.seq < seq);
        if !earlier {
            report.first_break = Some(Break {
                seq,
                kind: BreakKind::Altered,
            });
        }
    }
    Ok(report)
}

/// The sequence number a record key names (0 if it names none).
fn sequence_of(key: &[u8]) -> u64 {
    key.get(RECORD_PREFIX.len()..)
        .and_then(|digits| std::str::from_utf8(digits).ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::sequence_of;
    use crate::audit::record_key;

    #[test]
    fn a_record_key_names_its_sequence_number() {
        assert_eq!(sequence_of(&record_key(5477)), 5477);
        assert_eq!(sequence_of(b"x"), 0);
    }
}
