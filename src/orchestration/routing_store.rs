//! The shared half of channel routing (`routing`): each channel's operator
//! state and failure trip as a record in the store, read again once this
//! node's copy is stale, written (with an audit record) when an operator
//! changes it or a node trips or clears a trip.

use super::layout;
use super::routing::{now_ms, ChannelHealth, ChannelState, Routing};
use crate::audit::{Actor, Outcome};
use crate::domain::ids::ChannelId;
use crate::domain::operation::Operation;
use crate::store::{Batch, Store};
use crate::vault::{decode, encode, Layer, Vault, VaultError};
use std::collections::BTreeMap;

/// More channels than any deployment configures; one scan reads them all.
const MAX_CHANNELS: usize = 4096;

/// How often a state change is tried again after another node's change
/// to the same channel came first.
const WRITE_ATTEMPTS: usize = 5;

impl Routing {
    /// Reads the shared state again when this node's copy is stale. A read
    /// that fails keeps the old copy (routing is advice, not a guard).
    pub async fn refresh<S: Store>(&self, vault: &Vault<S>) {
        if !self.is_stale() {
            return;
        }
        if let Err(e) = self.reload(vault).await {
            tracing::warn!(error = %e, "channel state not read; routing on the last copy");
        }
    }

    async fn reload<S: Store>(&self, vault: &Vault<S>) -> Result<(), VaultError> {
        let view = vault.store_view(Layer::Orchestration);
        let entries = view
            .scan_prefix(layout::CHANNEL_STATE_PREFIX, None, MAX_CHANNELS)
            .await?;
        let mut states = BTreeMap::new();
        for (key, value) in entries {
            let name = String::from_utf8_lossy(&key[layout::CHANNEL_STATE_PREFIX.len()..]).into_owned();
            if let Ok(channel) = ChannelId::parse(&name) {
                states.insert(channel, decode(&value, "channel state")?);
            }
        }
        self.replace_shared(states);
        Ok(())
    }

    /// A call to `channel` failed on this node: trips the channel for every
    /// node once this node's count reaches the threshold.
    pub async fn failed<S: Store>(&self, vault: &Vault<S>, channel: &ChannelId) {
        if !self.note_failure(channel) {
            return;
        }
        let until = now_ms() + i64::try_from(self.policy.cooldown.as_millis()).unwrap_or(i64::MAX);
        let detail = format!(
            "channel={} tripped failures={} cooldown_s={}",
            channel.as_str(),
            self.consecutive_failures(channel),
            self.policy.cooldown.as_secs()
        );
        tracing::warn!(
            channel = channel.as_str(),
            "channel marked down after consecutive failures"
        );
        let trip = |s: &mut ChannelState| s.tripped_until_ms = Some(until);
        if let Err(e) = self
            .change(vault, &Actor::local("routing"), channel, trip, detail)
            .await
        {
            tracing::warn!(error = %e, channel = channel.as_str(), "channel trip not shared");
        }
    }

    /// A call to `channel` was answered: clears this node's count, and a
    /// trip (for every node) if there is one.
    pub async fn succeeded<S: Store>(&self, vault: &Vault<S>, channel: &ChannelId) {
        if !self.note_success(channel) {
            return;
        }
        let detail = format!("channel={} recovered", channel.as_str());
        let clear = |s: &mut ChannelState| s.tripped_until_ms = None;
        if let Err(e) = self
            .change(vault, &Actor::local("routing"), channel, clear, detail)
            .await
        {
            tracing::warn!(error = %e, channel = channel.as_str(), "channel recovery not shared");
        }
    }

    /// An operator's word: down, or up (which also clears failures and a
    /// trip, and overrides the config). Audited; no record, no change.
    pub async fn set_down<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        channel: &ChannelId,
        down: bool,
    ) -> Result<ChannelHealth, VaultError> {
        let detail = format!("channel={} down={down}", channel.as_str());
        let set = |s: &mut ChannelState| {
            s.admin_down = Some(down);
            if !down {
                s.tripped_until_ms = None;
            }
        };
        self.change(vault, actor, channel, set, detail).await?;
        if !down {
            self.clear_failures(channel);
        }
        self.health_of(std::iter::once(channel.clone()))
            .into_iter()
            .next()
            .ok_or(VaultError::NotFound { what: "channel" })
    }

    /// The health of `channels`, from the store as it is now.
    pub async fn current_health<S: Store>(
        &self,
        vault: &Vault<S>,
        channels: impl Iterator<Item = ChannelId>,
    ) -> Result<Vec<ChannelHealth>, VaultError> {
        self.reload(vault).await?;
        Ok(self.health_of(channels))
    }

    /// Read, change, write with the audit record of `operation`; again when
    /// another node changed the record meanwhile.
    async fn change<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        channel: &ChannelId,
        change: impl Fn(&mut ChannelState),
        detail: String,
    ) -> Result<(), VaultError> {
        let key = layout::channel_state(channel);
        for _ in 0..WRITE_ATTEMPTS {
            let stored = vault.store_view(Layer::Orchestration).get(&key).await?;
            let mut state: ChannelState = match &stored {
                Some(bytes) => decode(bytes, "channel state")?,
                None => ChannelState::default(),
            };
            change(&mut state);
            let mut batch = Batch::new();
            batch
                .expect(key.clone(), stored.as_deref())
                .put(key.clone(), encode(&state)?);
            let object = Some(vault.audit_object(channel));
            let written = vault
                .commit_from_above(
                    batch,
                    actor,
                    Operation::ChannelManage,
                    object,
                    Outcome::Success,
                    Some(detail.clone()),
                )
                .await?;
            if written {
                self.learned(channel, state);
                return Ok(());
            }
        }
        Err(VaultError::Contention)
    }
}
