//! Leases in the store: which node runs a background task (the settler,
//! the idempotency sweep, key maintenance), and which process holds a node
//! name. A lease names its holder (node and process instance) and an end
//! time; the holder renews it before the end, another node takes it only
//! once the end has passed. The store's preconditions make a take or a
//! renewal atomic, so two nodes never both believe they took it from the
//! same record.
//!
//! Leases save duplicated work; they do not carry correctness. Every task
//! writes under store preconditions (a payment settled twice conflicts),
//! so two holders at once (clocks skewed past the margin, a holder paused
//! past its end) waste work and nothing else.

use super::audited::now_ms;
use super::records::{decode, encode};
use super::{Vault, VaultError};
use crate::audit::{Actor, Outcome};
use crate::domain::operation::Operation;
use crate::store::{keyspace, Batch, CommitError, Store};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Who holds a lease: the node's name (empty for the unnamed node) and a
/// random id of the process, so a restarted node is a new holder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub node: String,
    pub instance: String,
}

impl Holder {
    /// This process, on `node`.
    pub fn this_process(node: Option<&crate::domain::node::NodeName>) -> Result<Self, VaultError> {
        let id = crate::domain::random::array::<8>()?;
        Ok(Holder {
            node: node.map(|n| n.to_string()).unwrap_or_default(),
            instance: crate::hex::encode(&id),
        })
    }

    fn describe(&self) -> String {
        let node = if self.node.is_empty() {
            "unnamed"
        } else {
            &self.node
        };
        format!("{node}/{}", self.instance)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct LeaseRecord {
    holder: Holder,
    /// Wall-clock milliseconds; past this, another node may take it.
    until_ms: i64,
}

/// When another holder's lease may be taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// Only once its time has run out.
    AfterEnd,
    /// Also at once when its holder is an earlier process of this same
    /// node: this process holds the node's name, so that one is gone.
    FromEarlierProcess,
}

/// What one attempt found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseState {
    /// This process holds it until `ttl` after the attempt began.
    Held,
    /// Another holder's lease runs `left_ms` more.
    HeldBy { holder: String, left_ms: i64 },
}

impl<S: Store> Vault<S> {
    /// Takes or renews the lease `name` for `ttl`. A renewal is a plain
    /// write; a take (the lease new, or another holder's past its end) is
    /// audited (`lease.take`, naming the previous holder). A lost race is
    /// `HeldBy` the winner.
    pub async fn hold_lease(
        &self,
        actor: &Actor,
        name: &str,
        holder: &Holder,
        ttl: Duration,
        claim: Claim,
    ) -> Result<LeaseState, VaultError> {
        let key = keyspace::LEASE.key(name);
        let now_ms = now_ms();
        let stored = self.store.get(&key).await?;
        let current: Option<LeaseRecord> = stored.as_deref().map(|b| decode(b, "lease")).transpose()?;
        let ours = current.as_ref().is_some_and(|c| &c.holder == holder);
        let earlier_process =
            |c: &LeaseRecord| claim == Claim::FromEarlierProcess && c.holder.node == holder.node;
        let live_other = current
            .as_ref()
            .filter(|c| !ours && c.until_ms > now_ms && !earlier_process(c));
        if let Some(other) = live_other {
            return Ok(LeaseState::HeldBy {
                holder: other.holder.describe(),
                left_ms: other.until_ms - now_ms,
            });
        }
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let record = LeaseRecord {
            holder: holder.clone(),
            until_ms: now_ms.saturating_add(ttl_ms),
        };
        let mut batch = Batch::new();
        match &stored {
            Some(bytes) => batch.expect_equals(key.clone(), bytes.clone()),
            None => batch.expect_absent(key.clone()),
        };
        batch.put(key, encode(&record)?);
        let written = if ours {
            match self.store.commit(batch).await {
                Ok(()) => true,
                Err(CommitError::Conflict) => false,
                Err(CommitError::Store(e)) => return Err(e.into()),
            }
        } else {
            let from = current.map_or_else(|| "none".to_owned(), |c| c.holder.describe());
            let detail = format!("lease={name} holder={} from={from}", holder.describe());
            self.commit_with_audit(
                batch,
                actor,
                Operation::LeaseTake,
                None,
                Outcome::Success,
                Some(detail),
            )
            .await?
        };
        if written {
            return Ok(LeaseState::Held);
        }
        // Someone else wrote it between our read and our write.
        let winner: Option<LeaseRecord> = self
            .store
            .get(&keyspace::LEASE.key(name))
            .await?
            .as_deref()
            .map(|b| decode(b, "lease"))
            .transpose()?;
        Ok(match winner {
            Some(w) if &w.holder == holder => LeaseState::Held,
            Some(w) => LeaseState::HeldBy {
                holder: w.holder.describe(),
                left_ms: w.until_ms - now_ms,
            },
            None => LeaseState::HeldBy {
                holder: "nobody (released)".to_owned(),
                left_ms: 0,
            },
        })
    }

    /// Ends this process's lease `name` now (a graceful stop), so another
    /// node, or this node restarted, takes it at once. A lease someone
    /// else holds is left alone.
    pub async fn release_lease(&self, name: &str, holder: &Holder) -> Result<(), VaultError> {
        let key = keyspace::LEASE.key(name);
        let Some(stored) = self.store.get(&key).await? else {
            return Ok(());
        };
        let current: LeaseRecord = decode(&stored, "lease")?;
        if &current.holder != holder {
            return Ok(());
        }
        let ended = LeaseRecord {
            holder: current.holder,
            until_ms: 0,
        };
        let mut batch = Batch::new();
        batch.expect_equals(key.clone(), stored);
        batch.put(key, encode(&ended)?);
        match self.store.commit(batch).await {
            Ok(()) | Err(CommitError::Conflict) => Ok(()),
            Err(CommitError::Store(e)) => Err(e.into()),
        }
    }
}
