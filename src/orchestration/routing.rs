//! Channel routing: each primary channel may have backups. A channel is
//! down when config or an admin call says so, or after
//! `failure_threshold` consecutive failures (for `cooldown`, then it is
//! tried again). Debits go to the first channel of their route that is up.

use crate::domain::ids::ChannelId;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub primary: ChannelId,
    /// Tried in this order when the primary is down or fails.
    pub backups: Vec<ChannelId>,
}

#[derive(Clone, Debug)]
pub struct RoutingPolicy {
    pub routes: Vec<Route>,
    pub failure_threshold: u32,
    pub cooldown: Duration,
    /// Channels configured down (`[[gateway.channels]] down = true`).
    pub down_by_config: BTreeSet<ChannelId>,
}

impl Default for RoutingPolicy {
    fn default() -> Self {
        let settings = crate::config::RoutingSection::default();
        RoutingPolicy {
            routes: Vec::new(),
            failure_threshold: settings.failure_threshold,
            cooldown: Duration::from_secs(settings.cooldown_s),
            down_by_config: BTreeSet::new(),
        }
    }
}

#[derive(Default)]
struct Health {
    admin_down: Option<bool>,
    consecutive_failures: u32,
    tripped_at: Option<Instant>,
}

/// What `GET /v1/admin/channels` shows of one channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ChannelHealth {
    pub channel: String,
    pub up: bool,
    /// `config`, `admin`, `failures` or none.
    #[schema(value_type = Option<String>)]
    pub down_because: Option<&'static str>,
    pub consecutive_failures: u32,
    pub backups: Vec<String>,
}

pub struct Routing {
    policy: RoutingPolicy,
    health: Mutex<BTreeMap<ChannelId, Health>>,
}

impl Routing {
    pub fn new(policy: RoutingPolicy) -> Self {
        Routing {
            policy,
            health: Mutex::new(BTreeMap::new()),
        }
    }

    fn backups_of(&self, primary: &ChannelId) -> &[ChannelId] {
        self.policy
            .routes
            .iter()
            .find(|r| &r.primary == primary)
            .map_or(&[], |r| r.backups.as_slice())
    }

    /// The channels a binding's token may use: its channel and its backups.
    pub fn route_of(&self, primary: &ChannelId) -> BTreeSet<ChannelId> {
        let mut all: BTreeSet<ChannelId> = self.backups_of(primary).iter().cloned().collect();
        all.insert(primary.clone());
        all
    }

    /// Why `channel` is down right now, if it is.
    fn down_because(
        &self,
        channel: &ChannelId,
        health: &BTreeMap<ChannelId, Health>,
    ) -> Option<&'static str> {
        let h = health.get(channel);
        match h.and_then(|h| h.admin_down) {
            Some(true) => return Some("admin"),
            Some(false) => {}
            None if self.policy.down_by_config.contains(channel) => return Some("config"),
            None => {}
        }
        let tripped = h
            .and_then(|h| h.tripped_at)
            .is_some_and(|at| at.elapsed() < self.policy.cooldown);
        tripped.then_some("failures")
    }

    /// The channels to try for a debit on `requested`, in order: those up
    /// first; if none is up, all of them (one may have recovered).
    pub fn candidates(&self, requested: &ChannelId) -> Vec<ChannelId> {
        let route: Vec<ChannelId> = std::iter::once(requested.clone())
            .chain(self.backups_of(requested).iter().cloned())
            .collect();
        let health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        let up: Vec<ChannelId> = route
            .iter()
            .filter(|c| self.down_because(c, &health).is_none())
            .cloned()
            .collect();
        if up.is_empty() {
            route
        } else {
            up
        }
    }

    pub fn failed(&self, channel: &ChannelId) {
        let mut health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        let h = health.entry(channel.clone()).or_default();
        h.consecutive_failures += 1;
        if h.consecutive_failures >= self.policy.failure_threshold {
            if h.tripped_at.is_none_or(|at| at.elapsed() >= self.policy.cooldown) {
                tracing::warn!(
                    channel = channel.as_str(),
                    failures = h.consecutive_failures,
                    "channel marked down"
                );
            }
            h.tripped_at = Some(Instant::now());
        }
    }

    pub fn succeeded(&self, channel: &ChannelId) {
        let mut health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        let h = health.entry(channel.clone()).or_default();
        h.consecutive_failures = 0;
        h.tripped_at = None;
    }

    /// An operator's word: down, or up (which also clears failures and
    /// overrides the config).
    pub fn set_down(&self, channel: &ChannelId, down: bool) {
        let mut health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        let h = health.entry(channel.clone()).or_default();
        h.admin_down = Some(down);
        if !down {
            h.consecutive_failures = 0;
            h.tripped_at = None;
        }
    }

    pub fn health_of(&self, channels: impl Iterator<Item = ChannelId>) -> Vec<ChannelHealth> {
        let health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        channels
            .map(|c| {
                let down = self.down_because(&c, &health);
                ChannelHealth {
                    channel: c.as_str().to_owned(),
                    up: down.is_none(),
                    down_because: down,
                    consecutive_failures: health.get(&c).map_or(0, |h| h.consecutive_failures),
                    backups: self
                        .backups_of(&c)
                        .iter()
                        .map(|b| b.as_str().to_owned())
                        .collect(),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(s: &str) -> ChannelId {
        ChannelId::parse(s).unwrap()
    }

    #[test]
    fn debits_go_to_the_first_channel_that_is_up() {
        let routing = Routing::new(RoutingPolicy {
            routes: vec![Route {
                primary: ch("a"),
                backups: vec![ch("b"), ch("c")],
            }],
            failure_threshold: 2,
            cooldown: Duration::from_secs(60),
            down_by_config: [ch("c")].into(),
        });
        assert_eq!(routing.candidates(&ch("a")), vec![ch("a"), ch("b")]);
        routing.failed(&ch("a"));
        assert_eq!(
            routing.candidates(&ch("a"))[0],
            ch("a"),
            "one failure is below the threshold"
        );
        routing.failed(&ch("a"));
        assert_eq!(routing.candidates(&ch("a")), vec![ch("b")]);
        routing.set_down(&ch("b"), true);
        assert_eq!(
            routing.candidates(&ch("a")),
            vec![ch("a"), ch("b"), ch("c")],
            "all down: try them all"
        );
        routing.set_down(&ch("c"), false);
        assert_eq!(
            routing.candidates(&ch("a")),
            vec![ch("c")],
            "admin overrides config"
        );
        routing.succeeded(&ch("a"));
        assert_eq!(routing.candidates(&ch("a")), vec![ch("a"), ch("c")]);
        assert_eq!(routing.route_of(&ch("a")).len(), 3);
        assert_eq!(
            routing.candidates(&ch("z")),
            vec![ch("z")],
            "no route: the channel alone"
        );
    }
}
