//! The one registry of the store's key space: every family of keys, the
//! layer that owns it and what it holds. Layout code builds keys only from
//! these entries, so no prefix is spelled anywhere else, and the test below
//! keeps the families apart (no family's prefix starts another's, so a
//! prefix scan never walks into a neighbour).

use std::fmt::Display;

/// A family of store keys: a prefix followed by an id, or one fixed key.
#[derive(Debug)]
pub struct Family {
    text: &'static str,
    /// Which layer writes it (documentation and the registry's listing).
    pub owner: &'static str,
    pub holds: &'static str,
}

impl Family {
    const fn new(text: &'static str, owner: &'static str, holds: &'static str) -> Self {
        Family { text, owner, holds }
    }

    /// The prefix (or the whole key of a single-key family).
    pub const fn as_bytes(&self) -> &'static [u8] {
        self.text.as_bytes()
    }

    pub fn as_str(&self) -> &'static str {
        self.text
    }

    /// The key of one member: the prefix, then `id` as displayed.
    pub fn key(&self, id: impl Display) -> Vec<u8> {
        format!("{}{id}", self.text).into_bytes()
    }
}

// The vault's keys, wrapped by the KEK.
pub const DATA_KEY: Family = Family::new("key/data/", "vault", "data-key versions (zero-padded)");
pub const DATA_KEY_CURRENT: Family = Family::new(
    "key/data-current",
    "vault",
    "the current data-key version, which every sealing write is fenced on",
);
pub const FINGERPRINT_KEY: Family = Family::new(
    "key/fingerprint/",
    "vault",
    "the PAN fingerprint key's versions (zero-padded); version 1 also keys request digests",
);
pub const FINGERPRINT_CURRENT: Family = Family::new(
    "key/fingerprint-current",
    "vault",
    "the current fingerprint version, which every new card and token is fenced on",
);
pub const FINGERPRINT_FLOOR: Family = Family::new(
    "key/fingerprint-floor",
    "vault",
    "the oldest fingerprint version a card's index entry may still be under",
);
pub const AUDIT_KEY: Family = Family::new(
    "key/audit/",
    "vault",
    "the audit chain's MAC key versions (zero-padded)",
);
pub const PEPPER_KEY: Family = Family::new(
    "key/pepper/",
    "vault",
    "the payment-password pepper's versions (zero-padded)",
);
pub const ANCHOR_KEY: Family = Family::new(
    "key/anchor/",
    "vault",
    "the Ed25519 seeds signing audit anchors, by version (zero-padded)",
);
pub const REWRAP_JOB: Family = Family::new("key/rewrap-job", "vault", "the rewrap job's cursor and counts");
pub const CUSTODY: Family = Family::new("key/custody", "vault", "the KEK's share-set manifest and version");
// The vault's records.
pub const CARD: Family = Family::new("card/", "vault", "card records (PAN sealed)");
pub const CARD_FINGERPRINT: Family = Family::new("card-fp/", "vault", "PAN fingerprint → card reference");
pub const IDENTITY: Family = Family::new("identity/", "vault", "identity records (sealed)");
pub const IDENTITY_HELD: Family = Family::new(
    "identity-held/",
    "vault",
    "identities a payment password was set against (kept from retention), with when",
);
pub const TOKEN: Family = Family::new("token/", "vault", "payment tokens with controls and usage");
pub const CARD_TOKEN: Family = Family::new("card-token/", "vault", "tokens of one card");
pub const ERASED_TOKEN: Family = Family::new(
    "token-erased/",
    "vault",
    "numbers of tokens deleted with their erased card, never drawn again",
);
pub const RESERVATION: Family =
    Family::new("reservation/", "vault", "reservations against a token's controls");
pub const AGREEMENT: Family = Family::new("agreement/", "vault", "signed agreements (number sealed)");
pub const PASSWORD: Family = Family::new("password/", "vault", "payment-password hashes and lock-outs");
pub const REVEAL_WINDOW: Family = Family::new(
    "reveal-window/",
    "vault",
    "each identity's reveals in the last hour (the rate limit)",
);
pub const STATEMENT: Family = Family::new(
    "statement/",
    "vault",
    "channels' statement files as fetched, sealed in chunks, by channel, date, SHA-256 and chunk",
);
pub const REVEAL_REQUEST: Family = Family::new(
    "reveal-request/",
    "vault",
    "break-glass reveals requested and approved (dual control), each consumed by its reveal",
);
// Orchestration's records.
pub const BINDING: Family = Family::new("binding/", "orchestration", "bindings");
pub const USER_BINDING: Family = Family::new("user-binding/", "orchestration", "bindings of one user");
pub const CARD_BINDING: Family = Family::new("card-binding/", "orchestration", "bindings of one card");
pub const TOKEN_BINDING: Family = Family::new("token-binding/", "orchestration", "token → its binding");
pub const PAYMENT: Family = Family::new("payment/", "orchestration", "payments");
pub const ORDER: Family = Family::new("order/", "orchestration", "merchant order → payment");
pub const BINDING_PAYMENT: Family =
    Family::new("binding-payment/", "orchestration", "payments of one binding");
