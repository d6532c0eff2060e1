//! The HTTP API: JSON under `/v1`, problem+json errors, an identity from the
//! client certificate checked against policy on every call, idempotent
//! mutations, and an OpenAPI document generated from these handlers.

mod access;
mod audit;
mod bindings;
mod body_routes;
mod caller;
mod cards;
mod channels;
mod client_cert_metrics;
pub mod dto;
mod extract;
mod flow_dto;
mod flow_problem;
mod idempotency;
mod idempotency_sweep;
mod identities;
pub(crate) mod json;
pub(crate) mod keys;
pub mod metrics;
mod mutation;
mod openapi;
mod ops;
mod passwords;
mod path_id;
mod payment_dto;
mod payments;
pub mod problem;
mod query;
pub(crate) mod rate_limit;
mod reconciliation;
mod reveal_requests;
mod routes;
mod tokens;

pub use caller::{Caller, Peer, RequestId};
pub use metrics::Metrics;
pub use openapi::{document, ApiDoc};
pub use ops::health;

use crate::domain::amount::AmountCeiling;
use crate::orchestration::Orchestrator;
use crate::policy::PolicySet;
use crate::store::Backend;
use crate::stripes::Stripes;
use crate::tls::ReloadableTls;
use crate::vault::Vault;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use problem::Problem;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

pub use access::{logged, with_request_id, REQUEST_ID_HEADER};

/// Everything the handlers share.
pub struct App {
    pub vault: Vault<Backend>,
    pub orchestrator: Orchestrator,
    policies: RwLock<Arc<PolicySet>>,
    pub policies_dir: PathBuf,
    pub tls: Arc<ReloadableTls>,
    pub metrics: Arc<Metrics>,
    idempotency_locks: Stripes,
    pub body_limit: usize,
    pub request_timeout: Duration,
    /// The largest amount or amount limit a caller may send.
    pub amount_ceiling: AmountCeiling,
    /// How long a remembered answer replays (`idempotency`).
    pub idempotency_ttl: Duration,
    /// The KEK's cryptoperiod (`kek.cryptoperiod_s`).
    pub kek_cryptoperiod: Duration,
    /// How the KEK is held; KEK rotation needs share custody.
    pub custody: crate::config::KekCustody,
    /// Shares of the next KEK, while a KEK rotation collects them.
    kek_rotation: tokio::sync::Mutex<Option<crate::vault::keys::custody::ShareCollector>>,
}

impl App {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        vault: Vault<Backend>,
        orchestrator: Orchestrator,
        policies: PolicySet,
        policies_dir: PathBuf,
        tls: Arc<ReloadableTls>,
        body_limit: usize,
        request_timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        App {
            vault,
            orchestrator,
            policies: RwLock::new(Arc::new(policies)),
            policies_dir,
            tls,
            metrics,
            idempotency_locks: Stripes::new(),
            body_limit,
            request_timeout,
            amount_ceiling: AmountCeiling::MAX,
            idempotency_ttl: Duration::from_secs(86_400),
            kek_cryptoperiod: Duration::from_secs(crate::config::DEFAULT_KEK_CRYPTOPERIOD_S),
            custody: crate::config::KekCustody::DevFile,
            kek_rotation: tokio::sync::Mutex::new(None),
        }
    }

    pub fn with_amount_ceiling(mut self, ceiling: AmountCeiling) -> Self {
        self.amount_ceiling = ceiling;
        self
    }

    pub fn with_kek_cryptoperiod(mut self, period: Duration) -> Self {
        self.kek_cryptoperiod = period;
        self
    }

    /// The KEK's age and cryptoperiod in seconds, under share custody.
    pub async fn kek_age(&self) -> Result<Option<(u64, u64)>, crate::vault::VaultError> {
        let now = crate::domain::time::Timestamp::now().seconds();
        Ok(self.vault.kek_in_service_since().await?.map(|since| {
            (
                u64::try_from(now - since.seconds()).unwrap_or(0),
                self.kek_cryptoperiod.as_secs(),
            )
        }))
    }

    pub fn with_idempotency_ttl(mut self, ttl: Duration) -> Self {
        self.idempotency_ttl = ttl;
        self
    }

    pub fn with_custody(mut self, custody: crate::config::KekCustody) -> Self {
        self.custody = custody;
        self
    }

    pub fn policies(&self) -> Arc<PolicySet> {
        Arc::clone(&self.policies.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Re-reads certificates, CRL and policies (SIGHUP and
    /// `POST /v1/admin/reload` alike). The files are read and checked
    /// first; the record of the reload is written next; only then does
    /// anything change. No record, no change: if the trail cannot take the
    /// record, the previous configuration stays (fails closed).
    pub async fn reload_audited(&self, actor: &crate::audit::Actor) -> Result<(), ReloadError> {
        use crate::audit::Outcome;
        use crate::domain::operation::Operation;
        let prepared = PolicySet::load_dir(&self.policies_dir)
            .map_err(|e| e.to_string())
            .and_then(|policies| Ok((policies, self.tls.prepare().map_err(|e| e.to_string())?)));
        let (policies, tls) = match prepared {
            Ok(prepared) => prepared,
            Err(reason) => {
                tracing::error!(%reason, "reload failed; keeping the previous configuration");
                self.vault
                    .record_admin(
                        actor,
                        Operation::AdminReload,
                        Outcome::Error,
                        "reload failed; previous configuration kept",
                    )
                    .await?;
                return Err(ReloadError::Files(reason));
            }
        };
        self.vault
            .record_admin(
                actor,
                Operation::AdminReload,
                Outcome::Success,
                "tls, crl and policies reloaded",
            )
            .await?;
        self.tls.apply(tls);
        *self.policies.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(policies);
        tracing::info!(identity = %actor.identity, "reloaded certificates, CRL and policies");
        Ok(())
    }
}

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    /// A file is missing or wrong (recorded).
    #[error("{0}")]
    Files(String),
    /// The trail could not take the reload's record.
    #[error("the reload could not be recorded in the audit trail: {0}")]
    Unrecorded(#[from] crate::vault::VaultError),
}

pub fn router(app: Arc<App>) -> Router {
    let body_limit = app.body_limit;
    let (router, document) = routes::table().split_for_parts();
    let bodies = Arc::new(body_routes::BodyRoutes::from_document(&document));
    let router = router
        .fallback(|| async { Problem::not_found("route") })
        .method_not_allowed_fallback(|| async {
            Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
                "this route does not take that method",
            )
        })
        .layer(middleware::from_fn_with_state(
            bodies,
            body_routes::refuse_unexpected_body,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(Arc::clone(&app), observe));
    access::logged(router).with_state(app)
}

/// Request id into the extensions, time limit and metrics around every
/// request (the id itself comes from `access::logged`).
async fn observe(State(app): State<Arc<App>>, mut request: Request, next: Next) -> Response {
    let request_id = access::request_id(&request);
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_owned();
    request.extensions_mut().insert(RequestId(request_id));
    let started = Instant::now();
    let response = match tokio::time::timeout(app.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "Timed out",
            "the request took longer than the configured limit",
        )
        .retry_after(1)
        .into_response(),
    };
    app.metrics
        .request(&route, response.status().as_u16(), started.elapsed());
    response
}
