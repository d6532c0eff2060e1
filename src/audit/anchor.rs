//! Signed checkpoints: the trail anchored outside the vault. An anchor is
//! every chain's head at one moment, signed with an Ed25519 key of its own
//! (sealed under the KEK like the other keys; its public half is exported).
//! Kept off the host, an anchor shows what no record inside the store can:
//! every chain cut back together, each head rewound to match, is found
//! once an anchor taken before the cut names a record the store no longer
//! holds as it was.

use super::chain::{ChainHead, ChainName};
use super::read::Stored;
use super::verify::{note_break, BreakKind, VerifyReport};
use crate::domain::node::NodeName;
use crate::ed25519::SigningKey;
use secrecy::SecretBox;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The format tag an anchor carries and signs, so no other signed text
/// of the vault's can pass for one.
pub const ANCHOR_FORMAT: &str = "tokenvault-anchor/1";

/// The unnamed chain's label in an anchor (no node name is `-`).
const UNNAMED_LABEL: &str = "-";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnchorError {
    #[error("the anchor key: {0}")]
    Key(#[from] crate::ed25519::KeyError),
    #[error("not a signed checkpoint: {0}")]
    Format(String),
    #[error("signed by another key ({found}) than the trusted one ({trusted})")]
    OtherKey { found: String, trusted: String },
    #[error("the signature does not verify: the checkpoint was altered or forged")]
    Signature,
}

/// The public half, as auditors pin it.
pub type AnchorPublicKey = crate::ed25519::PublicKey;

/// The signing key (its seed wrapped by the KEK in the store).
pub struct AnchorKey(SigningKey);

impl AnchorKey {
    pub fn new(seed: SecretBox<[u8; 32]>) -> Result<Self, AnchorError> {
        Ok(AnchorKey(SigningKey::from_seed(seed)?))
    }

    pub fn public_key(&self) -> AnchorPublicKey {
        self.0.public_key()
    }

    /// Signs `heads` as they stand at `signed_at_ms`, by node `by`.
    pub(crate) fn sign(
        &self,
        heads: &BTreeMap<ChainName, ChainHead>,
        signed_at_ms: i64,
        by: Option<&NodeName>,
    ) -> SignedAnchor {
        let mut anchor = SignedAnchor {
            format: ANCHOR_FORMAT.to_owned(),
            signed_at_ms,
            signed_by: by.map(|n| n.as_str().to_owned()),
            heads: heads
                .iter()
                .map(|(chain, head)| AnchoredHead {
                    node: chain.node().map(|n| n.as_str().to_owned()),
                    seq: head.seq,
                    mac: head.mac.clone(),
                })
                .collect(),
            public_key: self.public_key().to_hex(),
            signature: String::new(),
        };
        anchor.signature = self.0.sign_hex(&anchor.signed_text());
        anchor
    }
}

/// One chain's head in an anchor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnchoredHead {
    /// The node whose chain this is; absent for the unnamed chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    pub seq: u64,
    /// Hex HMAC of the chain's record `seq`.
    pub mac: String,
}

/// A signed checkpoint, as written to the anchor directory and answered by
/// `POST /v1/audit/anchors`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedAnchor {
    /// Always `tokenvault-anchor/1`.
    pub format: String,
    /// Milliseconds since the Unix epoch.
    pub signed_at_ms: i64,
    /// The node that signed it; absent for an unnamed node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<String>,
    /// Every chain's head, by chain (the unnamed chain first).
    pub heads: Vec<AnchoredHead>,
    /// Hex Ed25519 public key it was signed with.
    pub public_key: String,
    /// Hex Ed25519 signature over the text `signed_text` builds.
    pub signature: String,
}

impl SignedAnchor {
    /// What is signed: the format, the time, the signer and every head, one
    /// per line, in a form with one spelling only.
    fn signed_text(&self) -> Vec<u8> {
        let mut text = format!(
            "{}\nsigned_at_ms {}\nsigned_by {}\n",
            self.format,
            self.signed_at_ms,
            self.signed_by.as_deref().unwrap_or(UNNAMED_LABEL)
        );
        for head in &self.heads {
            let label = head.node.as_deref().unwrap_or(UNNAMED_LABEL);
            text.push_str(&format!("head {label} {} {}\n", head.seq, head.mac));
        }
        text.into_bytes()
    }

    /// Parses an anchor file's text.
    pub fn parse(text: &str) -> Result<Self, AnchorError> {
        let anchor: SignedAnchor =
            serde_json::from_str(text).map_err(|e| AnchorError::Format(e.to_string()))?;
        if anchor.format != ANCHOR_FORMAT {
            return Err(AnchorError::Format(format!(
                "format is {:?}, not {ANCHOR_FORMAT:?}",
                anchor.format
            )));
        }
        anchor.chain_heads()?;
        Ok(anchor)
    }

