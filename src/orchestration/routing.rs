//! Channel routing: each primary channel may have backups. A channel is
//! down when config or an operator says so, or for `cooldown` after
//! `failure_threshold` consecutive failures (then it is tried again).
//! Debits go to the first channel of their route that is up.
//!
//! Several nodes share what matters (`routing_store`): the operator's word
//! and a failure trip are a record per channel in the store, which every
//! node reads again once its copy is older than `SHARED_STALENESS` (and
//! the node that wrote one sees it at once). Consecutive failures are
//! counted by each node for itself: the node whose count reaches the
//! threshold trips the channel for all.

use crate::domain::ids::ChannelId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How old this node's copy of the shared channel state may be before a
/// debit reads it again: the longest another node's trip or an operator's
/// change takes to reach this node.
pub const SHARED_STALENESS: Duration = Duration::from_secs(1);

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

/// One channel's shared state, as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelState {
    /// The operator's word: down, up (overriding the config), or none.
    pub admin_down: Option<bool>,
    /// Wall-clock milliseconds until which failures keep it down.
    pub tripped_until_ms: Option<i64>,
}

impl ChannelState {
    fn tripped(&self, now_ms: i64) -> bool {
        self.tripped_until_ms.is_some_and(|until| until > now_ms)
    }
}

/// What `GET /v1/admin/channels` shows of one channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ChannelHealth {
    pub channel: String,
    pub up: bool,
    /// `config`, `admin`, `failures` or none.
    #[schema(value_type = Option<String>)]
    pub down_because: Option<&'static str>,
    /// Consecutive failures this node saw (each node counts its own).
    pub consecutive_failures: u32,
    pub backups: Vec<String>,
}

/// The shared state as this node last read or wrote it.
#[derive(Default)]
struct SharedView {
    read_at: Option<Instant>,
    states: BTreeMap<ChannelId, ChannelState>,
}

