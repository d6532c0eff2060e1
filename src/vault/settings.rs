//! The vault's configuration, built once from the `[cards]` and `[keys]`
//! settings: the BIN table loaded, Luhn exemptions and the token BIN range
//! parsed.

use super::card::{BinTable, CardRules};
use super::token::TokenBinRange;
use super::VaultConfig;
use crate::config::{invalid, AuditSection, CardsSection, ConfigError, KeysSection};
use crate::domain::node::NodeName;
use std::time::Duration;

impl VaultConfig {
    pub fn from_settings(
        cards: &CardsSection,
        keys: &KeysSection,
        audit: &AuditSection,
        node: Option<&NodeName>,
    ) -> Result<Self, ConfigError> {
        let bin_table = match &cards.bin_table {
            Some(path) => BinTable::from_file(path),
            None => BinTable::embedded(),
        }
        .map_err(|e| invalid("cards.bin_table", e.to_string()))?;
        Ok(VaultConfig {
            bin_table,
            card_rules: CardRules::new(&cards.luhn_exempt_prefixes)
                .map_err(|e| invalid("cards.luhn_exempt_prefixes", e.detail))?,
            token_range: TokenBinRange::parse(&cards.token_bin_range)
                .map_err(|e| invalid("cards.token_bin_range", e.detail))?,
            key_budget: Default::default(),
            cryptoperiod_s: keys.cryptoperiod_s,
            read_durability: Duration::from_millis(audit.read_durability_ms),
            node: node.cloned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_token_range_setting_is_the_vaults_default() {
        assert_eq!(
            crate::config::DEFAULT_TOKEN_BIN_RANGE,
            TokenBinRange::default().describe()
        );
    }
}
