//! The orchestration layer's policies, built once from the `[binding]`,
//! `[payment]`, `[routing]` and `[gateway]` settings: channel ids parsed,
//! routes checked against the configured channels.

use super::routing::{Route, RoutingPolicy};
use super::{BindingPolicy, Notifier, OrchestrationConfig, PaymentPolicy};
use crate::config::{invalid, BindingSection, ConfigError, PaymentSection, RoutingSection, ServiceConfig};
use crate::domain::ids::ChannelId;
use crate::domain::time::Timestamp;
use crate::ed25519::PublicKey;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

impl BindingPolicy {
    pub fn from_settings(b: &BindingSection) -> Result<Self, ConfigError> {
        let probe = ChannelId::parse("probe").map_err(|e| invalid("binding.token", e.detail))?;
        b.token
            .controls([probe].into(), Timestamp::now())
            .map_err(|e| invalid("binding.token", e.detail))?;
        Ok(BindingPolicy {
            shared_card: b.shared_card,
            code_ttl: Duration::from_secs(b.code_ttl_s),
            max_code_attempts: b.max_code_attempts,
            token: b.token.clone(),
        })
    }
}

impl PaymentPolicy {
    pub fn from_settings(p: &PaymentSection) -> Self {
        PaymentPolicy {
            max_order_ttl: Duration::from_secs(p.max_order_ttl_s),
            payment_code_timeout: Duration::from_secs(p.payment_code_timeout_s),
            poll_interval: Duration::from_millis(p.poll_interval_ms),
            cancel_window: Duration::from_secs(p.cancel_window_s),
        }
    }
}

impl RoutingPolicy {
    /// `down_by_config` and the routes' channels come from the `[gateway]`
    /// channels they name.
    pub fn from_settings(r: &RoutingSection, config: &ServiceConfig) -> Result<Self, ConfigError> {
        let configured = |name: &str, setting: &'static str| -> Result<ChannelId, ConfigError> {
            let id = ChannelId::parse(name).map_err(|e| invalid(setting, e.detail))?;
            if config.gateway.channels.iter().any(|c| c.id == name) {
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
        let mut down_by_config = BTreeSet::new();
        for c in config.gateway.channels.iter().filter(|c| c.down) {
            down_by_config
                .insert(ChannelId::parse(&c.id).map_err(|e| invalid("gateway.channels.id", e.detail))?);
        }
        Ok(RoutingPolicy {
            routes,
            failure_threshold: r.failure_threshold,
            cooldown: Duration::from_secs(r.cooldown_s),
            down_by_config,
        })
    }
}

impl OrchestrationConfig {
    /// Binding and payment policies, routes, and who may notify per channel.
    pub fn from_settings(config: &ServiceConfig) -> Result<Self, ConfigError> {
        let mut notifiers = BTreeMap::new();
        for c in &config.gateway.channels {
            if let (Some(identity), Some(key)) = (&c.notify_identity, &c.notify_public_key) {
                let id = ChannelId::parse(&c.id).map_err(|e| invalid("gateway.channels.id", e.detail))?;
                let unreadable = |why: String| {
                    invalid(
                        "gateway.channels.notify_public_key",
                        format!("{}: {why}", key.display()),
                    )
                };
                let pem = std::fs::read_to_string(key).map_err(|e| unreadable(e.to_string()))?;
                let key = PublicKey::from_pem(&pem).map_err(|e| unreadable(e.to_string()))?;
                notifiers.insert(
                    id,
                    Notifier {
                        identity: identity.clone(),
                        key,
                    },
                );
            }
        }
        Ok(OrchestrationConfig {
            binding: BindingPolicy::from_settings(&config.binding)?,
            payments: PaymentPolicy::from_settings(&config.payment),
            routing: RoutingPolicy::from_settings(&config.routing, config)?,
            reconciliation: super::reconcile::ReconcilePolicy::from_settings(&config.reconciliation),
            notifiers,
        })
    }
}
