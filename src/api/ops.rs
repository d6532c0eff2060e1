//! Health, readiness, metrics, the OpenAPI document, and reload.

use super::dto::StatusResponse;
use super::idempotency::Answer;
use super::metrics::{self, KeyVersionGauge, RewrapGauge, Snapshot};
use super::mutation::{Input, Mutate, Mutation, NoBody, Remembering};
use super::path_id::NoPath;
use super::problem::Problem;
use super::{App, Caller};
use crate::domain::operation::Operation;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::Arc;

/// Alive. Any valid client certificate may ask; says nothing else.
#[utoipa::path(get, path = "/health", tag = "operations", responses((status = 200, body = StatusResponse)))]
pub async fn health() -> Json<StatusResponse> {
    Json(StatusResponse {
        status: "ok".to_owned(),
    })
}

/// Ready to serve: the store answers.
#[utoipa::path(get, path = "/ready", tag = "operations", responses((status = 200, body = StatusResponse), (status = 503, body = Problem)))]
pub async fn ready(State(app): State<Arc<App>>) -> Result<Json<StatusResponse>, Problem> {
    app.vault.ping().await.map_err(|_| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not-ready",
            "Not ready",
            "the store does not answer or does not take writes",
        )
        .retry_after(5)
    })?;
    Ok(Json(StatusResponse {
        status: "ready".to_owned(),
    }))
}

/// OpenMetrics text format (monitor identity).
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, content_type = "application/openmetrics-text", body = String), (status = 403, body = Problem)))]
pub async fn metrics(State(app): State<Arc<App>>, caller: Caller) -> Result<Response, Problem> {
    app.authorize(&caller, Operation::MetricsRead, None).await?;
    let now = crate::domain::time::Timestamp::now().seconds();
    let rewrap = app.vault.rewrap_progress().await?.map(|job| RewrapGauge {
        running: job.finished_at.is_none(),
        scanned: job.scanned,
        rewrapped: job.rewrapped,
        total: job.total,
    });
    let tally = app.vault.audit_tally();
    let snapshot = Snapshot {
        crl_next_update: app.tls.crl_next_update(),
        kek_version: app.vault.kek_version(),
        key_versions: app
            .vault
            .key_versions()
            .into_iter()
            .map(|k| KeyVersionGauge {
                version: k.version,
                encryptions: k.encryptions,
                budget: k.budget,
                age_s: u64::try_from(now - k.created_at.seconds()).unwrap_or(0),
            })
            .collect(),
        rewrap,
        channels: app
            .orchestrator
            .routing
            .health_of(app.orchestrator.gateway.channel_ids())
            .into_iter()
            .map(|h| (h.channel, h.up))
            .collect(),
        held_card_verifications: app.orchestrator.gateway.held_verifications(),
        audit_head_seq: tally.head_seq(),
        audited: tally.outcomes(),
        kek_age: app.kek_age().await?,
        ..Snapshot::default()
    };
    Ok(metrics::response(app.metrics.render(snapshot)))
}

/// This document.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "operations", responses((status = 200, content_type = "application/json", body = Object, description = "The OpenAPI 3.1 document (a JSON object)"), (status = 403, body = Problem)))]
pub async fn openapi(State(app): State<Arc<App>>, caller: Caller) -> Result<Response, Problem> {
    app.authorize(&caller, Operation::OpenApiRead, None).await?;
    // The document is fixed for the process: built on first use, not per request.
    static SERVED: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let body = SERVED
        .get_or_init(|| super::document().to_pretty_json().ok())
        .clone()
        .ok_or_else(Problem::internal)?;
    let mut response = (StatusCode::OK, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

pub(super) struct Reload;

impl Mutation for Reload {
    const OPERATION: Operation = Operation::AdminReload;
    type Path = NoPath;
    type Body = NoBody;
    type Done = ();

    async fn apply(input: Input<'_, Self>, _record: &Remembering<Self>) -> Result<(), Problem> {
        match input.app.reload_audited(&input.caller.actor).await {
            Ok(()) => Ok(()),
            Err(super::ReloadError::Files(reason)) => Err(Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "reload-failed",
                "Reload failed",
                reason,
            )),
            Err(super::ReloadError::Unrecorded(e)) => Err(e.into()),
        }
    }

    fn answer(_done: &()) -> Result<Answer, Problem> {
        Answer::json(
            StatusCode::OK,
            &StatusResponse {
                status: "reloaded".to_owned(),
            },
        )
    }
}

/// Re-reads the server certificate, CA, CRL and policies (as SIGHUP does),
/// and closes open connections whose client certificate is now revoked or
/// no longer trusted.
#[utoipa::path(post, path = "/v1/admin/reload", tag = "operations",
    params(("Idempotency-Key" = String, Header)),
    responses((status = 200, body = StatusResponse), (status = 403, body = Problem), (status = 500, body = Problem)))]
pub async fn reload(request: Mutate<Reload>) -> Result<Response, Problem> {
    request.run().await
}
