//! POST /v1/cards/{card_ref}/reveal-requests, POST
//! /v1/reveal-requests/{request_id}/approve: the two identities of dual
//! control over a break-glass reveal (`vault::reveal_approval`).

use super::dto::{RevealRequestBody, RevealRequestResponse};
use super::idempotency::Answer;
use super::mutation::{Input, JsonBody, Mutate, Mutation, NoBody, Remembering};
use super::problem::Problem;
use crate::domain::operation::Operation;
use crate::domain::refs::{CardRef, RevealRequestId};
use crate::vault::RevealRequestView;
use axum::http::StatusCode;
use axum::response::Response;

pub(super) struct RequestReveal;

impl Mutation for RequestReveal {
    const OPERATION: Operation = Operation::CardRevealRequest;
    type Path = CardRef;
    type Body = JsonBody<RevealRequestBody>;
    type Done = RevealRequestView;

    async fn apply(
        input: Input<'_, Self>,
        _record: &Remembering<Self>,
    ) -> Result<RevealRequestView, Problem> {
        let app = input.app;
        let card_ref = input.path;
        let grant = app
            .grant_reveal(
                input.caller,
                Operation::CardRevealRequest,
                app.vault.audit_object(&card_ref),
            )
            .await?;
        let JsonBody(body) = input.body;
        Ok(app.vault.request_reveal(&grant, &card_ref, &body.reason).await?)
    }

    fn answer(request: &RevealRequestView) -> Result<Answer, Problem> {
        Answer::json(StatusCode::CREATED, &RevealRequestResponse::from(request.clone()))
    }
}

/// Dual control, first half: the break-glass identity asks to reveal a
/// card's PAN, with its reason. A different identity granted
/// `reveal.approve` approves it within `limits.reveal_approval_window_s`;
/// then the requester reveals once with the request's id.
#[utoipa::path(post, path = "/v1/cards/{card_ref}/reveal-requests", tag = "cards",
    params(("card_ref" = String, Path), ("Idempotency-Key" = String, Header)), request_body = RevealRequestBody,
    responses((status = 201, body = RevealRequestResponse), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn request(request: Mutate<RequestReveal>) -> Result<Response, Problem> {
    request.run().await
}

pub(super) struct ApproveReveal;

impl Mutation for ApproveReveal {
    const OPERATION: Operation = Operation::RevealApprove;
    type Path = RevealRequestId;
    type Body = NoBody;
    type Done = RevealRequestView;

    async fn apply(
        input: Input<'_, Self>,
        _record: &Remembering<Self>,
    ) -> Result<RevealRequestView, Problem> {
        let app = input.app;
        let id = input.path;
        let grant = app
            .grant_approval(input.caller, app.vault.audit_object(&id))
            .await?;
        Ok(app.vault.approve_reveal(&grant, &id).await?)
    }

    fn answer(request: &RevealRequestView) -> Result<Answer, Problem> {
        Answer::json(StatusCode::OK, &RevealRequestResponse::from(request.clone()))
    }
}

/// Dual control, second half: a different identity than the requester,
/// granted `reveal.approve`, approves a pending reveal request within the
/// window. Refused `409` for the requester themself (`self_approval`), a
/// request another identity approved, or one past its window.
#[utoipa::path(post, path = "/v1/reveal-requests/{request_id}/approve", tag = "cards",
    params(("request_id" = String, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = RevealRequestResponse), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn approve(request: Mutate<ApproveReveal>) -> Result<Response, Problem> {
    request.run().await
}
