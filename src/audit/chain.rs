//! Appending to the chain. The head (last sequence number and MAC) lives in
//! the store beside the records and in memory behind a lock; `next` builds
//! the record and the writes that extend the chain, which the vault adds to
//! the batch of the operation being audited.

use super::record::AuditRecord;
use super::{Actor, Outcome};
use crate::store::keyspace;
use ring::hmac;
use secrecy::{ExposeSecret, SecretBox};
use serde::{Deserialize, Serialize};

pub(crate) const RECORD_PREFIX: &[u8] = keyspace::AUDIT_RECORD.as_bytes();
const HEAD_KEY: &[u8] = keyspace::AUDIT_HEAD.as_bytes();

pub(crate) fn record_key(seq: u64) -> Vec<u8> {
    keyspace::AUDIT_RECORD.key(format_args!("{seq:020}"))
}

pub(crate) fn head_key() -> &'static [u8] {
    HEAD_KEY
}

/// The MAC key of the chain, wrapped by the KEK in the store like the data
/// keys. As with the fingerprint key, ring's precomputed HMAC state is not
/// zeroized on drop; the raw key is.
pub struct AuditKey {
    _raw: SecretBox<[u8; 32]>,
    key: hmac::Key,
}

impl AuditKey {
    pub fn new(raw: SecretBox<[u8; 32]>) -> Self {
        let key = hmac::Key::new(hmac::HMAC_SHA256, raw.expose_secret());
        AuditKey { _raw: raw, key }
    }

    pub(crate) fn mac(&self, record: &AuditRecord) -> String {
        crate::hex::encode(hmac::sign(&self.key, &record.mac_input()).as_ref())
    }

    /// Constant-time comparison of a stored MAC with the recomputed one.
    pub(crate) fn verify(&self, record: &AuditRecord) -> bool {
        let mut stored = [0u8; 32];
        crate::hex::decode_into(&record.mac, &mut stored).is_some()
            && hmac::verify(&self.key, &record.mac_input(), &stored).is_ok()
    }
}

/// The last record appended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ChainHead {
    pub seq: u64,
    pub mac: String,
}

impl ChainHead {
    pub(crate) fn genesis() -> Self {
        ChainHead {
            seq: 0,
            mac: "0".repeat(64),
        }
    }
}

/// What a new record says, before the chain numbers and MACs it.
#[derive(Clone)]
pub(crate) struct Entry<'a> {
    pub operation: &'a str,
    pub object: Option<String>,
    pub outcome: Outcome,
    pub detail: Option<String>,
}

/// The chain's key and its tally. The head itself belongs to whoever
/// appends (the vault's committer), which alone moves it.
pub struct AuditChain {
    pub(crate) key: AuditKey,
    pub tally: super::Tally,
}

impl AuditChain {
    pub fn new(key: AuditKey) -> Self {
        AuditChain {
            key,
            tally: super::Tally::default(),
        }
    }

    pub(crate) fn next(
        &self,
        head: &ChainHead,
        actor: &Actor,
        entry: Entry<'_>,
        at_ms: i64,
    ) -> (AuditRecord, ChainHead) {
        let mut record = AuditRecord {
            seq: head.seq + 1,
            at_ms,
            identity: actor.identity.clone(),
            origin: actor.origin.clone(),
            request_id: actor.request_id.clone(),
            operation: entry.operation.to_owned(),
            object: entry.object,
            outcome: entry.outcome.as_str().to_owned(),
            detail: entry.detail,
            prev_mac: head.mac.clone(),
            mac: String::new(),
        };
        record.mac = self.key.mac(&record);
        let new_head = ChainHead {
            seq: record.seq,
            mac: record.mac.clone(),
        };
        (record, new_head)
    }
}
