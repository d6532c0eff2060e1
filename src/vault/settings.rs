//! The vault's configuration, built once from the `[cards]`, `[keys]`,
//! `[audit]` and `[limits]` settings and the node's name: the BIN table
//! loaded, Luhn exemptions and the token BIN range parsed.

use super::card::{BinTable, CardRules};
use super::token::TokenBinRange;
use super::VaultConfig;
use crate::config::{invalid, ConfigError, ServiceConfig};
use std::time::Duration;

impl VaultConfig {
    pub fn from_settings(config: &ServiceConfig) -> Result<Self, ConfigError> {
        let (cards, keys, audit) = (&config.cards, &config.keys, &config.audit);
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
            node: config.node_name.clone(),
            reveals_per_hour: config.limits.reveals_per_hour,
            reveal_dual_control: config.limits.reveal_dual_control,
            reveal_approval_window: Duration::from_secs(config.limits.reveal_approval_window_s),
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
