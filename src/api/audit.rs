//! GET /v1/audit, /v1/audit/verify, /v1/audit/export (auditor identity)

use super::dto::{AuditPage, ChainBreak, VerifyResponse};
use super::extract::{invalid_query, QueryPairs};
use super::problem::Problem;
use super::{App, Caller};
use crate::domain::operation::Operation;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::Arc;

pub(super) const MAX_PAGE: usize = 1000;

/// `after` and `limit` of a page request, parsed.
struct PageQuery {
    after: u64,
    limit: usize,
}

impl PageQuery {
    fn parse(query: &QueryPairs) -> Result<Self, Problem> {
        query.only(&["after", "limit"])?;
        let after = query.number("after", 0u64)?;
        let limit = query.number("limit", 100usize)?;
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(invalid_query(
                "limit",
                "range",
                "limit must be 1 to 1000".to_owned(),
            ));
        }
        Ok(PageQuery { after, limit })
    }
}

/// Audit records in sequence order, `limit` (1-1000, default 100) at a time after `after`.
#[utoipa::path(get, path = "/v1/audit", tag = "audit",
    params(("after" = Option<u64>, Query, description = "Records after this sequence number (default 0)"),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 1000, description = "Records per page (default 100)")),
    responses((status = 200, body = AuditPage), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub async fn page(
    State(app): State<Arc<App>>,
    caller: Caller,
    query: QueryPairs,
) -> Result<Json<AuditPage>, Problem> {
    app.authorize(&caller, Operation::AuditRead, None).await?;
    let PageQuery { after, limit } = PageQuery::parse(&query)?;
    let records = app.vault.audit_page(&caller.actor, after, limit).await?;
    let next_after = (records.len() == limit)
        .then(|| records.last().map(|r| r.seq))
        .flatten();
    Ok(Json(AuditPage { records, next_after }))
}

/// Recomputes the whole chain and names the first broken or missing record.
#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit",
    responses((status = 200, body = VerifyResponse), (status = 403, body = Problem)))]
pub async fn verify(State(app): State<Arc<App>>, caller: Caller) -> Result<Json<VerifyResponse>, Problem> {
    app.authorize(&caller, Operation::AuditVerify, None).await?;
    let report = app.vault.audit_verify(&caller.actor).await?;
    Ok(Json(VerifyResponse {
        intact: report.first_break.is_none(),
        records: report.records,
        head_seq: report.head_seq,
        first_break: report.first_break.map(|b| ChainBreak {
            seq: b.seq,
            description: b.to_string(),
        }),
    }))
}

/// Every record as JSON lines (`application/x-ndjson`).
#[utoipa::path(get, path = "/v1/audit/export", tag = "audit",
    responses((status = 200, content_type = "application/x-ndjson", body = String), (status = 403, body = Problem)))]
pub async fn export(State(app): State<Arc<App>>, caller: Caller) -> Result<Response, Problem> {
    app.authorize(&caller, Operation::AuditExport, None).await?;
    let records = app.vault.audit_export(&caller.actor).await?;
    let mut body = Vec::new();
    for record in records {
        serde_json::to_writer(&mut body, &record).map_err(|_| Problem::internal())?;
        body.push(b'\n');
    }
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(response)
}
