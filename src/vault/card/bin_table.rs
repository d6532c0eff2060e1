//! Issuer and debit/credit by BIN prefix, loaded from a file at start-up.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The table shipped in the repository, used when no file is configured.
pub const EMBEDDED_BIN_TABLE: &str = include_str!("../../../config/bins.csv");

const MIN_PREFIX: usize = 6;
const MAX_PREFIX: usize = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CardType {
    Debit,
    Credit,
    Unknown,
}

impl CardType {
    pub fn as_str(self) -> &'static str {
        match self {
            CardType::Debit => "debit",
            CardType::Credit => "credit",
            CardType::Unknown => "unknown",
        }
    }
}

/// What the table says about one BIN.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinInfo {
    pub issuer: String,
    pub card_type: CardType,
}

impl BinInfo {
    pub fn unknown() -> Self {
        BinInfo {
            issuer: "unknown".to_owned(),
            card_type: CardType::Unknown,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BinTableError {
    #[error("cannot read BIN table file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("BIN table line {line}: not valid CSV (an unclosed quote?)")]
    Syntax { line: usize },
    #[error("BIN table line {line}: expected `prefix,issuer,card_type`")]
    Columns { line: usize },
    #[error("BIN table line {line}: prefix must be 6 to 10 digits")]
    Prefix { line: usize },
    #[error("BIN table line {line}: issuer must be 1 to 100 characters")]
    Issuer { line: usize },
    #[error("BIN table line {line}: card_type must be `debit` or `credit`")]
    CardType { line: usize },
    #[error("BIN table line {line}: prefix already listed on line {first}")]
    Duplicate { line: usize, first: usize },
}

/// Longest-prefix lookup table.
#[derive(Clone, Debug, Default)]
pub struct BinTable {
    entries: HashMap<String, (BinInfo, usize)>,
}

impl BinTable {
    /// Parses the CSV text (RFC 4180: an issuer with a comma is quoted;
    /// `#` starts a comment line); any malformed line refuses the whole
    /// table, so a typo cannot silently drop an issuer.
    pub fn parse(text: &str) -> Result<Self, BinTableError> {
        let mut entries: HashMap<String, (BinInfo, usize)> = HashMap::new();
        for row in crate::csv_lines::records(text) {
            let (line, record) = row.map_err(|line| BinTableError::Syntax { line })?;
            let (Some(prefix), Some(issuer), Some(card_type), 3) =
                (record.get(0), record.get(1), record.get(2), record.len())
            else {
                return Err(BinTableError::Columns { line });
            };
            if !(MIN_PREFIX..=MAX_PREFIX).contains(&prefix.len())
                || !prefix.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(BinTableError::Prefix { line });
            }
            let issuer_len = issuer.chars().count();
            if issuer_len == 0 || issuer_len > 100 || issuer.chars().any(char::is_control) {
                return Err(BinTableError::Issuer { line });
            }
            let card_type = match card_type {
                "debit" => CardType::Debit,
                "credit" => CardType::Credit,
                _ => return Err(BinTableError::CardType { line }),
            };
            if let Some((_, first)) = entries.get(prefix) {
                return Err(BinTableError::Duplicate { line, first: *first });
            }
            let info = BinInfo {
                issuer: issuer.to_owned(),
                card_type,
            };
            entries.insert(prefix.to_owned(), (info, line));
        }
        Ok(BinTable { entries })
    }

    /// Loads a table file at start-up; an unreadable or malformed file is an
    /// error rather than an empty table.
    pub fn from_file(path: &std::path::Path) -> Result<Self, BinTableError> {
        let text = std::fs::read_to_string(path).map_err(|e| BinTableError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::parse(&text)
    }

    pub fn embedded() -> Result<Self, BinTableError> {
        Self::parse(EMBEDDED_BIN_TABLE)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The most specific entry whose prefix starts `digits`.
    pub(crate) fn lookup(&self, digits: &str) -> BinInfo {
        (MIN_PREFIX..=MAX_PREFIX.min(digits.len()))
            .rev()
            .find_map(|n| digits.get(..n).and_then(|p| self.entries.get(p)))
            .map(|(info, _)| info.clone())
            .unwrap_or_else(BinInfo::unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_table_parses_and_finds_issuers() {
        let table = BinTable::embedded().unwrap();
        assert!(table.len() >= 8);
        let icbc = table.lookup("6222020000000000000");
        assert_eq!(icbc.issuer, "中国工商银行");
        assert_eq!(icbc.card_type, CardType::Debit);
        assert_eq!(table.lookup("6200000000000005"), BinInfo::unknown());
    }

    #[test]
    fn the_shipped_file_loads_like_the_embedded_copy() {
        let path = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config/bins.csv"));
        assert_eq!(
            BinTable::from_file(path).unwrap().len(),
            BinTable::embedded().unwrap().len()
        );
        assert!(matches!(
            BinTable::from_file(std::path::Path::new("/nonexistent/bins.csv")),
            Err(BinTableError::Read { .. })
        ));
    }

    #[test]
    fn longest_prefix_wins() {
        let table = BinTable::parse("622202,Bank A,debit\n62220299,Bank B,credit\n").unwrap();
        assert_eq!(table.lookup("6222029912345678").issuer, "Bank B");
        assert_eq!(table.lookup("6222021212345678").issuer, "Bank A");
    }

    #[test]
    fn a_quoted_issuer_may_hold_a_comma() {
        let table = BinTable::parse("# note\n\n622202,\"Bank of A, Shanghai branch\",debit\n").unwrap();
        assert_eq!(
            table.lookup("6222020000000007").issuer,
            "Bank of A, Shanghai branch"
        );
        assert_eq!(
            BinTable::parse("622202,Bank of A, Shanghai,debit").unwrap_err(),
            BinTableError::Columns { line: 1 }
        );
        assert!(matches!(
            BinTable::parse("622202,\"Bank,debit\n"),
            Err(BinTableError::Syntax { .. }) | Err(BinTableError::Columns { .. })
        ));
    }

    #[test]
    fn malformed_lines_name_the_line() {
        assert_eq!(
            BinTable::parse("# c\n62220,Bank,debit").unwrap_err(),
            BinTableError::Prefix { line: 2 }
        );
        assert_eq!(
            BinTable::parse("622202,Bank,prepaid").unwrap_err(),
            BinTableError::CardType { line: 1 }
        );
        assert_eq!(
            BinTable::parse("622202,Bank").unwrap_err(),
            BinTableError::Columns { line: 1 }
        );
        assert_eq!(
            BinTable::parse("622202,A,debit\n622202,B,debit").unwrap_err(),
            BinTableError::Duplicate { line: 2, first: 1 }
        );
    }
}
