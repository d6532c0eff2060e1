//! `tokenvault serve --config FILE`: every setting has a safe default, and a
//! bad value is a start-up error naming the setting. Relative paths are
//! resolved against the config file's folder (or the working directory when
//! no file is given).

mod gateway;
mod limits;
mod orchestration;
mod store;
mod tls;
mod vault;

pub use gateway::{ChannelSection, GatewaySection};
pub use limits::LimitsSection;
pub use orchestration::{
    minute_of_day, AfterRelease, BindingSection, PaymentSection, ReconciliationSection, RouteSection,
    RoutingSection, SharedCardPolicy, TokenDefaults,
};
pub use store::{BackendKind, PostgresSection, PostgresUrl, StoreSection};
pub use tls::TlsSection;
pub use vault::{
    AuditSection, CardsSection, IdentitiesSection, KekCustody, KekSection, KeysSection,
    DEFAULT_CRYPTOPERIOD_S, DEFAULT_KEK_CRYPTOPERIOD_S, DEFAULT_TOKEN_BIN_RANGE,
};

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read config file {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("config file {path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("config setting {setting}: {reason}")]
    Invalid { setting: &'static str, reason: String },
}

pub(crate) fn invalid(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        reason: reason.into(),
    }
}

/// Refuses `value` outside `range`, naming the setting and the range.
pub(crate) fn within<T: PartialOrd + std::fmt::Display>(
    setting: &'static str,
    value: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<(), ConfigError> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(invalid(
            setting,
            format!("must be {} to {}", range.start(), range.end()),
        ))
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceConfig {
    /// Where the service listens. Default 127.0.0.1:8443.
    pub listen: SocketAddr,
    /// The `https://host:port` banks post notifications to; default the
    /// listening address.
    pub public_url: Option<String>,
    /// sled data directory. Default `data`.
    pub data_dir: PathBuf,
    /// This node's name when several nodes share one PostgreSQL database:
    /// each writes its own audit chain and holds its name under a lease,
    /// so two processes never run under one name. Absent: the unnamed
    /// chain, as a single node (and sled) runs.
    pub node_name: Option<crate::domain::node::NodeName>,
    /// Development PKI and development KEK. Default `keys`.
    pub keys_dir: PathBuf,
    /// Access policies, one TOML file per identity. Default `policies`.
    pub policies_dir: PathBuf,
    pub tls: TlsSection,
    pub kek: KekSection,
    pub keys: KeysSection,
    pub audit: AuditSection,
    pub cards: CardsSection,
    pub identities: IdentitiesSection,
    pub limits: LimitsSection,
    pub store: StoreSection,
    pub gateway: GatewaySection,
    pub binding: BindingSection,
    pub payment: PaymentSection,
    pub routing: RoutingSection,
    pub reconciliation: ReconciliationSection,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            data_dir: PathBuf::from("data"),
            node_name: None,
            keys_dir: PathBuf::from("keys"),
            policies_dir: PathBuf::from("policies"),
            tls: TlsSection::default(),
            kek: KekSection::default(),
            keys: KeysSection::default(),
            audit: AuditSection::default(),
            cards: CardsSection::default(),
            identities: IdentitiesSection::default(),
            limits: LimitsSection::default(),
            store: StoreSection::default(),
            public_url: None,
            gateway: GatewaySection::default(),
            binding: BindingSection::default(),
            payment: PaymentSection::default(),
            routing: RoutingSection::default(),
            reconciliation: ReconciliationSection::default(),
        }
    }
}

impl ServiceConfig {
    /// Reads and checks a config file; paths inside are made absolute.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let config: ServiceConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        config.resolved(&base)
    }

    /// The defaults, with paths relative to `base`.
    pub fn defaults_in(base: &Path) -> Result<Self, ConfigError> {
        ServiceConfig::default().resolved(base)
    }

    fn resolved(mut self, base: &Path) -> Result<Self, ConfigError> {
        let abs = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        self.data_dir = abs(&self.data_dir);
        self.keys_dir = abs(&self.keys_dir);
        self.policies_dir = abs(&self.policies_dir);
        for p in [
            &mut self.tls.ca_cert,
            &mut self.tls.server_cert,
            &mut self.tls.server_key,
            &mut self.tls.crl,
            &mut self.kek.dev_file,
            &mut self.cards.bin_table,
            &mut self.audit.anchor_dir,
            &mut self.audit.sink_file,
        ]
        .into_iter()
        .chain(self.store.paths())
        .chain(self.gateway.paths())
        .flatten()
        {
            *p = abs(p);
        }
        self.check()?;
        Ok(self)
    }

    /// Checks every value that needs nothing but itself (ranges, URL
    /// shapes); the layers parse the rest into their own types when they
    /// build from these settings (`server::settings`).
    fn check(&self) -> Result<(), ConfigError> {
        self.limits.check()?;
        self.store.check()?;
        self.kek.check()?;
        self.audit.check()?;
        self.cards.check()?;
        self.gateway.check()?;
        self.binding.check()?;
        self.payment.check()?;
        self.routing.check()?;
        self.reconciliation.check()?;
        if self
            .public_url
            .as_deref()
            .is_some_and(|u| !u.starts_with("https://") || u.ends_with('/'))
        {
            return Err(invalid(
                "public_url",
                "must be https://host:port without a trailing '/'",
            ));
        }
        Ok(())
    }

    pub fn kek_file(&self) -> PathBuf {
        self.kek
            .dev_file
            .clone()
            .unwrap_or_else(|| self.keys_dir.join("dev-kek.hex"))
    }

    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.limits.handshake_timeout_ms)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.limits.request_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_out_of_range_is_refused_naming_the_setting_and_the_range() {
        assert!(within("limits.x", 5u64, 1..=10).is_ok());
        assert!(within("limits.x", 1u64, 1..=10).is_ok() && within("limits.x", 10u64, 1..=10).is_ok());
        let e = within("limits.x", 11u64, 1..=10).unwrap_err().to_string();
        assert_eq!(e, "config setting limits.x: must be 1 to 10");
        assert!(within("limits.x", 0u64, 1..=10).is_err());
    }

    #[test]
    fn range_checks_need_no_other_layer() {
        let mut c = ServiceConfig::default();
        c.payment.poll_interval_ms = 5;
        assert!(matches!(
            c.resolved(Path::new("/")),
            Err(ConfigError::Invalid {
                setting: "payment.poll_interval_ms",
                ..
            })
        ));
    }
}