pub struct Routing {
    pub(crate) policy: RoutingPolicy,
    /// This node's consecutive failures per channel.
    failures: Mutex<BTreeMap<ChannelId, u32>>,
    shared: Mutex<SharedView>,
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Routing {
    pub fn new(policy: RoutingPolicy) -> Self {
        Routing {
            policy,
            failures: Mutex::new(BTreeMap::new()),
            shared: Mutex::new(SharedView::default()),
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

    /// Whether this node's copy of the shared state is older than `SHARED_STALENESS`.
    pub(crate) fn is_stale(&self) -> bool {
        let shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        shared.read_at.is_none_or(|at| at.elapsed() >= SHARED_STALENESS)
    }

    /// Replaces this node's copy with what the store holds now.
    pub(crate) fn replace_shared(&self, states: BTreeMap<ChannelId, ChannelState>) {
        let mut shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        shared.states = states;
        shared.read_at = Some(Instant::now());
    }

    /// One channel's state after this node wrote it.
    pub(crate) fn learned(&self, channel: &ChannelId, state: ChannelState) {
        let mut shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        shared.states.insert(channel.clone(), state);
    }

    pub(crate) fn shared_state(&self, channel: &ChannelId) -> ChannelState {
        let shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        shared.states.get(channel).cloned().unwrap_or_default()
    }

    /// Why `channel` is down right now, if it is.
    fn down_because(
        &self,
        channel: &ChannelId,
        state: Option<&ChannelState>,
        now_ms: i64,
    ) -> Option<&'static str> {
        match state.and_then(|s| s.admin_down) {
            Some(true) => return Some("admin"),
            Some(false) => {}
            None if self.policy.down_by_config.contains(channel) => return Some("config"),
            None => {}
        }
        state.is_some_and(|s| s.tripped(now_ms)).then_some("failures")
    }

    /// The channels to try for a debit on `requested`, in order: those up
    /// first; if none is up, all of them (one may have recovered).
    pub fn candidates(&self, requested: &ChannelId) -> Vec<ChannelId> {
        let route: Vec<ChannelId> = std::iter::once(requested.clone())
            .chain(self.backups_of(requested).iter().cloned())
            .collect();
        let now = now_ms();
        let shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        let up: Vec<ChannelId> = route
            .iter()
            .filter(|c| self.down_because(c, shared.states.get(*c), now).is_none())
            .cloned()
            .collect();
        if up.is_empty() {
            route
        } else {
            up
        }
    }

    /// Counts a failure on this node. `true` when this one reaches the
    /// threshold and the channel is not tripped yet: the caller trips it
    /// for every node.
    pub(crate) fn note_failure(&self, channel: &ChannelId) -> bool {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let count = failures.entry(channel.clone()).or_default();
        *count += 1;
        *count >= self.policy.failure_threshold && !self.shared_state(channel).tripped(now_ms())
    }

    /// Clears this node's count. `true` when the channel is tripped: the
    /// caller clears the trip for every node (it answered after all).
    pub(crate) fn note_success(&self, channel: &ChannelId) -> bool {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(channel);
        self.shared_state(channel).tripped(now_ms())
    }

    pub(crate) fn clear_failures(&self, channel: &ChannelId) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(channel);
    }

    pub(crate) fn consecutive_failures(&self, channel: &ChannelId) -> u32 {
        let failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        failures.get(channel).copied().unwrap_or(0)
    }

    /// The health of `channels` from this node's copy of the shared state.
    pub fn health_of(&self, channels: impl Iterator<Item = ChannelId>) -> Vec<ChannelHealth> {
        let now = now_ms();
        channels
            .map(|c| {
                let state = self.shared_state(&c);
                let down = self.down_because(&c, Some(&state), now);
                ChannelHealth {
                    channel: c.as_str().to_owned(),
                    up: down.is_none(),
                    down_because: down,
                    consecutive_failures: self.consecutive_failures(&c),
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

    /// The decisions on this node's copy; `routing_store` moves the copy.
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
        assert!(
            !routing.note_failure(&ch("a")),
            "one failure is below the threshold"
        );
        assert!(routing.note_failure(&ch("a")), "the second trips it");
        let trip = ChannelState {
            admin_down: None,
            tripped_until_ms: Some(now_ms() + 60_000),
        };
        routing.learned(&ch("a"), trip);
        assert!(!routing.note_failure(&ch("a")), "tripped already");
        assert_eq!(routing.candidates(&ch("a")), vec![ch("b")]);
        routing.learned(
            &ch("b"),
            ChannelState {
                admin_down: Some(true),
                tripped_until_ms: None,
            },
        );
        assert_eq!(
            routing.candidates(&ch("a")),
            vec![ch("a"), ch("b"), ch("c")],
            "all down: try them all"
        );
        routing.learned(
            &ch("c"),
            ChannelState {
                admin_down: Some(false),
                tripped_until_ms: None,
            },
        );
        assert_eq!(
            routing.candidates(&ch("a")),
            vec![ch("c")],
            "admin overrides config"
        );
        assert!(
            routing.note_success(&ch("a")),
            "a success on a tripped channel clears the trip"
        );
        routing.learned(&ch("a"), ChannelState::default());
        assert_eq!(routing.candidates(&ch("a")), vec![ch("a"), ch("c")]);
        assert_eq!(routing.consecutive_failures(&ch("a")), 0);
        assert_eq!(routing.route_of(&ch("a")).len(), 3);
        assert_eq!(
            routing.candidates(&ch("z")),
            vec![ch("z")],
            "no route: the channel alone"
        );
        let expired = ChannelState {
            admin_down: None,
            tripped_until_ms: Some(now_ms() - 1),
        };
        routing.learned(&ch("z"), expired);
        assert_eq!(
            routing.candidates(&ch("z")),
            vec![ch("z")],
            "a trip ends after its cooldown"
        );
    }
}
