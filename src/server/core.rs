//! What a running service holds whether sealed or open: the store, TLS,
//! the router slot the listener reads, and — once the KEK is known — the
//! app and its background tasks.

use super::failed_handshakes::FailedHandshakes;
use super::leases::{Leases, Task};
use super::period::Period;
use super::settings::LayerSettings;
use super::{maintenance, sealed, trail_copies, ServeError};
use crate::api::{self, App, Metrics};
use crate::audit::{Actor, Outcome};
use crate::config::ServiceConfig;
use crate::domain::operation::Operation;
use crate::domain::time::Timestamp;
use crate::orchestration::Orchestrator;
use crate::policy::PolicySet;
use crate::store::Backend;
use crate::tls::ReloadableTls;
use crate::vault::gateway::Gateway;
use crate::vault::keys::kek::Kek;
use crate::vault::Vault;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;
use tokio::task::JoinHandle;

/// A record the trail must hold before the service serves anything (the
/// sealed-time journal, the unseal), with when it happened.
#[derive(Clone)]
pub(super) struct AuditNote {
    pub actor: Actor,
    pub outcome: Outcome,
    pub detail: String,
    pub at_ms: i64,
}

pub(super) struct ServiceCore {
    config: ServiceConfig,
    /// Built once at start (`LayerSettings::build`), used when the vault opens.
    layers: LayerSettings,
    store: Backend,
    tls: Arc<ReloadableTls>,
    pub(super) metrics: Arc<Metrics>,
    addr: SocketAddr,
    router: Arc<super::listener::RouterSlot>,
    app: OnceLock<Arc<App>>,
    /// Set with `app`: this node's leases, released on a graceful stop.
    leases: OnceLock<Arc<Leases>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// The audit sink's task, stopped after the trail's closing record.
    sink: Mutex<Option<trail_copies::SinkTask>>,
    /// Failed handshakes since the last record of them (kept while sealed).
    failed_handshakes: Arc<FailedHandshakes>,
}

impl ServiceCore {
    pub(super) fn new(
        config: ServiceConfig,
        layers: LayerSettings,
        store: Backend,
        tls: Arc<ReloadableTls>,
        metrics: Arc<Metrics>,
        addr: SocketAddr,
    ) -> Self {
        ServiceCore {
            config,
            layers,
            store,
            tls,
            metrics,
            addr,
            router: Arc::new(super::listener::RouterSlot::new(axum::Router::new())),
            app: OnceLock::new(),
            leases: OnceLock::new(),
            tasks: Mutex::new(Vec::new()),
            sink: Mutex::new(None),
            failed_handshakes: Arc::default(),
        }
    }

    pub(super) fn store(&self) -> &Backend {
        &self.store
    }

    pub(super) fn router_slot(&self) -> Arc<super::listener::RouterSlot> {
        Arc::clone(&self.router)
    }

    pub(super) fn app(&self) -> Option<Arc<App>> {
        self.app.get().cloned()
    }

    pub(super) fn failed_handshakes(&self) -> Arc<FailedHandshakes> {
        Arc::clone(&self.failed_handshakes)
    }

    pub(super) fn tls(&self) -> &ReloadableTls {
        &self.tls
    }

    /// Serves the sealed API until `open` replaces it.
    pub(super) fn seal(&self, sealed: sealed::Sealed) {
        self.router.replace(sealed::router(Arc::new(sealed)));
    }

