//! POST /v1/identities, GET /v1/identities/{identity_ref}

use super::dto::{ErasedIdentityResponse, IdentityResponse, StoreIdentityRequest};
use super::idempotency::Answer;
use super::mutation::{Input, JsonBody, Mutate, Mutation, NoBody, Remembering};
use super::path_id::NoPath;
use super::problem::Problem;
use super::query::{Query, Read, Reading};
use crate::domain::operation::Operation;
use crate::domain::refs::IdentityRef;
use crate::vault::StoredIdentity;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;

pub(super) struct StoreIdentity;

impl Mutation for StoreIdentity {
    const OPERATION: Operation = Operation::IdentityStore;
    type Path = NoPath;
    type Body = JsonBody<StoreIdentityRequest>;
    type Done = StoredIdentity;

    async fn apply(input: Input<'_, Self>, record: &Remembering<Self>) -> Result<StoredIdentity, Problem> {
        let JsonBody(r) = &input.body;
        Ok(input
            .app
            .vault
            .store_identity_joined(&input.caller.actor, &r.name, &r.id_number, &r.phone, record)
            .await?)
    }

    fn answer(stored: &StoredIdentity) -> Result<Answer, Problem> {
        Answer::json(StatusCode::CREATED, &IdentityResponse::from(stored.clone()))
    }
}

/// Store a real name, resident ID number and reserved phone, encrypted.
#[utoipa::path(post, path = "/v1/identities", tag = "identities",
    params(("Idempotency-Key" = String, Header, description = "Required; replays the first answer")),
    request_body = StoreIdentityRequest,
    responses((status = 201, body = IdentityResponse), (status = 400, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn store(request: Mutate<StoreIdentity>) -> Result<Response, Problem> {
    request.run().await
}

/// Masked identity data.
#[utoipa::path(get, path = "/v1/identities/{identity_ref}", tag = "identities",
    params(("identity_ref" = String, Path)),
    responses((status = 200, body = IdentityResponse), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn read(request: Read<ReadIdentity>) -> Result<Json<IdentityResponse>, Problem> {
    request.run().await
}

pub(super) struct ReadIdentity;

impl Query for ReadIdentity {
    const OPERATION: Operation = Operation::IdentityRead;
    type Path = IdentityRef;
    type Answer = IdentityResponse;

    async fn read(input: Reading<'_, Self>) -> Result<IdentityResponse, Problem> {
        let identity = input.app.vault.identity(&input.caller.actor, &input.path).await?;
        Ok(IdentityResponse::from(identity))
    }
}

pub(super) struct EraseIdentity;

impl Mutation for EraseIdentity {
    const OPERATION: Operation = Operation::IdentityErase;
    type Path = IdentityRef;
    type Body = NoBody;
    type Done = IdentityRef;

    async fn apply(input: Input<'_, Self>, _record: &Remembering<Self>) -> Result<IdentityRef, Problem> {
        input
            .app
            .vault
            .erase_identity(&input.caller.actor, &input.path)
            .await?;
        Ok(input.path)
    }

    fn answer(erased: &IdentityRef) -> Result<Answer, Problem> {
        Answer::json(
            StatusCode::OK,
            &ErasedIdentityResponse {
                identity_ref: erased.to_string(),
            },
        )
    }
}

/// Erases an identity's record: name, resident ID number and phone (PIPL deletion), audited. A binding to start or a payment password to change against it afterwards finds it gone (404). Old bytes the store's files keep die with their data-key version, as for cards (SECURITY.md, "Erasure"). A retry with the same Idempotency-Key answers the first erasure.
#[utoipa::path(delete, path = "/v1/identities/{identity_ref}", tag = "identities",
    params(("identity_ref" = String, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = ErasedIdentityResponse), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn erase(request: Mutate<EraseIdentity>) -> Result<Response, Problem> {
    request.run().await
}
