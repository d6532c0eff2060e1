//! Offline checks of configuration files an operator is about to deploy.

use crate::vault::card::BinTable;
use crate::vault::token::TokenBinRange;
use std::path::Path;

pub(super) fn bin_table(file: &Path) -> Result<String, String> {
    let table = BinTable::from_file(file).map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(format!(
        "{}: {} BIN entries, all valid",
        file.display(),
        table.len()
    ))
}

pub(super) fn token_range(range: &str) -> Result<String, String> {
    let parsed = TokenBinRange::parse(range).map_err(|e| e.to_string())?;
    Ok(format!(
        "token BIN range {} is valid and clear of every card network",
        parsed.describe()
    ))
}
