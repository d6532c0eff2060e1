//! POST and GET /v1/reconciliation/runs, GET /v1/reconciliation/runs/{run_id},
//! GET /v1/reconciliation/discrepancies and POST
//! /v1/reconciliation/discrepancies/{discrepancy_id}/resolve: a channel's
//! statement of a date matched against the vault's payments, and the
//! queue of what did not match (`orchestration::reconcile`).

use super::extract::{invalid_query, QueryPairs};
use super::idempotency::Answer;
use super::mutation::{Input, JsonBody, Mutate, Mutation, Remembering};
use super::path_id::NoPath;
use super::problem::Problem;
use super::query::{Query, Read, Reading};
use super::{App, Caller};
use crate::domain::date::SettlementDate;
use crate::domain::ids::ChannelId;
use crate::domain::operation::Operation;
use crate::orchestration::reconcile::{
    Action, DiscrepancyId, DiscrepancyState, DiscrepancyView, Drift, Finding, ManualAction,
    QueuedDiscrepancy, RunId, RunView,
};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
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

/// A reconciliation run, with every discrepancy it found.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct RunResponse {
    #[serde(flatten)]
    pub run: RunSummaryResponse,
    pub discrepancies: Vec<DiscrepancyResponse>,
}

/// A reconciliation run, as a listing shows it.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct RunSummaryResponse {
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
    /// What a person may record; `carried_forward` and `superseded` are
    /// the runs' own.
    pub action: ManualAction,
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
            run: RunSummaryResponse::from(run),
            discrepancies: run.discrepancies.iter().map(DiscrepancyResponse::from).collect(),
        }
    }
}

impl From<&RunView> for RunSummaryResponse {
    fn from(run: &RunView) -> Self {
        RunSummaryResponse {
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
        let run = app
            .orchestrator
            .reconcile(&app.vault, &input.caller.actor, &channel, date)
            .await?;
        app.metrics.reconciled(run.channel.as_str(), &run.class_counts());
        Ok(run)
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

pub(super) struct ReadStatement;

impl Query for ReadStatement {
    const OPERATION: Operation = Operation::ReconciliationRead;
    type Path = RunId;
    type Answer = String;

    async fn read(input: Reading<'_, Self>) -> Result<String, Problem> {
        let app = input.app;
        Ok(app
            .orchestrator
            .reconciliation_statement(&app.vault, &input.caller.actor, &input.path)
            .await?)
    }
}

/// The statement file a run reconciled, exactly as the channel published it (its SHA-256 is the run's `digest`), opened from the sealed chunks the run kept. 404 for a run made before files were kept.
#[utoipa::path(get, path = "/v1/reconciliation/runs/{run_id}/statement", tag = "reconciliation", params(("run_id" = String, Path)),
    responses((status = 200, content_type = "text/csv", body = String), (status = 403, body = Problem), (status = 404, body = Problem), (status = 503, body = Problem)))]
pub async fn statement(request: Read<ReadStatement>) -> Result<Response, Problem> {
    let text = request.answer().await?;
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], text).into_response())
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
                request.action.into(),
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
/// why, once: a second resolution is `409 already-resolved`, and so is one
/// a run made itself (`carried_forward`, `superseded`, an automatic refund
/// or escalation). Recording moves no money: a refund or recovery is made
/// at the channel.
#[utoipa::path(post, path = "/v1/reconciliation/discrepancies/{discrepancy_id}/resolve", tag = "reconciliation",
    params(("discrepancy_id" = String, Path), ("Idempotency-Key" = String, Header)), request_body = ResolveRequest,
    responses((status = 200, body = DiscrepancyResponse), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn resolve(request: Mutate<ResolveDiscrepancy>) -> Result<Response, Problem> {
    request.run().await
}

/// Runs, newest date first.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct RunList {
    pub runs: Vec<RunSummaryResponse>,
}

/// A discrepancy in the queue, with the channel and date of its run.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct QueuedDiscrepancyResponse {
    pub channel: String,
    pub date: String,
    #[serde(flatten)]
    pub discrepancy: DiscrepancyResponse,
}

/// One page of the queue.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct DiscrepancyPage {
    pub discrepancies: Vec<QueuedDiscrepancyResponse>,
    /// Present when the page is full: pass it as `after` for the next.
    pub next_after: Option<String>,
}

/// `channel` as a channel id, if given.
fn channel_param(query: &QueryPairs) -> Result<Option<ChannelId>, Problem> {
    query
        .text("channel")
        .map(ChannelId::parse)
        .transpose()
        .map_err(|e| invalid_query("channel", "format", e.detail.to_owned()))
}

