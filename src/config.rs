//! `tokenvault serve --config FILE`: every setting has a safe default, and a
//! bad value is a start-up error naming the setting. Relative paths are
//! resolved against the config file's folder (or the working directory when
//! no file is given).

use crate::channel::ClientTls;
use crate::orchestration::routing::{Route, RoutingPolicy};
use crate::orchestration::{
    BindingPolicy, OrchestrationConfig, PaymentPolicy, SharedCardPolicy, TokenDefaults,
};
use crate::tls::pki::PkiLayout;
use crate::tls::TlsFiles;
use crate::vault::card::{BinTable, CardRules};
use crate::vault::gateway::{ChannelEndpoint, GatewayConfig};
use crate::vault::token::ChannelId;
use crate::vault::token::TokenBinRange;
use crate::vault::VaultConfig;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
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

fn invalid(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        reason: reason.into(),
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
    /// Development PKI and development KEK. Default `keys`.
    pub keys_dir: PathBuf,
    /// Access policies, one TOML file per identity. Default `policies`.
    pub policies_dir: PathBuf,
    pub tls: TlsSection,
    pub kek: KekSection,
    pub keys: KeysSection,
    pub cards: CardsSection,
    pub limits: LimitsSection,
    pub gateway: GatewaySection,
    pub binding: BindingSection,
    pub payment: PaymentSection,
    pub routing: RoutingSection,
}

