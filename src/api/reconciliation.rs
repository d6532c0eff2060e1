//! POST /v1/reconciliation/runs, GET /v1/reconciliation/runs/{run_id}:
//! a channel's statement of a date matched against the vault's payments
//! (`orchestration::reconcile`).

use super::idempotency::Answer;
use super::mutation::{Input, JsonBody, Mutate, Mutation, Remembering};
use super::path_id::NoPath;
use super::problem::Problem;
use super::query::{Query, Read, Reading};
use crate::domain::date::SettlementDate;
use crate::domain::ids::ChannelId;
use crate::domain::operation::Operation;
use crate::orchestration::reconcile::{Action, DiscrepancyId, DiscrepancyView, Finding, RunId, RunView};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// A configured channel.
    pub channel: String,
    /// The settlement date, `YYYY-MM-DD` (Beijing time).
    pub date: String,
}

/// One statement line or vault success that did not match.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct DiscrepancyResponse {
    /// `<run id>-<n>`: what `/resolve` takes.
    pub discrepancy_id: String,
    /// `open`, or `resolved` once `resolution` says what was done.
    pub state: String,
    pub resolution: Option<ResolutionResponse>,
    /// `channel_only` (长款), `vault_only` (短款), `amount_mismatch`,
    /// `status_mismatch` or `duplicate`.
    pub class: String,
    /// The order id the vault sent (its payment id).
    pub order_id: String,
    /// The refund id, for a refund or revoke; absent for a payment.
    pub refund_id: Option<String>,
    pub channel_amount: Option<u64>,
    pub vault_amount: Option<u64>,
}

/// A reconciliation run.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct RunResponse {
    pub run_id: String,
    pub channel: String,
    pub date: String,
    /// 1 for a date's first run; each run again is the next.
    pub version: u32,
    /// SHA-256 of the statement file, as published and checked.
    pub digest: String,
    pub lines: u64,
    /// How many lines or vault successes ended in each class (`matched` included).
    pub counts: std::collections::BTreeMap<String, u64>,
    /// What the statement says was paid and refunded, in fen.
    pub paid: u64,
    pub refunded: u64,
    pub discrepancies: Vec<DiscrepancyResponse>,
    pub created_at: i64,
    pub created_by: String,
}

/// What was done about a discrepancy.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ResolutionResponse {
    pub action: Action,
    pub reason: String,
    pub by: String,
    pub at: i64,
}

/// How a discrepancy was dealt with.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    pub action: Action,
    /// Why: 8 to 200 characters, one line, no card, ID or phone number. Audited.
    pub reason: String,
}

impl From<&DiscrepancyView> for DiscrepancyResponse {
    fn from(d: &DiscrepancyView) -> Self {
        let f: &Finding = &d.finding;
        DiscrepancyResponse {
            discrepancy_id: d.id.to_string(),
            state: if d.resolution.is_some() {
                "resolved"
            } else {
                "open"
            }
            .to_owned(),
            resolution: d.resolution.as_ref().map(|r| ResolutionResponse {
                action: r.action,
                reason: r.reason.clone(),
                by: r.by.clone(),
                at: r.at.seconds(),
            }),
            class: f.class.as_str().to_owned(),
            order_id: f.key.order_id.clone(),
            refund_id: (!f.key.refund_id.is_empty()).then(|| f.key.refund_id.clone()),
            channel_amount: f.channel_amount,
            vault_amount: f.vault_amount,
        }
    }
}

impl From<&RunView> for RunResponse {
    fn from(run: &RunView) -> Self {
        RunResponse {
            run_id: run.id.to_string(),
            channel: run.channel.as_str().to_owned(),
            date: run.date.clone(),
            version: run.version,
            digest: run.digest.clone(),
            lines: run.lines,
            counts: run
                .counts
                .iter()
                .map(|(class, n)| (class.as_str().to_owned(), *n))
                .collect(),
            paid: run.totals.paid,
            refunded: run.totals.refunded,
            discrepancies: run.discrepancies.iter().map(DiscrepancyResponse::from).collect(),
            created_at: run.created_at.seconds(),
            created_by: run.created_by.clone(),
        }
    }
}