    /// Checks the signature against whichever of `trusted` (the keys the
    /// auditor pinned: every version, after a rotation) the anchor names.
    pub fn verify_any(&self, trusted: &[AnchorPublicKey]) -> Result<(), AnchorError> {
        let found = AnchorPublicKey::from_hex(&self.public_key)?;
        match trusted.iter().find(|key| **key == found) {
            Some(key) => self.verify(key),
            None => Err(AnchorError::OtherKey {
                found: found.to_hex(),
                trusted: trusted
                    .iter()
                    .map(AnchorPublicKey::to_hex)
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// Checks the signature against `trusted`, the key the auditor pinned.
    pub fn verify(&self, trusted: &AnchorPublicKey) -> Result<(), AnchorError> {
        let found = AnchorPublicKey::from_hex(&self.public_key)?;
        if found != *trusted {
            return Err(AnchorError::OtherKey {
                found: found.to_hex(),
                trusted: trusted.to_hex(),
            });
        }
        if trusted.verifies(&self.signed_text(), &self.signature) {
            Ok(())
        } else {
            Err(AnchorError::Signature)
        }
    }

    /// The heads as chains and heads (each node name checked).
    fn chain_heads(&self) -> Result<Vec<(ChainName, ChainHead)>, AnchorError> {
        self.heads
            .iter()
            .map(|head| {
                let node = head
                    .node
                    .as_deref()
                    .map(NodeName::parse)
                    .transpose()
                    .map_err(|e| AnchorError::Format(format!("node: {e}")))?;
                Ok((
                    ChainName::of(node),
                    ChainHead {
                        seq: head.seq,
                        mac: head.mac.clone(),
                    },
                ))
            })
            .collect()
    }
}

/// Marks every chain that no longer holds a record as a (signature-checked)
/// anchor recorded it.
pub(crate) fn check_all(
    anchors: &[SignedAnchor],
    stored: &Stored,
    chains: &mut BTreeMap<ChainName, VerifyReport>,
) {
    for anchor in anchors {
        // `parse` checked the heads; an anchor built otherwise names none.
        for (chain, head) in anchor.chain_heads().unwrap_or_default() {
            if head.seq > 0 && !super::checkpoint::holds(stored.get(&chain), &head) {
                note_break(chains, chain, head.seq, BreakKind::BehindSignedCheckpoint);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> AnchorKey {
        AnchorKey::new(SecretBox::new(Box::new([byte; 32]))).unwrap()
    }

    fn heads() -> BTreeMap<ChainName, ChainHead> {
        super::super::checkpoint::tests::two_heads()
    }

    #[test]
    fn a_signed_anchor_round_trips_through_its_file_and_verifies() {
        let key = key(1);
        let anchor = key.sign(&heads(), 1_700_000_000_000, None);
        let text = serde_json::to_string_pretty(&anchor).unwrap();
        let parsed = SignedAnchor::parse(&text).unwrap();
        assert_eq!(parsed, anchor);
        parsed.verify(&key.public_key()).unwrap();
        assert_eq!(
            parsed.chain_heads().unwrap(),
            heads().into_iter().collect::<Vec<_>>()
        );
    }

    #[test]
    fn any_change_to_a_signed_field_fails_the_signature() {
        let key = key(1);
        let anchor = key.sign(&heads(), 1_700_000_000_000, None);
        let changes: [fn(&mut SignedAnchor); 5] = [
            |a| a.signed_at_ms += 1,
            |a| a.signed_by = Some("a".into()),
            |a| a.heads[0].seq -= 1,
            |a| a.heads[1].mac = "ce".repeat(32),
            |a| {
                a.heads.pop();
            },
        ];
        for change in changes {
            let mut changed = anchor.clone();
            change(&mut changed);
            assert!(matches!(
                changed.verify(&key.public_key()),
                Err(AnchorError::Signature)
            ));
        }
    }

    #[test]
    fn an_anchor_of_another_key_is_refused_even_if_its_own_signature_holds() {
        let forged = key(2).sign(&heads(), 1, None);
        assert!(forged.verify(&key(2).public_key()).is_ok());
        assert!(matches!(
            forged.verify(&key(1).public_key()),
            Err(AnchorError::OtherKey { .. })
        ));
        // The forger's anchor relabelled with the trusted key's name.
        let mut relabelled = forged;
        relabelled.public_key = key(1).public_key().to_hex();
        assert!(matches!(
            relabelled.verify(&key(1).public_key()),
            Err(AnchorError::Signature)
        ));
    }

    #[test]
    fn a_file_of_another_format_or_with_a_bad_node_is_refused() {
        let mut anchor = key(1).sign(&heads(), 1, None);
        anchor.format = "tokenvault-anchor/0".into();
        let text = serde_json::to_string(&anchor).unwrap();
        assert!(matches!(SignedAnchor::parse(&text), Err(AnchorError::Format(_))));
        let mut anchor = key(1).sign(&heads(), 1, None);
        anchor.heads[1].node = Some("B!".into());
        let text = serde_json::to_string(&anchor).unwrap();
        assert!(matches!(SignedAnchor::parse(&text), Err(AnchorError::Format(_))));
        assert!(SignedAnchor::parse("{}").is_err());
    }
}