/// `date` as a settlement date, if given.
fn date_param(query: &QueryPairs) -> Result<Option<SettlementDate>, Problem> {
    query
        .text("date")
        .map(SettlementDate::parse)
        .transpose()
        .map_err(|e| invalid_query("date", "format", e.detail.to_owned()))
}

/// How far the run of a channel and date going on in this process is.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ProgressResponse {
    /// `false` when no run of the channel and date is going on here (none
    /// at all, or one on another node).
    pub running: bool,
    /// `fetching` (bytes of the file), `matching` (passes of the day) or
    /// `writing`.
    pub stage: Option<String>,
    pub done: u64,
    pub of: u64,
}

/// How far this node's run of `channel` and `date` is: what the CLI's progress bar follows. Counts only; like `/metrics` it is not audited unless refused.
#[utoipa::path(get, path = "/v1/reconciliation/progress", tag = "reconciliation",
    params(("channel" = String, Query, pattern = "^[A-Za-z0-9._-]{1,64}$", description = "The run's channel"),
        ("date" = String, Query, pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$", description = "The run's settlement date")),
    responses((status = 200, body = ProgressResponse), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub async fn progress(
    State(app): State<Arc<App>>,
    caller: Caller,
    query: QueryPairs,
) -> Result<Json<ProgressResponse>, Problem> {
    app.authorize(&caller, Operation::ReconciliationRead, None)
        .await?;
    query.only(&["channel", "date"])?;
    let required = |name: &str| invalid_query(name, "required", format!("{name} is required"));
    let channel = channel_param(&query)?.ok_or_else(|| required("channel"))?;
    let date = date_param(&query)?.ok_or_else(|| required("date"))?;
    let stage = app.orchestrator.reconcile_progress.of(&channel, date);
    let (done, of) = stage.map_or((0, 0), |s| s.counts());
    Ok(Json(ProgressResponse {
        running: stage.is_some(),
        stage: stage.map(|s| s.as_str().to_owned()),
        done,
        of,
    }))
}

/// Reconciliation runs, newest date first (a date's latest version first),
/// of one channel and one date where given.
#[utoipa::path(get, path = "/v1/reconciliation/runs", tag = "reconciliation",
    params(("channel" = Option<String>, Query, pattern = "^[A-Za-z0-9._-]{1,64}$", description = "Only this channel's runs"),
        ("date" = Option<String>, Query, pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$", description = "Only runs of this settlement date"),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 1000, description = "At most this many runs (default 100)")),
    responses((status = 200, body = RunList), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub async fn list(
    State(app): State<Arc<App>>,
    caller: Caller,
    query: QueryPairs,
) -> Result<Json<RunList>, Problem> {
    app.authorize(&caller, Operation::ReconciliationRead, None)
        .await?;
    query.only(&["channel", "date", "limit"])?;
    let channel = channel_param(&query)?;
    let date = date_param(&query)?;
    let limit = query.page_limit()?;
    let runs = app
        .orchestrator
        .reconciliation_runs(&app.vault, &caller.actor, channel.as_ref(), date, limit)
        .await?;
    Ok(Json(RunList {
        runs: runs.iter().map(RunSummaryResponse::from).collect(),
    }))
}

/// The queue: discrepancies still `open` (the default) or already
/// `resolved`, whichever run found them, in the order of their ids,
/// `limit` at a time after `after`.
#[utoipa::path(get, path = "/v1/reconciliation/discrepancies", tag = "reconciliation",
    params(("state" = Option<String>, Query, pattern = "^(open|resolved)$", description = "`open` (default) or `resolved`"),
        ("channel" = Option<String>, Query, pattern = "^[A-Za-z0-9._-]{1,64}$", description = "Only this channel's discrepancies"),
        ("after" = Option<String>, Query, pattern = "^rcn_[0-9a-f]{32}-[0-9]{1,9}$", description = "Discrepancies after this one (a page's `next_after`)"),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 1000, description = "At most this many (default 100)")),
    responses((status = 200, body = DiscrepancyPage), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub async fn queue(
    State(app): State<Arc<App>>,
    caller: Caller,
    query: QueryPairs,
) -> Result<Json<DiscrepancyPage>, Problem> {
    app.authorize(&caller, Operation::ReconciliationRead, None)
        .await?;
    query.only(&["state", "channel", "after", "limit"])?;
    let state = match query.text("state") {
        None | Some("open") => DiscrepancyState::Open,
        Some("resolved") => DiscrepancyState::Resolved,
        Some(_) => {
            return Err(invalid_query(
                "state",
                "one_of",
                "state is open or resolved".to_owned(),
            ));
        }
    };
    let channel = channel_param(&query)?;
    let after = query
        .text("after")
        .map(DiscrepancyId::parse)
        .transpose()
        .map_err(|e| invalid_query("after", "format", e.detail.to_owned()))?;
    let limit = query.page_limit()?;
    let found = app
        .orchestrator
        .reconciliation_discrepancies(
            &app.vault,
            &caller.actor,
            state,
            channel.as_ref(),
            after.as_ref(),
            limit,
        )
        .await?;
    let next_after = (found.len() == limit)
        .then(|| found.last().map(|q| q.discrepancy.id.to_string()))
        .flatten();
    Ok(Json(DiscrepancyPage {
        discrepancies: found.iter().map(QueuedDiscrepancyResponse::from).collect(),
        next_after,
    }))
}

impl From<&QueuedDiscrepancy> for QueuedDiscrepancyResponse {
    fn from(q: &QueuedDiscrepancy) -> Self {
        QueuedDiscrepancyResponse {
            channel: q.channel.as_str().to_owned(),
            date: q.date.clone(),
            discrepancy: DiscrepancyResponse::from(&q.discrepancy),
        }
    }
}

/// The ledger check: tokens and payments counted, and every drift found
/// (there should be none).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct LedgerResponse {
    pub tokens: u64,
    pub payments: u64,
    /// Payments whose token is gone with its erased card: counted, not checked.
    pub payments_without_token: u64,
    pub drift: Vec<DriftResponse>,
}

/// One disagreement; the fields that apply to its `kind` are present.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct DriftResponse {
    /// `token_usage` (a token's committed uses or amount differ from its
    /// payments'; retention deleting payments explains the token counting
    /// more), `refunds_exceed_capture` or `refund_of_unpaid`.
    pub kind: String,
    pub payment_id: Option<String>,
    pub binding_id: Option<String>,
    pub token_last4: Option<String>,
    pub token_uses: Option<u64>,
    pub payment_uses: Option<u64>,
    pub token_amount: Option<u64>,
    pub payment_amount: Option<u64>,
    pub captured: Option<u64>,
    pub refunds: Option<u64>,
    pub payment_status: Option<String>,
}

impl From<&Drift> for DriftResponse {
    fn from(d: &Drift) -> Self {
        let mut out = DriftResponse {
            kind: d.kind().to_owned(),
            payment_id: None,
            binding_id: None,
            token_last4: None,
            token_uses: None,
            payment_uses: None,
            token_amount: None,
            payment_amount: None,
            captured: None,
            refunds: None,
            payment_status: None,
        };
        match d {
            Drift::TokenUsage {
                binding,
                token_last4,
                token_uses,
                payment_uses,
                token_amount,
                payment_amount,
            } => {
                out.binding_id = binding.as_ref().map(|b| b.to_string());
                out.token_last4 = Some(token_last4.clone());
                out.token_uses = Some(*token_uses);
                out.payment_uses = Some(*payment_uses);
                out.token_amount = Some(*token_amount);
                out.payment_amount = Some(*payment_amount);
            }
            Drift::RefundsExceedCapture {
                payment,
                captured,
                refunds,
            } => {
                out.payment_id = Some(payment.to_string());
                out.captured = Some(*captured);
                out.refunds = Some(*refunds);
            }
            Drift::RefundOfUnpaid { payment, status } => {
                out.payment_id = Some(payment.to_string());
                out.payment_status = Some(status.as_str().to_owned());
            }
        }
        out
    }
}

/// The vault checks its own books: every token's committed uses and
/// amount against the payments that committed them, and every payment's
/// refunds against what it captured. Reads every token and payment.
#[utoipa::path(get, path = "/v1/reconciliation/ledger", tag = "reconciliation",
    responses((status = 200, body = LedgerResponse), (status = 403, body = Problem), (status = 503, body = Problem)))]
pub async fn ledger(State(app): State<Arc<App>>, caller: Caller) -> Result<Json<LedgerResponse>, Problem> {
    app.authorize(&caller, Operation::ReconciliationRead, None)
        .await?;
    let report = app.orchestrator.ledger_check(&app.vault, &caller.actor).await?;
    Ok(Json(LedgerResponse {
        tokens: report.tokens,
        payments: report.payments,
        payments_without_token: report.payments_without_token,
        drift: report.drift.iter().map(DriftResponse::from).collect(),
    }))
}
