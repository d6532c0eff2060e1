//! The audit key's versions. A chain moves to a new version at a record
//! boundary: the rotation record (`keys.rotate_audit`, detail `to=N …`) is
//! the first record MACed with version N, and every record after it is
//! MACed with N too, until the next rotation. A record's version is in its
//! MAC: 64 hex digits for version 1 (as every MAC was before versions
//! existed), `vN:` then 64 hex digits for N ≥ 2. Verification follows the
//! chain's version record by record, so whoever holds an old key cannot
//! append records past the rotation, and old records stay verifiable
//! with the version they were written under.

use super::chain::{AuditKey, ChainName};
use super::record::AuditRecord;
use crate::domain::operation::Operation;
use crate::versions::Versions;

/// Every audit key version this node holds, for writing (the newest its
/// chain has moved to) and for verifying (all of them).
pub struct AuditKeys {
    keys: Versions<AuditKey>,
}

impl AuditKeys {
    /// Version 1; later versions are added as they are loaded (`held`).
    pub fn new(first: AuditKey) -> Self {
        AuditKeys {
            keys: Versions::new(first),
        }
    }

    /// The versions held, to add one loaded after start (a rotation here
    /// or on another node), or drop one that never reached the store.
    pub(crate) fn held(&self) -> &Versions<AuditKey> {
        &self.keys
    }

    pub fn newest(&self) -> u32 {
        self.keys.newest().0
    }

    /// `record`'s MAC under `version`, spelled with its version; `None`
    /// when this node does not hold that version.
    pub(crate) fn mac(&self, version: u32, chain: &ChainName, record: &AuditRecord) -> Option<String> {
        let mac = self.keys.get(version)?.mac(chain, record);
        Some(if version == 1 {
            mac
        } else {
            format!("v{version}:{mac}")
        })
    }

    /// Whether `record`'s MAC is right under the version it names.
    pub(crate) fn verify(&self, chain: &ChainName, record: &AuditRecord) -> bool {
        let Some((version, hex)) = split_mac(&record.mac) else {
            return false;
        };
        self.keys
            .get(version)
            .is_some_and(|key| key.verify_hex(chain, record, hex))
    }
}

/// A MAC's version and its hex digits.
pub(crate) fn split_mac(mac: &str) -> Option<(u32, &str)> {
    match mac.strip_prefix('v') {
        None => Some((1, mac)),
        Some(rest) => {
            let (digits, hex) = rest.split_once(':')?;
            // One spelling per version: no sign, no leading zero.
            if digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let version: u32 = digits.parse().ok()?;
            (version >= 2).then_some((version, hex))
        }
    }
}

/// The version the MAC `mac` was made with (the genesis head's zeros: 1).
pub(crate) fn version_of(mac: &str) -> Option<u32> {
    split_mac(mac).map(|(version, _)| version)
}

/// The detail of a rotation record moving the chain to `to`.
pub(crate) fn rotation_detail(to: u32) -> String {
    format!("to={to} (this record and every later one in this chain are MACed with audit key version {to})")
}

/// The version a record moves its chain to, if it is a rotation record.
fn rotation_target(operation: &str, outcome: &str, detail: Option<&str>) -> Option<u32> {
    if operation != Operation::KeyRotateAudit.as_str() || outcome != "success" {
        return None;
    }
    let rest = detail?.strip_prefix("to=")?;
    let digits = rest.split(' ').next()?;
    digits.parse().ok()
}

/// The version a record must be MACed with, after a record MACed with
/// `previous`: a rotation record to a newer version moves it; anything
/// else (a rotation to a version the chain passed already included) keeps it.
pub(crate) fn next_version(previous: u32, operation: &str, outcome: &str, detail: Option<&str>) -> u32 {
    match rotation_target(operation, outcome, detail) {
        Some(to) if to > previous => to,
        _ => previous,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_spelled_in_the_mac_and_read_back() {
        let hex = "ab".repeat(32);
        assert_eq!(split_mac(&hex), Some((1, hex.as_str())));
        assert_eq!(split_mac(&format!("v2:{hex}")), Some((2, hex.as_str())));
        assert_eq!(split_mac(&format!("v12:{hex}")), Some((12, hex.as_str())));
        for bad in [
            format!("v1:{hex}"),
            format!("v02:{hex}"),
            format!("v:{hex}"),
            format!("vx:{hex}"),
        ] {
            assert_eq!(split_mac(&bad), None, "{bad}");
        }
        assert_eq!(version_of(&"0".repeat(64)), Some(1));
    }

    #[test]
    fn only_a_successful_rotation_to_a_newer_version_moves_the_chain() {
        let rotate = Operation::KeyRotateAudit.as_str();
        let to_3 = rotation_detail(3);
        assert_eq!(next_version(1, rotate, "success", Some(&to_3)), 3);
        assert_eq!(next_version(3, rotate, "success", Some(&rotation_detail(2))), 3);
        assert_eq!(next_version(1, rotate, "error", Some(&to_3)), 1);
        assert_eq!(next_version(1, "card.store", "success", Some(&to_3)), 1);
        assert_eq!(next_version(1, rotate, "success", Some("to=x")), 1);
    }
}