    /// Opens the vault with `kek`, builds the app, starts its background
    /// tasks and serves the full API. Fails with `WrongKek` when `kek` is
    /// not this store's; then nothing changes.
    /// Opens the vault with `kek` and starts serving. The trail first
    /// records its opening (PCI DSS 10.2.1.6) and then `unseal_notes`
    /// (`KeyUnseal` records: what happened while sealed, and the unseal):
    /// if any cannot be written, the open fails and nothing is served
    /// (fails closed; a sealed service stays sealed).
    pub(super) async fn open(&self, kek: Kek, unseal_notes: &[AuditNote]) -> Result<Arc<App>, ServeError> {
        if let Some(app) = self.app() {
            return Ok(app);
        }
        let config = &self.config;
        let layers = self.layers.clone();
        let vault = Vault::open(self.store.clone(), kek, layers.vault).await?;
        let detail = format!(
            "audit trail opened: tokenvault {} listening on {}, KEK version {}",
            env!("CARGO_PKG_VERSION"),
            self.addr,
            vault.kek_version()
        );
        vault
            .record_admin(
                &Actor::local("service"),
                Operation::ServiceStart,
                Outcome::Success,
                &detail,
            )
            .await?;
        for note in unseal_notes {
            vault
                .record_admin_at(
                    &note.actor,
                    Operation::KeyUnseal,
                    note.outcome,
                    &note.detail,
                    note.at_ms,
                )
                .await?;
        }
        let lease_ttl = Duration::from_secs(config.store.lease_ttl_s);
        let leases = Arc::new(Leases::new(
            config.node_name.clone(),
            lease_ttl,
            self.store.is_shared(),
        )?);
        leases.take_name(&vault).await?;
        let sink = match &config.audit.sink_file {
            Some(path) => {
                let sink = crate::audit::Sink::open(path, vault.audit_chain().clone()).await?;
                // PCI DSS 10.2.1.6 for the copy too: where it starts.
                let detail = format!(
                    "audit sink opened: {} (holds records up to {})",
                    path.display(),
                    sink.written()
                );
                vault
                    .record_admin(
                        &Actor::local("service"),
                        Operation::AuditSinkStart,
                        Outcome::Success,
                        &detail,
                    )
                    .await?;
                Some(sink)
            }
            None => None,
        };
        let gateway = Gateway::new(&layers.gateway)?;
        let orchestrator = Orchestrator::new(gateway, layers.orchestration);
        let app = Arc::new(
            App::new(
                vault,
                orchestrator,
                PolicySet::load_dir(&config.policies_dir)?,
                config.policies_dir.clone(),
                Arc::clone(&self.tls),
                config.limits.body_limit_bytes,
                config.request_timeout(),
                Arc::clone(&self.metrics),
            )
            .with_custody(config.kek.custody)
            .with_amount_ceiling(config.limits.max_amount_minor_units)
            .with_idempotency_ttl(config.limits.idempotency_ttl())
            .with_kek_cryptoperiod(Duration::from_secs(config.kek.cryptoperiod_s)),
        );
        let notify_base = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("https://{}", self.addr));
        app.orchestrator.gateway.set_notify_base(notify_base);
        if let Err(ours) = self.app.set(Arc::clone(&app)) {
            // Another open finished first; theirs is the app.
            return Ok(self.app.get().map_or(ours, Arc::clone));
        }
        // Only the open that set `app` gets here, so this is the first set.
        let _ = self.leases.set(Arc::clone(&leases));
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        tasks.push(Arc::clone(&leases).spawn_keeper(Arc::clone(&app)));
        tasks.push(spawn_checkpoints(
            Arc::clone(&app),
            Duration::from_secs(config.audit.checkpoint_interval_s),
        ));
        tasks.push(spawn_settler(Arc::clone(&app), Arc::clone(&leases)));
        if config.cards.retention_s > 0 || config.identities.retention_s > 0 || config.payment.retention_s > 0
        {
            tasks.push(spawn_retention(
                Arc::clone(&app),
                Arc::clone(&leases),
                Retention {
                    cards_s: config.cards.retention_s,
                    identities_s: config.identities.retention_s,
                    payments_s: config.payment.retention_s,
                },
                Duration::from_secs(config.cards.retention_check_interval_s),
            ));
        }
        if app.orchestrator.reconciliation.daily_at.is_some() {
            tasks.push(spawn_daily_reconciliation(Arc::clone(&app), Arc::clone(&leases)));
        }
        tasks.push(spawn_failed_handshake_reports(
            Arc::clone(&app),
            Arc::clone(&self.failed_handshakes),
            Duration::from_secs(config.audit.handshake_report_interval_s),
        ));
        if let Some(sink) = sink {
            *self.sink.lock().unwrap_or_else(PoisonError::into_inner) =
                Some(trail_copies::spawn_sink(Arc::clone(&app), sink));
        }
        if let Some(dir) = &config.audit.anchor_dir {
            tasks.push(trail_copies::spawn_anchors(
                Arc::clone(&app),
                Arc::clone(&leases),
                dir.clone(),
                Duration::from_secs(config.audit.anchor_interval_s),
            ));
        }
        tasks.push(spawn_idempotency_sweep(
            Arc::clone(&app),
            Arc::clone(&leases),
            Duration::from_secs(config.limits.idempotency_sweep_interval_s),
        ));
        tasks.push(maintenance::spawn(Arc::clone(&app), leases, config.keys.clone()));
        self.router.replace(api::router(Arc::clone(&app)));
        Ok(app)
    }

    /// Records the trail's closing on a graceful stop (nothing while sealed:
    /// no trail is open).
    pub(super) async fn audit_stop(&self) {
        if let Some(app) = self.app() {
            report_failed_handshakes(&app, &self.failed_handshakes).await;
            record_lifecycle(&app, Operation::ServiceStop, "audit trail closed: graceful stop").await;
            let sink = self.sink.lock().unwrap_or_else(PoisonError::into_inner).take();
            if let Some(sink) = sink {
                // Written before the drain, so the copy holds its own end.
                record_lifecycle(&app, Operation::AuditSinkStop, "audit sink closed: graceful stop").await;
                sink.drain(&app).await;
            }
            if let Some(leases) = self.leases.get() {
                leases.release_all(&app.vault).await;
            }
        }
    }

    pub(super) fn stop_tasks(&self) {
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            task.abort();
        }
    }
}