pub const OPEN_PAYMENT: Family = Family::new("open-payment/", "orchestration", "payments not yet settled");
pub const RECON_RUN: Family = Family::new("recon-run/", "orchestration", "reconciliation runs, by id");
pub const RECON_DATE: Family = Family::new(
    "recon-date/",
    "orchestration",
    "reconciliation runs of a channel and date, by version",
);
pub const RECON_RESOLUTION: Family = Family::new(
    "recon-resolution/",
    "orchestration",
    "what was done about a discrepancy, by whom and why",
);
pub const RECON_DISCREPANCY: Family = Family::new(
    "recon-discrepancy/",
    "orchestration",
    "statement lines and vault successes that did not match, by run",
);
pub const RECON_OPEN: Family = Family::new(
    "recon-open/",
    "orchestration",
    "discrepancies not yet resolved, by run: the queue",
);
pub const RECON_SHORT: Family = Family::new(
    "recon-short/",
    "orchestration",
    "vault successes no statement has shown yet (短款), by channel and order: carried to the next file",
);
pub const RECON_SEEN: Family = Family::new(
    "recon-seen/",
    "orchestration",
    "the run whose statement first showed each payment or refund, by channel and order",
);
pub const RECON_REFUND: Family = Family::new(
    "recon-refund/",
    "orchestration",
    "refunds a run made at the channel for money it took on orders closed here, by channel and order",
);
pub const CHANNEL_STATE: Family = Family::new(
    "channel-state/",
    "orchestration",
    "each channel's operator state and failure trip, shared by every node",
);
// The audit trail.
pub const AUDIT_RECORD: Family =
    Family::new("audit/rec/", "audit", "audit records by sequence (zero-padded)");
pub const AUDIT_HEAD: Family = Family::new("audit/head", "audit", "the unnamed chain's head");
pub const AUDIT_NODE_RECORD: Family = Family::new(
    "audit/node-rec/",
    "audit",
    "a named node's audit records: node name, '/', sequence (zero-padded)",
);
pub const AUDIT_NODE_HEAD: Family = Family::new("audit/node-head/", "audit", "a named node's chain head");
pub const LEASE: Family = Family::new(
    "lease/",
    "vault",
    "leases: which node runs a background task, or holds a node name",
);
// Operations.
pub const READY_PROBE: Family = Family::new("probe/ready", "vault", "the readiness probe's last write");
// The API's remembered answers.
pub const IDEMPOTENCY: Family = Family::new("idempotency/", "api", "remembered answers by caller and key");

/// Every family, for the listing and the test.
pub const ALL: [&Family; 47] = [
    &DATA_KEY,
    &DATA_KEY_CURRENT,
    &FINGERPRINT_KEY,
    &FINGERPRINT_CURRENT,
    &FINGERPRINT_FLOOR,
    &AUDIT_KEY,
    &PEPPER_KEY,
    &ANCHOR_KEY,
    &REWRAP_JOB,
    &CUSTODY,
    &CARD,
    &CARD_FINGERPRINT,
    &IDENTITY,
    &IDENTITY_HELD,
    &TOKEN,
    &CARD_TOKEN,
    &ERASED_TOKEN,
    &RESERVATION,
    &AGREEMENT,
    &PASSWORD,
    &REVEAL_WINDOW,
    &REVEAL_REQUEST,
    &BINDING,
    &USER_BINDING,
    &CARD_BINDING,
    &TOKEN_BINDING,
    &PAYMENT,
    &ORDER,
    &BINDING_PAYMENT,
    &OPEN_PAYMENT,
    &RECON_RUN,
    &RECON_DATE,
    &RECON_DISCREPANCY,
    &RECON_RESOLUTION,
    &RECON_OPEN,
    &RECON_SHORT,
    &RECON_SEEN,
    &RECON_REFUND,
    &STATEMENT,
    &CHANNEL_STATE,
    &AUDIT_RECORD,
    &AUDIT_HEAD,
    &AUDIT_NODE_RECORD,
    &AUDIT_NODE_HEAD,
    &LEASE,
    &READY_PROBE,
    &IDEMPOTENCY,
];

/// Keys every store transaction locks before any other (and in this one
/// order), so a row that nearly every write reads and only a rare write
/// changes can be locked shared: the current data-key and fingerprint
/// versions.
pub fn locked_first(key: &[u8]) -> bool {
    key == DATA_KEY_CURRENT.as_bytes() || key == FINGERPRINT_CURRENT.as_bytes()
}

/// The family `key` belongs to (at most one: no family's prefix starts another's).
pub fn family_of(key: &[u8]) -> Option<&'static Family> {
    ALL.iter()
        .copied()
        .find(|family| key.starts_with(family.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_names_its_one_family() {
        for family in ALL {
            let member = family.key("x");
            assert_eq!(family_of(&member).map(Family::as_str), Some(family.as_str()));
        }
        assert!(family_of(b"nobody/x").is_none());
    }

    #[test]
    fn no_family_starts_another() {
        for (i, a) in ALL.iter().enumerate() {
            for (j, b) in ALL.iter().enumerate() {
                if i != j {
                    assert!(
                        !b.as_str().starts_with(a.as_str()),
                        "{} starts {}",
                        a.as_str(),
                        b.as_str()
                    );
                }
            }
        }
    }

    #[test]
    fn every_family_is_listed_in_the_source_once() {
        let source = include_str!("keyspace.rs");
        let declared = source
            .lines()
            .filter(|l| l.starts_with("pub const ") && l.contains(": Family"))
            .count();
        assert_eq!(declared, ALL.len());
    }
}
