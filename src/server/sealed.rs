//! The sealed service: with share custody the KEK exists nowhere until
//! enough custodians have each submitted a share over mutual TLS from their
//! own certificate. Until then only `/health`, the seal status and share
//! submission answer; everything else is `503 sealed`.
//!
//! The audit chain's key is itself wrapped by the KEK, so submissions made
//! while sealed are kept in memory (no share material, only who, when and
//! what happened) and written to the chain the moment it opens.

use super::core::AuditNote;
use super::core::ServiceCore;
use crate::api::dto::SealStatus;
use crate::api::keys::share_problem;
use crate::api::metrics::{SealGauge, Snapshot};
use crate::api::problem::Problem;
use crate::api::rate_limit::SlidingLimiter;
use crate::api::{json, Caller};
use crate::audit::{Actor, Outcome};
use crate::domain::operation::Operation;
use crate::domain::time::now_ms;
use crate::policy::PolicySet;
use crate::vault::crypto::CryptoError;
use crate::vault::keys::custody::{Accept, Progress, ShareCollector};
use crate::vault::keys::kek::Kek;
use crate::vault::keys::shares::{Manifest, ShareFile};
use crate::vault::VaultError;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

const JOURNAL_LIMIT: usize = 1000;
/// The limiter's key for the node-wide count (identities are URIs, so no
/// identity can be this).
const NODE: &str = "node";

/// How many share submissions the sealed service takes (`[kek]`): a
/// custodian sends one share and a few retries cover a mistyped file; the
/// node-wide bound stops a guessing campaign spread over identities.
#[derive(Clone, Copy, Debug)]
pub(super) struct UnsealLimits {
    pub per_identity: u32,
    pub per_node: u32,
    pub window: Duration,
}

pub(super) struct Sealed {
    core: Arc<ServiceCore>,
    policies: PolicySet,
    /// KEK version the assembled key gets (the store's custody record's).
    kek_version: u32,
    collector: tokio::sync::Mutex<ShareCollector>,
    journal: Mutex<Vec<AuditNote>>,
    /// Noted events the journal had no room for: the trail gets their count.
    unjournaled: AtomicU64,
    per_identity: SlidingLimiter,
    per_node: SlidingLimiter,
    limits: UnsealLimits,
}

impl Sealed {
    pub(super) fn new(
        core: Arc<ServiceCore>,
        policies: PolicySet,
        custody: Option<(u32, Manifest)>,
        limits: UnsealLimits,
    ) -> Self {
        let (kek_version, accept) = match custody {
            Some((version, manifest)) => (version, Accept::Only(manifest.set_id)),
            None => (1, Accept::Any),
        };
        Sealed {
            core,
            policies,
            kek_version,
            collector: tokio::sync::Mutex::new(ShareCollector::new(accept)),
            journal: Mutex::new(Vec::new()),
            unjournaled: AtomicU64::new(0),
            per_identity: SlidingLimiter::new(limits.per_identity, limits.window),
            per_node: SlidingLimiter::new(limits.per_node, limits.window),
            limits,
        }
    }

    fn note(&self, actor: &Actor, outcome: Outcome, detail: String) {
        tracing::warn!(identity = %actor.identity, outcome = ?outcome, %detail, "key custody");
        let mut journal = self.journal.lock().unwrap_or_else(PoisonError::into_inner);
        // A flood of refused calls while sealed must not grow memory without
        // bound; the service log still has every one.
        if journal.len() < JOURNAL_LIMIT {
            journal.push(AuditNote {
                actor: actor.clone(),
                outcome,
                detail: format!("{detail} (while sealed)"),
                at_ms: now_ms(),
            });
        } else {
            self.unjournaled.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn authorize(&self, caller: &Caller, operation: Operation) -> Result<(), Problem> {
        let allowed = caller
            .identity
            .as_ref()
            .is_some_and(|id| self.policies.allows(id, operation));
        if allowed {
            return Ok(());
        }
        self.note(
            &caller.actor,
            Outcome::Denied,
            format!("{} denied by policy", operation.as_str()),
        );
        Err(Problem::forbidden(operation))
    }

    /// One share submission against the identity's and the node's limits;
    /// a refusal is noted (and audited once the chain opens).
    fn admit_submission(&self, actor: &Actor) -> Result<(), Problem> {
        let refused = match self.per_identity.take(&actor.identity) {
            Err(wait) => Some(("per identity", self.limits.per_identity, wait)),
            Ok(()) => self
                .per_node
                .take(NODE)
                .err()
                .map(|wait| ("per node", self.limits.per_node, wait)),
        };
        let window = self.limits.window.as_secs();
        let Some((scope, limit, wait)) = refused else {
            return Ok(());
        };
        self.note(
            actor,
            Outcome::Refused,
            format!("share submission refused: rate limit {scope} ({limit} per {window} s)"),
        );
        Err(Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too many share submissions",
            format!("at most {limit} share submissions per {window} s {scope}"),
        )
        .retry_after(wait))
    }
}

pub(super) fn router(sealed: Arc<Sealed>) -> Router {
    let router = Router::new()
        .route("/health", get(crate::api::health))
        .route("/v1/admin/seal", get(status))
        .route("/v1/admin/unseal", post(unseal))
        .route("/metrics", get(metrics))
        .fallback(|| async { sealed_problem() })
        .layer(axum::extract::DefaultBodyLimit::max(16 * 1024))
        .layer(axum::middleware::map_request(crate::api::with_request_id));
    crate::api::logged(router).with_state(sealed)
}

fn sealed_problem() -> Problem {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "sealed",
        "Sealed",
        "the vault is sealed until key custodians submit enough KEK shares",
    )
    .retry_after(5)
}

