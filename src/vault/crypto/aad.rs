//! Additional authenticated data: binds a ciphertext to the record kind,
//! record id, field and key version it was written for, so a ciphertext
//! copied anywhere else fails to open.

/// What kind of record a ciphertext belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RecordKind {
    Card,
    Identity,
    /// A bank agreement number (签约号) returned by a channel.
    Agreement,
    /// A chunk of a channel's statement file.
    Statement,
    /// A data key wrapped by the key-encrypting key.
    DataKey,
    /// The fingerprint key wrapped by the key-encrypting key.
    FingerprintKey,
    /// The audit chain's MAC key wrapped by the key-encrypting key.
    AuditKey,
    /// The payment-password pepper wrapped by the key-encrypting key.
    PepperKey,
    /// The audit anchors' signing seed wrapped by the key-encrypting key.
    AnchorKey,
}

impl RecordKind {
    fn tag(self) -> &'static [u8] {
        match self {
            RecordKind::Card => b"card",
            RecordKind::Identity => b"identity",
            RecordKind::Agreement => b"agreement",
            RecordKind::Statement => b"statement",
            RecordKind::DataKey => b"data-key",
            RecordKind::FingerprintKey => b"fingerprint-key",
            RecordKind::AuditKey => b"audit-key",
            RecordKind::PepperKey => b"pepper-key",
            RecordKind::AnchorKey => b"anchor-key",
        }
    }
}

/// Where a ciphertext lives. The key version is added by the sealer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Binding<'a> {
    pub kind: RecordKind,
    pub record_id: &'a str,
    pub field: &'static str,
}

const DOMAIN: &[u8] = b"tokenvault/aad/v1";

impl Binding<'_> {
    /// Length-prefixed, so no two distinct bindings encode the same bytes.
    pub(crate) fn encode(&self, key_version: u32) -> Vec<u8> {
        let parts: [&[u8]; 3] = [self.kind.tag(), self.record_id.as_bytes(), self.field.as_bytes()];
        let mut out = Vec::with_capacity(DOMAIN.len() + 4 + parts.iter().map(|p| p.len() + 4).sum::<usize>());
        out.extend_from_slice(DOMAIN);
        for part in parts {
            // Record ids and field names are short; a u32 length cannot overflow.
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part);
        }
        out.extend_from_slice(&key_version.to_be_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifting_bytes_between_parts_changes_the_encoding() {
        let a = Binding {
            kind: RecordKind::Card,
            record_id: "ab",
            field: "c",
        };
        let b = Binding {
            kind: RecordKind::Card,
            record_id: "a",
            field: "bc",
        };
        assert_ne!(a.encode(1), b.encode(1));
        assert_ne!(a.encode(1), a.encode(2));
    }
}