/// The vault's gateway to bank channels and the SMS carrier.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewaySection {
    /// How the banks know this platform. Default `tokenvault-dev`.
    pub merchant_id: String,
    /// Bank channels by id (the id payment tokens name in their controls).
    pub channels: Vec<ChannelSection>,
    /// SMS carrier endpoint for the platform's own codes; none by default.
    pub sms_carrier: Option<String>,
    /// Trust anchor for channels; default the development CA.
    pub ca_cert: Option<PathBuf>,
    /// The gateway's client certificate; default `keys_dir/gateway.pem`.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// Deadline of one channel call. Default 5000 ms.
    pub timeout_ms: u64,
    /// How long a credit card's CVN and expiry are held in memory for the
    /// signing call. Default 300 s.
    pub verification_ttl_s: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSection {
    pub id: String,
    /// `https://host:port` of the channel's quick-pay interface.
    pub endpoint: String,
    /// The client identity (certificate URI SAN or CN) this channel posts
    /// payment notifications with; none: it cannot notify.
    #[serde(default)]
    pub notify_identity: Option<String>,
    /// Start marked down for routing (debits go to its backups).
    #[serde(default)]
    pub down: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PaymentSection {
    /// The furthest ahead an order may expire. Default 86400 s (a day).
    pub max_order_ttl_s: u64,
    /// A "user paying" debit is closed after this long. Default 30 s.
    pub payment_code_timeout_s: u64,
    /// How often unsettled payments are asked about. Default 2000 ms.
    pub poll_interval_ms: u64,
    /// How long after a payment a cancel may still refund it. Default 86400 s.
    pub cancel_window_s: u64,
}

impl Default for PaymentSection {
    fn default() -> Self {
        let p = PaymentPolicy::default();
        PaymentSection {
            max_order_ttl_s: p.max_order_ttl.as_secs(),
            payment_code_timeout_s: p.payment_code_timeout.as_secs(),
            poll_interval_ms: p.poll_interval.as_millis() as u64,
            cancel_window_s: p.cancel_window.as_secs(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingSection {
    /// Consecutive failures that mark a channel down. Default 3.
    pub failure_threshold: u32,
    /// How long a channel marked down by failures is skipped. Default 30 s.
    pub cooldown_s: u64,
    pub routes: Vec<RouteSection>,
}

impl Default for RoutingSection {
    fn default() -> Self {
        let r = RoutingPolicy::default();
        RoutingSection {
            failure_threshold: r.failure_threshold,
            cooldown_s: r.cooldown.as_secs(),
            routes: Vec::new(),
        }
    }
}

/// A primary channel and its backups, in the order they are tried.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSection {
    pub primary: String,
    pub backups: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BindingSection {
    /// A card already bound by another user: `refuse` (default) or `allow`.
    pub shared_card: SharedCardPolicy,
    /// How long an SMS code may be confirmed. Default 300 s.
    pub code_ttl_s: u64,
    /// Wrong codes before a binding fails. Default 5.
    pub max_code_attempts: u32,
    /// Controls of the payment token a signed binding gets.
    pub token: TokenDefaults,
}

impl Default for GatewaySection {
    fn default() -> Self {
        GatewaySection {
            merchant_id: "tokenvault-dev".to_owned(),
            channels: Vec::new(),
            sms_carrier: None,
            ca_cert: None,
            client_cert: None,
            client_key: None,
            timeout_ms: 5_000,
            verification_ttl_s: 300,
        }
    }
}

impl Default for BindingSection {
    fn default() -> Self {
        let policy = BindingPolicy::default();
        BindingSection {
            shared_card: policy.shared_card,
            code_ttl_s: policy.code_ttl.as_secs(),
            max_code_attempts: policy.max_code_attempts,
            token: policy.token,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSection {
    /// Defaults: the development PKI files in `keys_dir`.
    pub ca_cert: Option<PathBuf>,
    pub server_cert: Option<PathBuf>,
    pub server_key: Option<PathBuf>,
    pub crl: Option<PathBuf>,
    /// TLS 1.3 only unless this is true; nothing below 1.2 is ever offered.
    pub allow_tls12: bool,
    /// Create the development PKI in `keys_dir` on first start when the
    /// configured files are missing. Default true; set false in production.
    pub create_dev_pki: bool,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KekSection {
    /// `dev-file` (default): one key file beside the data, for development.
    /// `shares`: production; the service starts sealed until custodians
    /// submit enough shares (`tokenvault keys unseal`).
    pub custody: KekCustody,
    /// Development key-encrypting key file; created on first use (mode 0600)
    /// and loudly reported at every start. Default `keys_dir/dev-kek.hex`.
    pub dev_file: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KekCustody {
    #[default]
    DevFile,
    Shares,
}

/// Data-key lifecycle.
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
            cryptoperiod_s: crate::vault::DEFAULT_CRYPTOPERIOD_S,
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
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Open connections at most; more are closed at once. Default 1024.
    pub max_connections: usize,
    /// A TLS handshake must finish within this. Default 5000 ms.
    pub handshake_timeout_ms: u64,
    /// Largest request body accepted. Default 16384 bytes.
    pub body_limit_bytes: usize,
    /// A request must finish within this. Default 15000 ms.
    pub request_timeout_ms: u64,
    /// Reveals one identity may make per hour. Default 10.
    pub reveals_per_hour: u32,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            data_dir: PathBuf::from("data"),
            keys_dir: PathBuf::from("keys"),
            policies_dir: PathBuf::from("policies"),
            tls: TlsSection::default(),
            kek: KekSection::default(),
            keys: KeysSection::default(),
            cards: CardsSection::default(),
            limits: LimitsSection::default(),
            public_url: None,
            gateway: GatewaySection::default(),
            binding: BindingSection::default(),
            payment: PaymentSection::default(),
            routing: RoutingSection::default(),
        }
    }
}

impl Default for TlsSection {
    fn default() -> Self {
        TlsSection {
            ca_cert: None,
            server_cert: None,
            server_key: None,
            crl: None,
            allow_tls12: false,
            create_dev_pki: true,
        }
    }
}

impl Default for CardsSection {
    fn default() -> Self {
        CardsSection {
            bin_table: None,
            luhn_exempt_prefixes: Vec::new(),
            token_bin_range: TokenBinRange::default().describe(),
        }
    }
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            max_connections: 1024,
            handshake_timeout_ms: 5_000,
            body_limit_bytes: 16 * 1024,
            request_timeout_ms: 15_000,
            reveals_per_hour: 10,
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
            &mut self.gateway.ca_cert,
            &mut self.gateway.client_cert,
            &mut self.gateway.client_key,
        ]
        .into_iter()
        .flatten()
        {
            *p = abs(p);
        }
        self.check()?;
        Ok(self)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        if !(1..=100_000).contains(&l.max_connections) {
            return Err(invalid("limits.max_connections", "must be 1 to 100000"));
        }
        if !(100..=60_000).contains(&l.handshake_timeout_ms) {
            return Err(invalid("limits.handshake_timeout_ms", "must be 100 to 60000"));
        }
        if !(1024..=1024 * 1024).contains(&l.body_limit_bytes) {
            return Err(invalid("limits.body_limit_bytes", "must be 1024 to 1048576"));
        }
        if !(100..=300_000).contains(&l.request_timeout_ms) {
            return Err(invalid("limits.request_timeout_ms", "must be 100 to 300000"));
        }
        if l.reveals_per_hour > 1000 {
            return Err(invalid("limits.reveals_per_hour", "must be 0 to 1000"));
        }
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
        self.vault_config()?;
        self.gateway_config()?;
        self.orchestration_config()?;
        Ok(())
    }

    pub fn gateway_config(&self) -> Result<GatewayConfig, ConfigError> {
        let g = &self.gateway;
        if g.merchant_id.is_empty() || g.merchant_id.len() > 64 {
            return Err(invalid("gateway.merchant_id", "must be 1 to 64 characters"));
        }
        if !(100..=60_000).contains(&g.timeout_ms) {
            return Err(invalid("gateway.timeout_ms", "must be 100 to 60000"));
        }
        if !(10..=900).contains(&g.verification_ttl_s) {
            return Err(invalid("gateway.verification_ttl_s", "must be 10 to 900"));
        }
        let https = |url: &str| url.starts_with("https://") && url.len() > "https://".len();
        let mut channels = Vec::new();
        for c in &g.channels {
            let id = ChannelId::parse(&c.id).map_err(|e| invalid("gateway.channels.id", e.detail))?;
            if !https(&c.endpoint) {
                return Err(invalid("gateway.channels.endpoint", "must be an https:// URL"));
            }
            if channels.iter().any(|e: &ChannelEndpoint| e.id == id) {
                return Err(invalid("gateway.channels.id", "listed twice"));
            }
            channels.push(ChannelEndpoint {
                id,
                endpoint: c.endpoint.clone(),
            });
        }
        if g.sms_carrier.as_deref().is_some_and(|u| !https(u)) {
            return Err(invalid("gateway.sms_carrier", "must be an https:// URL"));
        }
        let dev = self.pki_layout();
        Ok(GatewayConfig {
            merchant_id: g.merchant_id.clone(),
            channels,
            sms_carrier: g.sms_carrier.clone(),
            tls: ClientTls {
                ca_cert: g.ca_cert.clone().unwrap_or_else(|| dev.ca_cert()),
                cert: g
                    .client_cert
                    .clone()
                    .unwrap_or_else(|| dev.client_cert("gateway")),
                key: g.client_key.clone().unwrap_or_else(|| dev.client_key("gateway")),
            },
            timeout: Duration::from_millis(g.timeout_ms),
            verification_ttl: Duration::from_secs(g.verification_ttl_s),
        })
    }

    pub fn binding_policy(&self) -> Result<BindingPolicy, ConfigError> {
        let b = &self.binding;
        if !(30..=1_800).contains(&b.code_ttl_s) {
            return Err(invalid("binding.code_ttl_s", "must be 30 to 1800"));
        }
        if !(1..=10).contains(&b.max_code_attempts) {
            return Err(invalid("binding.max_code_attempts", "must be 1 to 10"));
        }
        if !(1..=3_650).contains(&b.token.validity_days) {
            return Err(invalid("binding.token.validity_days", "must be 1 to 3650"));
        }
        let probe = ChannelId::parse("probe").map_err(|e| invalid("binding.token", e.detail))?;
        b.token
            .controls([probe].into(), crate::time::Timestamp::now())
            .map_err(|e| invalid("binding.token", e.detail))?;
        Ok(BindingPolicy {
            shared_card: b.shared_card,
            code_ttl: Duration::from_secs(b.code_ttl_s),
            max_code_attempts: b.max_code_attempts,
            token: b.token.clone(),
        })
    }

    /// Binding and payment policies, routes, and who may notify per channel.
    pub fn orchestration_config(&self) -> Result<OrchestrationConfig, ConfigError> {
        let p = &self.payment;
        if !(60..=86_400).contains(&p.max_order_ttl_s) {
            return Err(invalid("payment.max_order_ttl_s", "must be 60 to 86400"));
        }
        if !(1..=600).contains(&p.payment_code_timeout_s) {
            return Err(invalid("payment.payment_code_timeout_s", "must be 1 to 600"));
        }
        if !(100..=60_000).contains(&p.poll_interval_ms) {
            return Err(invalid("payment.poll_interval_ms", "must be 100 to 60000"));
        }
        if !(60..=604_800).contains(&p.cancel_window_s) {
            return Err(invalid("payment.cancel_window_s", "must be 60 to 604800"));
        }
        let r = &self.routing;
        if !(1..=100).contains(&r.failure_threshold) {
            return Err(invalid("routing.failure_threshold", "must be 1 to 100"));
        }
        if !(1..=3_600).contains(&r.cooldown_s) {
            return Err(invalid("routing.cooldown_s", "must be 1 to 3600"));
        }
        let configured = |name: &str, setting: &'static str| -> Result<ChannelId, ConfigError> {
            let id = ChannelId::parse(name).map_err(|e| invalid(setting, e.detail))?;
            if self.gateway.channels.iter().any(|c| c.id == name) {
                Ok(id)
            } else {
                Err(invalid(setting, format!("`{name}` is not a configured channel")))
            }
        };
        let mut routes: Vec<Route> = Vec::new();
        for route in &r.routes {
            let primary = configured(&route.primary, "routing.routes.primary")?;
            if routes.iter().any(|r| r.primary == primary) {
                return Err(invalid("routing.routes.primary", "has two routes"));
            }
            let mut backups = Vec::new();
            for b in &route.backups {
                let backup = configured(b, "routing.routes.backups")?;
                if backup == primary || backups.contains(&backup) {
                    return Err(invalid("routing.routes.backups", "lists a channel twice"));
                }
                backups.push(backup);
            }
            routes.push(Route { primary, backups });
        }
        let mut notifiers = BTreeMap::new();
        let mut down_by_config = BTreeSet::new();
        for c in &self.gateway.channels {
            let id = ChannelId::parse(&c.id).map_err(|e| invalid("gateway.channels.id", e.detail))?;
            if c.down {
                down_by_config.insert(id.clone());
            }
            if let Some(identity) = &c.notify_identity {
                if identity.is_empty() {
                    return Err(invalid("gateway.channels.notify_identity", "must not be empty"));
                }
                notifiers.insert(id, identity.clone());
            }
        }
        Ok(OrchestrationConfig {
            binding: self.binding_policy()?,
            payments: PaymentPolicy {
                max_order_ttl: Duration::from_secs(p.max_order_ttl_s),
                payment_code_timeout: Duration::from_secs(p.payment_code_timeout_s),
                poll_interval: Duration::from_millis(p.poll_interval_ms),
                cancel_window: Duration::from_secs(p.cancel_window_s),
            },
            routing: RoutingPolicy {
                routes,
                failure_threshold: r.failure_threshold,
                cooldown: Duration::from_secs(r.cooldown_s),
                down_by_config,
            },
            notifiers,
        })
    }

    pub fn pki_layout(&self) -> PkiLayout {
        PkiLayout::new(&self.keys_dir)
    }

    pub fn tls_files(&self) -> TlsFiles {
        let dev = self.pki_layout();
        TlsFiles {
            ca_cert: self.tls.ca_cert.clone().unwrap_or_else(|| dev.ca_cert()),
            server_cert: self.tls.server_cert.clone().unwrap_or_else(|| dev.server_cert()),
            server_key: self.tls.server_key.clone().unwrap_or_else(|| dev.server_key()),
            crl: self.tls.crl.clone().unwrap_or_else(|| dev.crl()),
            allow_tls12: self.tls.allow_tls12,
        }
    }

    pub fn kek_file(&self) -> PathBuf {
        self.kek
            .dev_file
            .clone()
            .unwrap_or_else(|| self.keys_dir.join("dev-kek.hex"))
    }

    pub fn vault_config(&self) -> Result<VaultConfig, ConfigError> {
        let bin_table = match &self.cards.bin_table {
            Some(path) => BinTable::from_file(path),
            None => BinTable::embedded(),
        }
        .map_err(|e| invalid("cards.bin_table", e.to_string()))?;
        Ok(VaultConfig {
            bin_table,
            card_rules: CardRules::new(&self.cards.luhn_exempt_prefixes)
                .map_err(|e| invalid("cards.luhn_exempt_prefixes", e.detail))?,
            token_range: TokenBinRange::parse(&self.cards.token_bin_range)
                .map_err(|e| invalid("cards.token_bin_range", e.detail))?,
            key_budget: Default::default(),
            cryptoperiod_s: self.keys.cryptoperiod_s,
        })
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

    fn load(text: &str) -> Result<ServiceConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenvault.toml");
        std::fs::write(&path, text).unwrap();
        ServiceConfig::load(&path)
    }

    #[test]
    fn an_empty_file_is_the_safe_default_and_paths_are_absolute() {
        let c = load("").unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8443");
        assert!(c.data_dir.is_absolute() && c.data_dir.ends_with("data"));
        assert!(!c.tls.allow_tls12);
        assert!(c.tls_files().crl.ends_with("keys/crl.pem"));
    }

    #[test]
    fn bad_settings_are_named() {
        let setting = |text: &str| match load(text) {
            Err(ConfigError::Invalid { setting, .. }) => setting.to_owned(),
            Err(ConfigError::Parse { reason, .. }) => format!("parse: {reason}"),
            other => panic!("{other:?}"),
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
