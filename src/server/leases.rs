//! One node at a time runs each background task: the settler, the
//! idempotency sweep, key maintenance, retention and the daily
//! reconciliation each run only while this node
//! holds the task's lease in the store (`vault::lease`). A keeper task
//! takes or renews every lease each third of its time to live; a node that
//! dies stops renewing, and another takes its tasks over within one time
//! to live plus one keeper period. A node also holds its name (the
//! unnamed node too), so a second process started under the same name is
//! refused at start (two writers of one audit chain would keep refusing
//! each other's writes), and a node restarted after a crash takes its
//! earlier process's task leases at once. On sled, which one process
//! alone can open, this node runs every task and no lease is written.

use crate::api::App;
use crate::audit::Actor;
use crate::domain::node::NodeName;
use crate::store::Backend;
use crate::vault::lease::{Claim, Holder, LeaseState};
use crate::vault::{Vault, VaultError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// In `Task::ALL` order: a task's discriminant indexes its slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Task {
    Settler = 0,
    IdempotencySweep = 1,
    KeyMaintenance = 2,
    AuditAnchor = 3,
    Retention = 4,
    Reconciliation = 5,
}

impl Task {
    const ALL: [Task; 6] = [
        Task::Settler,
        Task::IdempotencySweep,
        Task::KeyMaintenance,
        Task::AuditAnchor,
        Task::Retention,
        Task::Reconciliation,
    ];

    fn lease_name(self) -> &'static str {
        match self {
            Task::Settler => "task/settler",
            Task::IdempotencySweep => "task/idempotency-sweep",
            Task::KeyMaintenance => "task/key-maintenance",
            Task::AuditAnchor => "task/audit-anchor",
            Task::Retention => "task/retention",
            Task::Reconciliation => "task/reconciliation",
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LeaseError {
    #[error("node name {name} is held by another process ({holder}) for {left_s} s more: two processes may not run under one name (give each node its own node_name)")]
    NameInUse {
        name: String,
        holder: String,
        left_s: i64,
    },
    #[error("node name lease: {0}")]
    Vault(#[from] VaultError),
}

pub(super) struct Leases {
    /// Whether other nodes share the store (else this node holds everything).
    shared: bool,
    holder: Holder,
    node: Option<NodeName>,
    /// The lease on this node's name (`node/<name>`, `node/-` unnamed).
    name_lease: String,
    ttl: Duration,
    /// Per task (in `Task::ALL` order): until when this node may run it.
    held_until: [Mutex<Option<Instant>>; Task::ALL.len()],
}

impl Leases {
    pub(super) fn new(node: Option<NodeName>, ttl: Duration, shared: bool) -> Result<Self, VaultError> {
        Ok(Leases {
            shared,
            holder: Holder::this_process(node.as_ref())?,
            name_lease: format!("node/{}", node.as_ref().map_or("-", NodeName::as_str)),
            node,
            ttl,
            held_until: Default::default(),
        })
    }

    /// Whether this node may run `task` now.
    pub(super) fn holds(&self, task: Task) -> bool {
        if !self.shared {
            return true;
        }
        let slot = &self.held_until[task as usize];
        until(slot).is_some_and(|t| Instant::now() < t)
    }

    /// Takes this node's name. A process that died under it (a crash, a
    /// kill) stops renewing, so this waits up to one time to live for its
    /// lease to end; a live one renews, and the start is refused. Nothing
    /// to take on an unshared store.
    pub(super) async fn take_name(&self, vault: &Vault<Backend>) -> Result<(), LeaseError> {
        if !self.shared {
            return Ok(());
        }
        let name = self.node_label();
        let give_up = Instant::now() + self.ttl + Duration::from_secs(1);
        loop {
            let (holder, left_ms) = match self.hold(vault, &self.name_lease, Claim::AfterEnd).await? {
                LeaseState::Held => return Ok(()),
                LeaseState::HeldBy { holder, left_ms } => (holder, left_ms),
            };
            if Instant::now() >= give_up {
                return Err(LeaseError::NameInUse {
                    name: name.to_owned(),
                    holder,
                    left_s: left_ms / 1000,
                });
            }
            tracing::warn!(
                node = name,
                holder,
                left_ms,
                "waiting for the earlier process's lease on this node's name to end"
            );
            let wait = u64::try_from(left_ms).unwrap_or(0).clamp(100, 1_000);
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
    }

    /// Ends this process's leases on a graceful stop, so another node (or
    /// this one restarted) takes the tasks at once.
    pub(super) async fn release_all(&self, vault: &Vault<Backend>) {
        if !self.shared {
            return;
        }
        let names = Task::ALL.iter().map(|t| t.lease_name().to_owned());
        for name in names.chain(std::iter::once(self.name_lease.clone())) {
            if let Err(e) = vault.release_lease(&name, &self.holder).await {
                tracing::warn!(error = %e, lease = name, "lease not released; it ends on its own");
            }
        }
    }

    /// Renews the name and takes or renews every task's lease, every third
    /// of the time to live, until the service stops.
    pub(super) fn spawn_keeper(self: Arc<Self>, app: Arc<App>) -> JoinHandle<()> {
        tokio::spawn(async move {
            if !self.shared {
                return;
            }
            let mut period = super::period::Period::every(self.ttl / 3);
            loop {
                period.next().await;
                self.keep_all(&app.vault).await;
            }
        })
    }

    async fn keep_all(&self, vault: &Vault<Backend>) {
        match self.hold(vault, &self.name_lease, Claim::AfterEnd).await {
            Ok(LeaseState::Held) => {}
            Ok(LeaseState::HeldBy { holder, .. }) => {
                tracing::error!(node = self.node_label(), holder, "another process holds this node's name: two processes write one audit chain (correct, but their writes refuse each other); stop one")
            }
            Err(e) => tracing::warn!(error = %e, "node name lease not renewed"),
        }
        for task in Task::ALL {
            let began = Instant::now();
            let slot = &self.held_until[task as usize];
            let had = self.holds(task);
            match self
                .hold(vault, task.lease_name(), Claim::FromEarlierProcess)
                .await
            {
                Ok(LeaseState::Held) => {
                    self.set(slot, Some(began + self.held_for()));
                    if !had {
                        tracing::info!(task = task.lease_name(), "lease taken: this node runs the task");
                    }
                }
                Ok(LeaseState::HeldBy { holder, .. }) => {
                    self.set(slot, None);
                    if had {
                        tracing::warn!(task = task.lease_name(), holder, "lease lost to another node");
                    }
                }
                // Not renewed: the held time runs out on its own.
                Err(e) => tracing::warn!(error = %e, task = task.lease_name(), "lease not renewed"),
            }
        }
    }

    fn node_label(&self) -> &str {
        self.node.as_ref().map_or("(unnamed)", NodeName::as_str)
    }

    async fn hold(&self, vault: &Vault<Backend>, name: &str, claim: Claim) -> Result<LeaseState, VaultError> {
        vault
            .hold_lease(&Actor::local("lease-keeper"), name, &self.holder, self.ttl, claim)
            .await
    }

    /// This node stops a fifth of the time to live before the lease's end,
    /// the margin for clocks skewed between nodes.
    fn held_for(&self) -> Duration {
        self.ttl * 4 / 5
    }

    fn set(&self, slot: &Mutex<Option<Instant>>, value: Option<Instant>) {
        *slot.lock().unwrap_or_else(PoisonError::into_inner) = value;
    }
}

fn until(slot: &Mutex<Option<Instant>>) -> Option<Instant> {
    *slot.lock().unwrap_or_else(PoisonError::into_inner)
}
