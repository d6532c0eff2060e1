//! The gateway's configuration, built once from the `[gateway]` settings.

use super::{ChannelEndpoint, GatewayConfig};
use crate::channel::ClientTls;
use crate::config::{invalid, ConfigError, GatewaySection};
use crate::domain::ids::ChannelId;
use crate::tls::layout::PkiLayout;
use std::path::Path;
use std::time::Duration;

impl GatewayConfig {
    /// Channel ids parsed, certificates defaulted to the development PKI in
    /// `keys_dir`. Ranges and URL shapes were checked when the file loaded.
    pub fn from_settings(g: &GatewaySection, keys_dir: &Path) -> Result<Self, ConfigError> {
        let channels = g
            .channels
            .iter()
            .map(|c| {
                Ok(ChannelEndpoint {
                    id: ChannelId::parse(&c.id).map_err(|e| invalid("gateway.channels.id", e.detail))?,
                    endpoint: c.endpoint.clone(),
                })
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        let dev = PkiLayout::new(keys_dir);
        if g.ca_cert.is_some() && g.crl.is_none() {
            tracing::warn!("gateway.crl is not set: bank certificates are not checked for revocation");
        }
        Ok(GatewayConfig {
            merchant_id: g.merchant_id.clone(),
            channels,
            sms_carrier: g.sms_carrier.clone(),
            tls: ClientTls {
                ca_cert: g.ca_cert.clone().unwrap_or_else(|| dev.ca_cert()),
                crl: match (&g.ca_cert, &g.crl) {
                    (_, Some(crl)) => Some(crl.clone()),
                    (None, None) => Some(dev.crl()),
                    (Some(_), None) => None,
                },
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
}