pub(super) struct RunReconciliation;

impl Mutation for RunReconciliation {
    const OPERATION: Operation = Operation::ReconciliationRun;
    type Path = NoPath;
    type Body = JsonBody<RunRequest>;
    type Done = RunView;

    async fn apply(input: Input<'_, Self>, _record: &Remembering<Self>) -> Result<RunView, Problem> {
        let JsonBody(request) = &input.body;
        let channel = input.field("channel", ChannelId::parse(&request.channel)).await?;
        let date = input.field("date", SettlementDate::parse(&request.date)).await?;
        let app = input.app;
        Ok(app
            .orchestrator
            .reconcile(&app.vault, &input.caller.actor, &channel, date)
            .await?)
    }

    fn answer(run: &RunView) -> Result<Answer, Problem> {
        Answer::json(StatusCode::CREATED, &RunResponse::from(run))
    }
}

/// Reconciles a channel's statement of a settlement date: the file is
/// fetched from the channel, its digest and summary checked (a truncated
/// or altered file is `422 statement-refused`, nothing kept), and every
/// line and every vault success of the date classed. Running a date again
/// makes its next version.
#[utoipa::path(post, path = "/v1/reconciliation/runs", tag = "reconciliation",
    params(("Idempotency-Key" = String, Header)), request_body = RunRequest,
    responses((status = 201, body = RunResponse), (status = 403, body = Problem), (status = 422, body = Problem), (status = 503, body = Problem)))]
pub async fn run(request: Mutate<RunReconciliation>) -> Result<Response, Problem> {
    request.run().await
}

pub(super) struct ReadRun;

impl Query for ReadRun {
    const OPERATION: Operation = Operation::ReconciliationRead;
    type Path = RunId;
    type Answer = RunResponse;

    async fn read(input: Reading<'_, Self>) -> Result<RunResponse, Problem> {
        let app = input.app;
        let run = app
            .orchestrator
            .reconciliation_run(&app.vault, &input.caller.actor, &input.path)
            .await?;
        Ok(RunResponse::from(&run))
    }
}

/// One reconciliation run, with every discrepancy it found.
#[utoipa::path(get, path = "/v1/reconciliation/runs/{run_id}", tag = "reconciliation", params(("run_id" = String, Path)),
    responses((status = 200, body = RunResponse), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn read(request: Read<ReadRun>) -> Result<Json<RunResponse>, Problem> {
    request.run().await
}

pub(super) struct ResolveDiscrepancy;

impl Mutation for ResolveDiscrepancy {
    const OPERATION: Operation = Operation::ReconciliationResolve;
    type Path = DiscrepancyId;
    type Body = JsonBody<ResolveRequest>;
    type Done = DiscrepancyView;

    async fn apply(input: Input<'_, Self>, _record: &Remembering<Self>) -> Result<DiscrepancyView, Problem> {
        let JsonBody(request) = &input.body;
        let app = input.app;
        Ok(app
            .orchestrator
            .resolve_discrepancy(
                &app.vault,
                &input.caller.actor,
                &input.path,
                request.action,
                &request.reason,
            )
            .await?)
    }

    fn answer(resolved: &DiscrepancyView) -> Result<Answer, Problem> {
        Answer::json(StatusCode::OK, &DiscrepancyResponse::from(resolved))
    }
}

/// Records what was done about a discrepancy (`acknowledged`,
/// `refunded_at_channel`, `recovery_requested`, `accepted_as_paid`) and
/// why, once: a second resolution is `409 already-resolved`. Recording
/// moves no money: a refund or recovery is made at the channel.
#[utoipa::path(post, path = "/v1/reconciliation/discrepancies/{discrepancy_id}/resolve", tag = "reconciliation",
    params(("discrepancy_id" = String, Path), ("Idempotency-Key" = String, Header)), request_body = ResolveRequest,
    responses((status = 200, body = DiscrepancyResponse), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn resolve(request: Mutate<ResolveDiscrepancy>) -> Result<Response, Problem> {
    request.run().await
}