/// The trail's (or its sink's) own stop, by `local:service`. A failure is logged: the
/// service is stopping anyway.
async fn record_lifecycle(app: &App, operation: Operation, detail: &str) {
    let actor = Actor::local("service");
    if let Err(e) = app
        .vault
        .record_admin(&actor, operation, Outcome::Success, detail)
        .await
    {
        tracing::error!(error = %e, operation = operation.as_str(), "could not audit the service's start or stop");
    }
}

/// Records every chain's head in this node's chain every `interval`, when
/// other nodes' chains exist and moved (`Vault::audit_checkpoint`), and
/// moves this node's chain to an audit key version another node made.
/// Every node runs its own: the checkpoints are what ties the chains
/// together.
fn spawn_checkpoints(app: Arc<App>, interval: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let actor = crate::audit::Actor::local("audit-checkpoint");
        let mut period = Period::every(interval);
        let mut last = None;
        loop {
            period.next().await;
            match app.vault.follow_audit_key(&actor).await {
                Ok(Some(version)) => {
                    tracing::info!(version, "this node's audit chain moved to the newest audit key")
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "could not follow the audit key's rotation"),
            }
            match app.vault.audit_checkpoint(&actor, last.clone()).await {
                Ok(now) => last = now,
                Err(e) => tracing::warn!(error = %e, "audit checkpoint failed"),
            }
        }
    })
}

/// Writes the failed handshakes counted since the last such record, if any
/// (`failed_handshakes`). A failure to write keeps nothing: the counts
/// are in the log line and the metrics.
async fn report_failed_handshakes(app: &App, failures: &FailedHandshakes) {
    let Some(report) = failures.take(crate::domain::time::now_ms()) else {
        return;
    };
    if let Err(e) = app
        .vault
        .record_admin(
            &Actor::local("listener"),
            Operation::TlsHandshakeFailed,
            Outcome::Denied,
            &report.detail,
        )
        .await
    {
        tracing::error!(error = %e, detail = report.detail, "could not audit failed handshakes");
    }
}

/// Records failed handshakes every `interval` (PCI DSS 10.2.1.4), on every
/// node: each counts its own.
fn spawn_failed_handshake_reports(
    app: Arc<App>,
    failures: Arc<FailedHandshakes>,
    interval: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut period = Period::every(interval);
        loop {
            period.next().await;
            report_failed_handshakes(&app, &failures).await;
        }
    })
}

/// How long idle cards, unheld identities and settled payments are kept
/// (0: until erased by hand).
struct Retention {
    cards_s: u64,
    identities_s: u64,
    payments_s: u64,
}

/// The cut-off `retention_s` before now, or `None` for 0 (kept).
fn cutoff(retention_s: u64) -> Option<Timestamp> {
    let retention_s = i64::try_from(retention_s).unwrap_or(i64::MAX);
    (retention_s > 0).then(|| Timestamp(Timestamp::now().seconds().saturating_sub(retention_s)))
}

