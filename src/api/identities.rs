//! POST /v1/identities, GET /v1/identities/{identity_ref}

use super::dto::{IdentityResponse, StoreIdentityRequest};
use super::extract::{Body, Param};
use super::idempotency::{self, Answer};
use super::problem::Problem;
use super::{App, Caller};
use crate::domain::operation::Operation;
use crate::domain::refs::IdentityRef;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use std::sync::Arc;

/// Store a real name, resident ID number and reserved phone, encrypted.
#[utoipa::path(post, path = "/v1/identities", tag = "identities",
    params(("Idempotency-Key" = String, Header, description = "Required; replays the first answer")),
    request_body = StoreIdentityRequest,
    responses((status = 201, body = IdentityResponse), (status = 400, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn store(
    State(app): State<Arc<App>>,
    caller: Caller,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, Problem> {
    app.authorize(&caller, Operation::IdentityStore, None).await?;
    let key = idempotency::key(&headers)?;
    app.idempotent(
        &caller.actor.identity,
        &key,
        "POST",
        "/v1/identities",
        &body,
        || async {
            let r: StoreIdentityRequest = app
                .parse_body(&caller, Operation::IdentityStore, &headers, &body)
                .await?;
            let stored = app
                .vault
                .store_identity(&caller.actor, &r.name, &r.id_number, &r.phone)
                .await?;
            Answer::json(StatusCode::CREATED, &IdentityResponse::from(stored))
        },
    )
    .await
}

/// Masked identity data.
#[utoipa::path(get, path = "/v1/identities/{identity_ref}", tag = "identities",
    params(("identity_ref" = String, Path)),
    responses((status = 200, body = IdentityResponse), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn read(
    State(app): State<Arc<App>>,
    caller: Caller,
    Param(reference): Param,
) -> Result<Json<IdentityResponse>, Problem> {
    app.authorize(
        &caller,
        Operation::IdentityRead,
        Some(app.object(&reference, IdentityRef::parse)),
    )
    .await?;
    let identity_ref = IdentityRef::parse(&reference).map_err(|e| {
        Problem::from(crate::vault::VaultError::Invalid(e)).with_field("identity_ref", "format")
    })?;
    Ok(Json(IdentityResponse::from(
        app.vault.identity(&caller.actor, &identity_ref).await?,
    )))
}
