//! Appending to the chain. The head (last sequence number and MAC) lives in
//! the store beside the records and in memory behind a lock; `next` builds
//! the record and the writes that extend the chain, which the vault adds to
//! the batch of the operation being audited.

use super::keys::AuditKeys;
use super::record::AuditRecord;
use super::{Actor, Outcome};
use crate::domain::node::NodeName;
use crate::store::keyspace;
use ring::hmac;
use secrecy::{ExposeSecret, SecretBox};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// Which chain: the store's first, which a single node (and any node
/// without a `node_name`) extends, or a named node's own. Several nodes on
/// one store each append to their own chain, so none waits on another's
/// head; checkpoint records tie the chains together (`checkpoint`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChainName(Option<NodeName>);

impl ChainName {
    pub const UNNAMED: ChainName = ChainName(None);

    pub fn of(node: Option<NodeName>) -> Self {
        ChainName(node)
    }

    pub fn node(&self) -> Option<&NodeName> {
        self.0.as_ref()
    }

    /// Where this chain's records are, in sequence order under one prefix.
    pub(crate) fn record_prefix(&self) -> Vec<u8> {
        match &self.0 {
            None => keyspace::AUDIT_RECORD.as_bytes().to_vec(),
            Some(node) => keyspace::AUDIT_NODE_RECORD.key(format_args!("{node}/")),
        }
    }

    /// The record key: the prefix, then the zero-padded sequence number.
    pub(crate) fn record_key(&self, seq: u64) -> Vec<u8> {
        match &self.0 {
            None => keyspace::AUDIT_RECORD.key(format_args!("{seq:020}")),
            Some(node) => keyspace::AUDIT_NODE_RECORD.key(format_args!("{node}/{seq:020}")),
        }
    }

    pub(crate) fn head_key(&self) -> Vec<u8> {
        match &self.0 {
            None => keyspace::AUDIT_HEAD.as_bytes().to_vec(),
            Some(node) => keyspace::AUDIT_NODE_HEAD.key(node),
        }
    }

    /// A named chain's record is bound to its chain by the MAC, so no
    /// record can be moved from one node's chain into another's. The
    /// unnamed chain's input is what it always was.
    fn mac_suffix(&self) -> Option<&[u8]> {
        self.0.as_ref().map(|node| node.as_str().as_bytes())
    }
}

impl fmt::Display for ChainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            None => f.write_str("the unnamed chain"),
            Some(node) => write!(f, "node {node}'s chain"),
        }
    }
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

    pub(crate) fn mac(&self, chain: &ChainName, record: &AuditRecord) -> String {
        let input = record.mac_input(chain.mac_suffix());
        crate::hex::encode(hmac::sign(&self.key, &input).as_ref())
    }

    /// Constant-time comparison of a stored MAC's hex digits (`hex`, its
    /// version stripped) with the recomputed one.
    pub(crate) fn verify_hex(&self, chain: &ChainName, record: &AuditRecord, hex: &str) -> bool {
        let mut stored = [0u8; 32];
        crate::hex::decode_into(hex, &mut stored).is_some()
            && hmac::verify(&self.key, &record.mac_input(chain.mac_suffix()), &stored).is_ok()
    }
}

/// The chain's head names an audit key version this node does not hold
/// (0: a head whose MAC names no version at all).
#[derive(Debug, thiserror::Error)]
#[error("the audit chain is at key version {0}, which this node does not hold")]
pub struct MissingKey(pub u32);

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

/// This node's chain: its name, the trail's keys and its tally. The head
/// itself belongs to whoever appends (the vault's committer), which alone
/// moves it.
pub struct AuditChain {
    pub(crate) keys: Arc<AuditKeys>,
    pub(crate) name: ChainName,
    pub tally: super::Tally,
}

impl AuditChain {
    pub fn new(keys: Arc<AuditKeys>, name: ChainName) -> Self {
        AuditChain {
            keys,
            name,
            tally: super::Tally::default(),
        }
    }

    pub fn name(&self) -> &ChainName {
        &self.name
    }

    pub(crate) fn next(
        &self,
        head: &ChainHead,
        actor: &Actor,
        entry: Entry<'_>,
        at_ms: i64,
    ) -> Result<(AuditRecord, ChainHead), MissingKey> {
        let previous = super::keys::version_of(&head.mac).ok_or(MissingKey(0))?;
        let version = super::keys::next_version(
            previous,
            entry.operation,
            entry.outcome.as_str(),
            entry.detail.as_deref(),
        );
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
        record.mac = self
            .keys
            .mac(version, &self.name, &record)
            .ok_or(MissingKey(version))?;
        let new_head = ChainHead {
            seq: record.seq,
            mac: record.mac.clone(),
        };
        Ok((record, new_head))
    }
}