/// Erases idle cards, unheld identities and settled payments past their
/// retention every `interval` (PCI DSS 3.2.1, PIPL), as `local:retention`,
/// on the node that holds the task's lease.
fn spawn_retention(
    app: Arc<App>,
    leases: Arc<Leases>,
    retention: Retention,
    interval: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let actor = Actor::local("retention");
        let mut period = Period::every(interval).under_lease(leases, Task::Retention);
        loop {
            period.next().await;
            if let Some(cutoff) = cutoff(retention.cards_s) {
                match app.vault.erase_cards_idle_since(&actor, cutoff).await {
                    Ok(0) => {}
                    Ok(erased) => tracing::info!(erased, "retention: idle cards erased"),
                    Err(e) => tracing::warn!(error = %e, "card retention sweep failed"),
                }
            }
            if let Some(cutoff) = cutoff(retention.identities_s) {
                match app.vault.erase_identities_unheld_since(&actor, cutoff).await {
                    Ok(0) => {}
                    Ok(erased) => tracing::info!(erased, "retention: unheld identities erased"),
                    Err(e) => tracing::warn!(error = %e, "identity retention sweep failed"),
                }
            }
            if let Some(cutoff) = cutoff(retention.payments_s) {
                match app
                    .orchestrator
                    .purge_payments_settled_before(&app.vault, &actor, cutoff)
                    .await
                {
                    Ok(0) => {}
                    Ok(purged) => tracing::info!(purged, "retention: settled payments deleted"),
                    Err(e) => tracing::warn!(error = %e, "payment retention sweep failed"),
                }
            }
        }
    })
}

/// Reconciles each channel's day before once `[reconciliation] daily_at`
/// has passed (Beijing time), as `local:reconciliation`, on the node that
/// holds the task's lease; a date with a run is not run again.
fn spawn_daily_reconciliation(app: Arc<App>, leases: Arc<Leases>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let actor = Actor::local("reconciliation");
        let interval = app.orchestrator.reconciliation.check_interval;
        let mut period = Period::every(interval).under_lease(leases, Task::Reconciliation);
        loop {
            period.next().await;
            match app
                .orchestrator
                .reconcile_due(&app.vault, &actor, Timestamp::now())
                .await
            {
                Ok((runs, failed)) => {
                    for run in runs {
                        app.metrics.reconciled(run.channel.as_str(), &run.class_counts());
                        tracing::info!(channel = %run.channel.as_str(), date = %run.date, discrepancies = run.discrepancies.len(), "daily reconciliation");
                    }
                    for (channel, error) in failed {
                        tracing::warn!(%channel, %error, "daily reconciliation failed: tried again at the next check");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "daily reconciliation could not read its runs"),
            }
        }
    })
}

/// Deletes remembered answers past their time every `interval` (see
/// `api::idempotency_sweep`), as the `local:idempotency-sweep` actor.
fn spawn_idempotency_sweep(app: Arc<App>, leases: Arc<Leases>, interval: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let actor = crate::audit::Actor::local("idempotency-sweep");
        let mut period = Period::every(interval).under_lease(leases, Task::IdempotencySweep);
        loop {
            period.next().await;
            match app.sweep_idempotency(&actor).await {
                Ok(pass) => {
                    app.metrics.idempotency_swept(pass.scanned, pass.swept);
                    if pass.swept > 0 {
                        tracing::info!(scanned = pass.scanned, swept = pass.swept, "idempotency sweep");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "idempotency sweep failed"),
            }
        }
    })
}

/// Settles unsettled payments every `payment.poll_interval_ms` (see
/// `orchestration::payment::settler`), as the `local:settler` actor.
fn spawn_settler(app: Arc<App>, leases: Arc<Leases>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let actor = crate::audit::Actor::local("settler");
        let mut period =
            Period::every(app.orchestrator.payments.poll_interval).under_lease(leases, Task::Settler);
        loop {
            period.next().await;
            match app.orchestrator.settle_open(&app.vault, &actor).await {
                Ok(pass) => {
                    let settled: Vec<&'static str> = pass.settled.iter().map(|s| s.as_str()).collect();
                    app.metrics.settler_pass(pass.open, &settled);
                    if !settled.is_empty() {
                        tracing::info!(open = pass.open, settled = settled.len(), "settler pass");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "settler pass failed"),
            }
        }
    })
}
