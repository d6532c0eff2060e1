//! Every layer's configuration, built once from the parsed file: the vault's
//! (BIN table, card rules, token range), the gateway's and the orchestration
//! layer's. `serve` builds them before the listener opens, so a bad value
//! fails the start naming its setting, and keeps them for when the vault
//! opens (at once, or at unseal).

use crate::config::{ConfigError, ServiceConfig};
use crate::orchestration::OrchestrationConfig;
use crate::vault::gateway::GatewayConfig;
use crate::vault::VaultConfig;

#[derive(Clone)]
pub struct LayerSettings {
    pub vault: VaultConfig,
    pub gateway: GatewayConfig,
    pub orchestration: OrchestrationConfig,
}

impl LayerSettings {
    pub fn build(config: &ServiceConfig) -> Result<Self, ConfigError> {
        Ok(LayerSettings {
            vault: VaultConfig::from_settings(config)?,
            gateway: GatewayConfig::from_settings(&config.gateway, &config.keys_dir)?,
            orchestration: OrchestrationConfig::from_settings(config)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::TlsFiles;

    fn load(text: &str) -> Result<(ServiceConfig, LayerSettings), ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenvault.toml");
        std::fs::write(&path, text).unwrap();
        let config = ServiceConfig::load(&path)?;
        let layers = LayerSettings::build(&config)?;
        Ok((config, layers))
    }

    #[test]
    fn an_empty_file_is_the_safe_default_and_paths_are_absolute() {
        let (c, _) = load("").unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8443");
        assert!(c.data_dir.is_absolute() && c.data_dir.ends_with("data"));
        assert!(!c.tls.allow_tls12);
        assert!(TlsFiles::from_settings(&c.tls, &c.keys_dir)
            .crl
            .ends_with("keys/crl.pem"));
    }

    #[test]
    fn bad_settings_are_named() {
        let setting = |text: &str| match load(text) {
            Err(ConfigError::Invalid { setting, .. }) => setting.to_owned(),
            Err(ConfigError::Parse { reason, .. }) => format!("parse: {reason}"),
            Ok(_) => panic!("accepted: {text}"),
            Err(other) => panic!("{other:?}"),
        };
        assert_eq!(setting("[limits]\nmax_connections = 0"), "limits.max_connections");
        assert_eq!(
            setting("[cards]\ntoken_bin_range = \"620000-629999\""),
            "cards.token_bin_range"
        );
        assert_eq!(
            setting("[cards]\nluhn_exempt_prefixes = [\"62x\"]"),
            "cards.luhn_exempt_prefixes"
        );
        assert!(setting("listen = \"nowhere\"").starts_with("parse:"));
        assert!(setting("unknown_setting = 1").starts_with("parse:"));
        assert!(setting("[tls]\nmin_version = \"1.0\"").starts_with("parse:"));
    }
}
