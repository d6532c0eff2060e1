//! GET /v1/audit, /v1/audit/verify, /v1/audit/export (auditor identity),
//! POST /v1/audit/anchors (a signed checkpoint on demand)

use super::dto::{AuditPage, ChainBreak, ChainReport, VerifyResponse};
use super::extract::{invalid_query, QueryPairs};
use super::idempotency::Answer;
use super::mutation::{Input, Mutate, Mutation, NoBody, Remembering};
use super::path_id::NoPath;
use super::problem::Problem;
use super::{App, Caller};
use crate::audit::anchor::SignedAnchor;
use crate::audit::{Break, ChainName};
use crate::domain::node::NodeName;
use crate::domain::operation::Operation;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::Arc;

/// `node`, `after` and `limit` of a page request, parsed.
struct PageQuery {
    chain: ChainName,
    after: u64,
    limit: usize,
}

impl PageQuery {
    fn parse(query: &QueryPairs) -> Result<Self, Problem> {
        query.only(&["node", "after", "limit"])?;
        let node = query
            .text("node")
            .map(NodeName::parse)
            .transpose()
            .map_err(|e| invalid_query("node", "format", e.to_string()))?;
        let after = query.number("after", 0u64)?;
        let limit = query.page_limit()?;
        Ok(PageQuery {
            chain: ChainName::of(node),
            after,
            limit,
        })
    }
}

/// One chain's audit records in sequence order, `limit` (1-1000, default 100) at a time after `after`.
#[utoipa::path(get, path = "/v1/audit", tag = "audit",
    params(("node" = Option<String>, Query, pattern = "^[a-z][a-z0-9-]{0,31}$", description = "The named node whose chain to read; absent: the unnamed chain (a single node's)"),
        ("after" = Option<u64>, Query, description = "Records after this sequence number (default 0)"),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 1000, description = "Records per page (default 100)")),
    responses((status = 200, body = AuditPage), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub async fn page(
    State(app): State<Arc<App>>,
    caller: Caller,
    query: QueryPairs,
) -> Result<Json<AuditPage>, Problem> {
    app.authorize(&caller, Operation::AuditRead, None).await?;
    let PageQuery { chain, after, limit } = PageQuery::parse(&query)?;
    let records = app.vault.audit_page(&caller.actor, &chain, after, limit).await?;
    let next_after = (records.len() == limit)
        .then(|| records.last().map(|r| r.seq))
        .flatten();
    Ok(Json(AuditPage { records, next_after }))
}

/// Recomputes every node's chain, checks the checkpoints that tie them, and names each chain's first broken or missing record.
#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit",
    responses((status = 200, body = VerifyResponse), (status = 403, body = Problem)))]
pub async fn verify(State(app): State<Arc<App>>, caller: Caller) -> Result<Json<VerifyResponse>, Problem> {
    app.authorize(&caller, Operation::AuditVerify, None).await?;
    let report = app.vault.audit_verify(&caller.actor).await?;
    let chain_break = |chain: &ChainName, b: &Break| ChainBreak {
        seq: b.seq,
        description: if chain.node().is_some() {
            format!("{b} in {chain}")
        } else {
            b.to_string()
        },
    };
    let chains = report
        .chains
        .iter()
        .map(|(chain, r)| ChainReport {
            node: chain.node().map(|n| n.to_string()),
            records: r.records,
            head_seq: r.head_seq,
            first_break: r.first_break.as_ref().map(|b| chain_break(chain, b)),
        })
        .collect();
    Ok(Json(VerifyResponse {
        intact: report.intact(),
        records: report.records(),
        head_seq: report.chains.get(&ChainName::UNNAMED).map_or(0, |r| r.head_seq),
        first_break: report.first_break().map(|(chain, b)| chain_break(chain, b)),
        chains,
    }))
}

/// Every record of every chain as JSON lines (`application/x-ndjson`), chain by chain, each in sequence order; a named node's records carry `node`.
#[utoipa::path(get, path = "/v1/audit/export", tag = "audit",
    responses((status = 200, content_type = "application/x-ndjson", body = String), (status = 403, body = Problem)))]
pub async fn export(State(app): State<Arc<App>>, caller: Caller) -> Result<Response, Problem> {
    app.authorize(&caller, Operation::AuditExport, None).await?;
    let records = app.vault.audit_export(&caller.actor).await?;
    let mut body = Vec::new();
    for record in &records {
        serde_json::to_writer(&mut body, &record.export_line()).map_err(|_| Problem::internal())?;
        body.push(b'\n');
    }
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(response)
}

pub(super) struct SignAnchor;

impl Mutation for SignAnchor {
    const OPERATION: Operation = Operation::AuditAnchor;
    type Path = NoPath;
    type Body = NoBody;
    type Done = SignedAnchor;

    async fn apply(input: Input<'_, Self>, _record: &Remembering<Self>) -> Result<SignedAnchor, Problem> {
        Ok(input.app.vault.audit_anchor(&input.caller.actor).await?)
    }

    fn answer(anchor: &SignedAnchor) -> Result<Answer, Problem> {
        Answer::json(StatusCode::CREATED, anchor)
    }
}

/// Signs every chain's head now (a signed checkpoint, Ed25519) and answers it, for keeping off the host: `tokenvault audit verify --checkpoint FILE` then finds a trail cut back past it, heads rewound and all. `public_key` is the key to pin (`tokenvault audit anchor-key` prints it as PEM). A retry with the same Idempotency-Key answers the same anchor.
#[utoipa::path(post, path = "/v1/audit/anchors", tag = "audit",
    params(("Idempotency-Key" = String, Header)),
    responses((status = 201, body = SignedAnchor), (status = 403, body = Problem)))]
pub(super) async fn anchor(request: Mutate<SignAnchor>) -> Result<Response, Problem> {
    request.run().await
}