/// The sealed service's metrics: its seal and share progress, plus the
/// connection and request counters (no vault state exists yet).
async fn metrics(State(sealed): State<Arc<Sealed>>, caller: Caller) -> Result<Response, Problem> {
    sealed.authorize(&caller, Operation::MetricsRead)?;
    let (shares_submitted, threshold, _) = sealed.collector.lock().await.status();
    let snapshot = Snapshot {
        seal: SealGauge {
            sealed: true,
            shares_submitted,
            threshold: threshold.map_or(0, usize::from),
        },
        crl_next_update: sealed.core.tls().crl_next_update(),
        ..Snapshot::default()
    };
    Ok(crate::api::metrics::response(
        sealed.core.metrics.render(snapshot),
    ))
}

async fn status(State(sealed): State<Arc<Sealed>>, caller: Caller) -> Result<Json<SealStatus>, Problem> {
    sealed.authorize(&caller, Operation::KeyUnseal)?;
    let (have, need, custodians) = sealed.collector.lock().await.status();
    Ok(Json(SealStatus {
        sealed: true,
        shares_submitted: have,
        threshold: need,
        custodians,
    }))
}

async fn unseal(
    State(sealed): State<Arc<Sealed>>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    sealed.authorize(&caller, Operation::KeyUnseal)?;
    sealed.admit_submission(&caller.actor)?;
    let file: ShareFile = json::parse(&headers, &body).inspect_err(|_| {
        sealed.note(&caller.actor, Outcome::Refused, "share file unreadable".into());
    })?;
    let mut collector = sealed.collector.lock().await;
    let progress = collector.submit(&caller.actor.identity, &file);
    drop(file);
    match progress {
        Err(e) => {
            sealed.note(
                &caller.actor,
                Outcome::Refused,
                format!("share refused: {}", e.rule()),
            );
            Err(share_problem(&e))
        }
        Ok(Progress::Counted { have, need }) => {
            sealed.note(
                &caller.actor,
                Outcome::Success,
                format!("share counted: {have} of {need}"),
            );
            let (_, threshold, custodians) = collector.status();
            let body = SealStatus {
                sealed: true,
                shares_submitted: have,
                threshold,
                custodians,
            };
            Ok((StatusCode::ACCEPTED, Json(body)).into_response())
        }
        Ok(Progress::Assembled {
            kek,
            manifest,
            custodians,
        }) => {
            let kek = Kek::with_version(sealed.kek_version, &kek);
            let notes = sealed.notes_for_opening(&caller.actor, &manifest, &custodians);
            match sealed.core.open(kek, &notes).await {
                Ok(app) => {
                    opened(&sealed, &app, &manifest).await;
                    let body = SealStatus {
                        sealed: false,
                        shares_submitted: custodians.len(),
                        threshold: Some(manifest.threshold),
                        custodians,
                    };
                    Ok(Json(body).into_response())
                }
                Err(super::ServeError::Vault(VaultError::Crypto(CryptoError::WrongKek))) => {
                    sealed.note(
                        &caller.actor,
                        Outcome::Refused,
                        "assembled KEK does not open this store; all shares must be submitted again".into(),
                    );
                    Err(Problem::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "wrong-kek",
                        "Wrong key",
                        "the assembled KEK does not open this data directory; submit the shares again",
                    )
                    .with_field("share", "wrong_kek"))
                }
                Err(e) => {
                    // Nothing is served unrecorded: the service stays sealed,
                    // the journal kept for the next assembly.
                    tracing::error!(error = %e, "could not open the vault after unseal, or record its opening; still sealed");
                    sealed.note(
                        &caller.actor,
                        Outcome::Error,
                        "shares assembled, but the vault could not open or record its opening: still sealed"
                            .into(),
                    );
                    Err(Problem::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "storage-unavailable",
                        "Storage unavailable",
                        "the vault could not open, or could not record its opening in the audit trail, so it stays sealed; submit the shares again",
                    ))
                }
            }
        }
    }
}

/// Binds the share set to the store (first unseal), once the trail holds
/// the unseal and the journal (`ServiceCore::open`), which are dropped here.
async fn opened(sealed: &Sealed, app: &crate::api::App, manifest: &Manifest) {
    sealed
        .journal
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clear();
    if let Err(e) = app.vault.adopt_custody(manifest).await {
        tracing::error!(error = %e, "could not record the share set");
    }
}

impl Sealed {
    /// What the trail must hold before the opened vault serves: the
    /// sealed-time journal (each note timed when it happened), the count
    /// of notes it had no room for, and the unseal itself.
    fn notes_for_opening(&self, actor: &Actor, manifest: &Manifest, custodians: &[String]) -> Vec<AuditNote> {
        let mut notes = self
            .journal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let unjournaled = self.unjournaled.swap(0, Ordering::Relaxed);
        if unjournaled > 0 {
            notes.push(AuditNote {
                actor: Actor::local("sealed-journal"),
                outcome: Outcome::Refused,
                detail: format!(
                    "{unjournaled} more calls while sealed were refused or denied past the journal's {JOURNAL_LIMIT} entries (each is in the service log)"
                ),
                at_ms: now_ms(),
            });
        }
        let detail = format!(
            "unsealed: share set {} ({}-of-{}), KEK version {}, custodians {}",
            manifest.set_id,
            manifest.threshold,
            manifest.shares,
            self.kek_version,
            custodians.join(", ")
        );
        tracing::warn!(%detail, "vault unsealing");
        notes.push(AuditNote {
            actor: actor.clone(),
            outcome: Outcome::Success,
            detail,
            at_ms: now_ms(),
        });
        notes
    }
}
