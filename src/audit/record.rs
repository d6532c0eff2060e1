//! One audit record as stored and exported.

use serde::{Deserialize, Serialize};

/// Never holds a PAN or identity plaintext: objects are references or token
/// numbers, details are rule codes or an operator's checked reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    pub identity: String,
    pub origin: String,
    pub request_id: String,
    pub operation: String,
    pub object: Option<String>,
    pub outcome: String,
    pub detail: Option<String>,
    /// Hex HMAC-SHA256 of the previous record (zeros for the first).
    pub prev_mac: String,
    /// Hex HMAC-SHA256 over this record's fields and `prev_mac`.
    pub mac: String,
}

/// A record and the chain it was read from (export). It reads as the
/// record itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainRecord {
    pub chain: super::ChainName,
    pub record: AuditRecord,
}

impl std::ops::Deref for ChainRecord {
    type Target = AuditRecord;
    fn deref(&self) -> &AuditRecord {
        &self.record
    }
}

impl ChainRecord {
    /// The record as one JSON line of an export.
    pub fn export_line(&self) -> ExportLine<'_> {
        ExportLine {
            node: self.chain.node().map(crate::domain::node::NodeName::as_str),
            record: &self.record,
        }
    }
}

/// One line of an export: the record, and the node whose chain holds it
/// (absent for the unnamed chain, so a single node's export is unchanged).
#[derive(Serialize)]
pub struct ExportLine<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<&'a str>,
    #[serde(flatten)]
    pub record: &'a AuditRecord,
}

impl AuditRecord {
    /// The bytes the MAC covers: every field but `mac`, length-prefixed,
    /// then a named chain's name (`ChainName::mac_suffix`).
    pub(crate) fn mac_input(&self, chain: Option<&[u8]>) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(b"tokenvault/audit/v1");
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.at_ms.to_be_bytes());
        let fields: [Option<&str>; 8] = [
            Some(&self.identity),
            Some(&self.origin),
            Some(&self.request_id),
            Some(&self.operation),
            self.object.as_deref(),
            Some(&self.outcome),
            self.detail.as_deref(),
            Some(&self.prev_mac),
        ];
        for field in fields {
            match field {
                None => out.push(0),
                Some(text) => {
                    out.push(1);
                    // Audit fields are short; u32 lengths cannot overflow.
                    out.extend_from_slice(&(text.len() as u32).to_be_bytes());
                    out.extend_from_slice(text.as_bytes());
                }
            }
        }
        if let Some(name) = chain {
            out.extend_from_slice(b"chain");
            out.extend_from_slice(&(name.len() as u32).to_be_bytes());
            out.extend_from_slice(name);
        }
        out
    }
}
