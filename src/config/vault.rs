//! `[kek]`, `[keys]`, `[audit]` and `[cards]`: how the vault holds its keys,
//! how its trail trades durability for reads, and what cards it accepts.
//! The vault builds its configuration from these
//! (`vault::VaultConfig::from_settings`).

use super::{within, ConfigError};
use serde::Deserialize;
use std::path::PathBuf;

/// One year: the default cryptoperiod of a data-key version.
pub const DEFAULT_CRYPTOPERIOD_S: u64 = 365 * 24 * 3600;
/// Two years: the default cryptoperiod of the KEK.
pub const DEFAULT_KEK_CRYPTOPERIOD_S: u64 = 2 * DEFAULT_CRYPTOPERIOD_S;

/// The payment-token BIN range used when none is configured: 81xxxx, which
/// no card network issues from.
pub const DEFAULT_TOKEN_BIN_RANGE: &str = "810000-819999";

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KekSection {
    /// `dev-file` (default): one key file beside the data, for development.
    /// `shares`: production; the service starts sealed until custodians
    /// submit enough shares (`tokenvault keys unseal`).
    pub custody: KekCustody,
    /// Development key-encrypting key file; created on first use (mode 0600)
    /// and loudly reported at every start. Default `keys_dir/dev-kek.hex`.
    pub dev_file: Option<PathBuf>,
    /// While sealed, share submissions one identity may make per
    /// `unseal_window_s` (default 5), and this node takes from everyone
    /// (default 30); past either, `429` and an audited refusal.
    pub unseal_per_identity: u32,
    pub unseal_per_node: u32,
    /// Default 60 s.
    pub unseal_window_s: u64,
    /// The KEK's cryptoperiod (share custody): past it, metrics and the
    /// log warn until custodians rotate it (`keys rotate-kek`). Default two
    /// years (NIST SP 800-57 Part 1, key-wrapping keys); 1 s to ten years.
    pub cryptoperiod_s: u64,
}

impl Default for KekSection {
    fn default() -> Self {
        KekSection {
            custody: KekCustody::default(),
            dev_file: None,
            unseal_per_identity: 5,
            unseal_per_node: 30,
            unseal_window_s: 60,
            cryptoperiod_s: DEFAULT_KEK_CRYPTOPERIOD_S,
        }
    }
}

impl KekSection {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        within("kek.unseal_per_identity", self.unseal_per_identity, 1..=100)?;
        within("kek.unseal_per_node", self.unseal_per_node, 1..=1000)?;
        within("kek.unseal_window_s", self.unseal_window_s, 1..=3600)?;
        within(
            "kek.cryptoperiod_s",
            self.cryptoperiod_s,
            1..=10 * DEFAULT_CRYPTOPERIOD_S,
        )?;
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KekCustody {
    #[default]
    DevFile,
    Shares,
}

/// Data-key lifecycle.
/// `[audit]`: the trail's durability trade for plain reads.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSection {
    /// A plain read's audit record is applied before its answer leaves, but
    /// its flush is not awaited: it is asked for with the next write, or
    /// once the oldest such record has waited this. Default 10 ms (1 to 1000).
    pub read_durability_ms: u64,
    /// How often a node records every chain's head in its own chain, when
    /// other nodes' chains exist and moved (`audit::checkpoint`). A tail
    /// cut from a chain is found once a checkpoint after it exists, so
    /// this bounds the window. Default 10 s (1 to 3600).
    pub checkpoint_interval_s: u64,
    /// Where signed checkpoints (anchors) are written, one file each: a
    /// folder that is somewhere else than the store, ideally another host's
    /// mount. Unset: anchors only on demand (`POST /v1/audit/anchors`).
    pub anchor_dir: Option<std::path::PathBuf>,
    /// How often an anchor is signed into `anchor_dir` (by one node at a
    /// time). Default 300 s (1 to 86400).
    pub anchor_interval_s: u64,
    /// A file every record of this node's chain is appended to as JSON
    /// lines as it commits (`audit::sink`). Unset: no sink.
    pub sink_file: Option<std::path::PathBuf>,
    /// How often failed TLS handshakes, counted by source and cause, are
    /// written as one audit record (when there were any). Default 60 s (1
    /// to 3600).
    pub handshake_report_interval_s: u64,
}

impl Default for AuditSection {
    fn default() -> Self {
        AuditSection {
            read_durability_ms: 10,
            checkpoint_interval_s: 10,
            anchor_dir: None,
            anchor_interval_s: 300,
            sink_file: None,
            handshake_report_interval_s: 60,
        }
    }
}

impl AuditSection {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        within("audit.read_durability_ms", self.read_durability_ms, 1..=1000)?;
        within(
            "audit.checkpoint_interval_s",
            self.checkpoint_interval_s,
            1..=3600,
        )?;
        within("audit.anchor_interval_s", self.anchor_interval_s, 1..=86_400)?;
        within(
            "audit.handshake_report_interval_s",
            self.handshake_report_interval_s,
            1..=3600,
        )?;
        Ok(())
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysSection {
    /// Age after which the current data-key version is replaced for new
    /// writes. Default one year.
    pub cryptoperiod_s: u64,
    /// Rewrap speed limit, so live traffic keeps its latency. Default 2000.
    pub rewrap_records_per_s: u32,
    /// How often the key-maintenance task checks the cryptoperiod. Default 60 s.
    pub check_interval_s: u64,
}

impl Default for KeysSection {
    fn default() -> Self {
        KeysSection {
            cryptoperiod_s: DEFAULT_CRYPTOPERIOD_S,
            rewrap_records_per_s: 2000,
            check_interval_s: 60,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CardsSection {
    /// BIN table CSV; default the embedded `config/bins.csv`.
    pub bin_table: Option<PathBuf>,
    /// BIN prefixes whose PANs carry no Luhn check digit. Default none.
    pub luhn_exempt_prefixes: Vec<String>,
    /// Token BIN range. Default 810000-819999.
    pub token_bin_range: String,
    /// Retention (PCI DSS 3.2.1): a card stored this long ago whose tokens
    /// have all been idle as long (none used, changed or holding a
    /// payment) is erased with them, audited by `local:retention`.
    /// Default 0: kept until erased by hand.
    pub retention_s: u64,
    /// How often the retention sweep looks for idle cards and identities
    /// (one node at a time). Default 3600 s (1 to 86400).
    pub retention_check_interval_s: u64,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentitiesSection {
    /// Retention (PIPL: kept no longer than needed): an identity stored
    /// this long ago that no payment password was ever set against (so no
    /// card can be bound with it) is erased, audited by `local:retention`,
    /// at the cards' `retention_check_interval_s`. Default 0: kept until
    /// erased by hand.
    pub retention_s: u64,
}

impl Default for CardsSection {
    fn default() -> Self {
        CardsSection {
            bin_table: None,
            luhn_exempt_prefixes: Vec::new(),
            token_bin_range: DEFAULT_TOKEN_BIN_RANGE.to_owned(),
            retention_s: 0,
            retention_check_interval_s: 3600,
        }
    }
}

impl CardsSection {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        within(
            "cards.retention_check_interval_s",
            self.retention_check_interval_s,
            1..=86_400,
        )
    }
}
