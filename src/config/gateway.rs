//! `[gateway]`: the vault's way out to bank channels and the SMS carrier.
//! The gateway builds its runtime configuration from this
//! (`vault::gateway::GatewayConfig::from_settings`).

use super::{invalid, within, ConfigError};
use serde::Deserialize;
use std::path::PathBuf;

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
    /// The channels' CA's CRL, checked on every outbound handshake; default
    /// the development CRL when `ca_cert` is the development CA. A CRL past
    /// its `nextUpdate` fails the start.
    pub crl: Option<PathBuf>,
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
    /// The channel's Ed25519 public key (PEM) its notifications are signed
    /// with (`channel::signature`); required with `notify_identity`.
    #[serde(default)]
    pub notify_public_key: Option<PathBuf>,
    /// Start marked down for routing (debits go to its backups).
    #[serde(default)]
    pub down: bool,
}

impl Default for GatewaySection {
    fn default() -> Self {
        GatewaySection {
            merchant_id: "tokenvault-dev".to_owned(),
            channels: Vec::new(),
            sms_carrier: None,
            ca_cert: None,
            crl: None,
            client_cert: None,
            client_key: None,
            timeout_ms: 5_000,
            verification_ttl_s: 300,
        }
    }
}

fn https(url: &str) -> bool {
    url.starts_with("https://") && url.len() > "https://".len()
}

impl GatewaySection {
    /// Every file setting, to be made absolute.
    pub(super) fn paths(&mut self) -> impl Iterator<Item = &mut Option<PathBuf>> {
        [
            &mut self.ca_cert,
            &mut self.crl,
            &mut self.client_cert,
            &mut self.client_key,
        ]
        .into_iter()
        .chain(self.channels.iter_mut().map(|c| &mut c.notify_public_key))
    }

    pub(super) fn check(&self) -> Result<(), ConfigError> {
        if self.merchant_id.is_empty() || self.merchant_id.len() > 64 {
            return Err(invalid("gateway.merchant_id", "must be 1 to 64 characters"));
        }
        within("gateway.timeout_ms", self.timeout_ms, 100..=60_000)?;
        within("gateway.verification_ttl_s", self.verification_ttl_s, 10..=900)?;
        for (i, c) in self.channels.iter().enumerate() {
            if !https(&c.endpoint) {
                return Err(invalid("gateway.channels.endpoint", "must be an https:// URL"));
            }
            if self.channels[..i].iter().any(|e| e.id == c.id) {
                return Err(invalid("gateway.channels.id", "listed twice"));
            }
            if c.notify_identity.as_deref().is_some_and(str::is_empty) {
                return Err(invalid("gateway.channels.notify_identity", "must not be empty"));
            }
            if c.notify_identity.is_some() != c.notify_public_key.is_some() {
                return Err(invalid(
                    "gateway.channels.notify_public_key",
                    "a channel that notifies needs both notify_identity and notify_public_key (its notifications are signed)",
                ));
            }
        }
        if self.sms_carrier.as_deref().is_some_and(|u| !https(u)) {
            return Err(invalid("gateway.sms_carrier", "must be an https:// URL"));
        }
        Ok(())
    }
}
