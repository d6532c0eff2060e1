//! POST /v1/tokens, GET /v1/tokens/{token}, POST …/suspend, …/resume,
//! …/delete, GET /v1/cards/{card_ref}/tokens

use super::dto::{IssueTokenRequest, TokenListResponse, TokenResponse};
use super::idempotency::Answer;
use super::mutation::{Input, JsonBody, Mutate, Mutation, NoBody, Remembering};
use super::path_id::NoPath;
use super::problem::Problem;
use super::query::{Query, Read, Reading};
use crate::domain::operation::Operation;
use crate::domain::refs::CardRef;
use crate::domain::time::Timestamp;
use crate::vault::token::{TokenNumber, TokenStatus};
use crate::vault::TokenView;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;

pub(super) struct IssueToken;

impl Mutation for IssueToken {
    const OPERATION: Operation = Operation::TokenIssue;
    type Path = NoPath;
    type Body = JsonBody<IssueTokenRequest>;
    type Done = TokenView;

    async fn apply(input: Input<'_, Self>, record: &Remembering<Self>) -> Result<TokenView, Problem> {
        let JsonBody(request) = &input.body;
        let card = input.field("card_ref", CardRef::parse(&request.card_ref)).await?;
        let controls = match request.controls.parse(input.app.amount_ceiling) {
            Ok(controls) => controls,
            Err((field, error)) => return Err(input.refuse(&field, error).await),
        };
        Ok(input
            .app
            .vault
            .issue_token_joined(&input.caller.actor, &card, controls, Timestamp::now(), record)
            .await?)
    }

    fn answer(token: &TokenView) -> Result<Answer, Problem> {
        Answer::json(StatusCode::CREATED, &TokenResponse::from(token.clone()))
    }
}

/// Issue a payment token for a stored card, with its domain controls.
#[utoipa::path(post, path = "/v1/tokens", tag = "tokens",
    params(("Idempotency-Key" = String, Header, description = "Required; replays the first answer")),
    request_body = IssueTokenRequest,
    responses((status = 201, body = TokenResponse), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn issue(request: Mutate<IssueToken>) -> Result<Response, Problem> {
    request.run().await
}

/// Status, controls, usage and masked card of a token. Never a PAN.
#[utoipa::path(get, path = "/v1/tokens/{token}", tag = "tokens", params(("token" = String, Path)),
    responses((status = 200, body = TokenResponse), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn read(request: Read<ReadToken>) -> Result<Json<TokenResponse>, Problem> {
    request.run().await
}

pub(super) struct ReadToken;

impl Query for ReadToken {
    const OPERATION: Operation = Operation::TokenRead;
    type Path = TokenNumber;
    type Answer = TokenResponse;

    async fn read(input: Reading<'_, Self>) -> Result<TokenResponse, Problem> {
        let token = input.app.vault.token(&input.caller.actor, &input.path).await?;
        Ok(TokenResponse::from(token))
    }
}

/// Tokens issued for a card.
#[utoipa::path(get, path = "/v1/cards/{card_ref}/tokens", tag = "tokens", params(("card_ref" = String, Path)),
    responses((status = 200, body = TokenListResponse), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn list(request: Read<ListTokens>) -> Result<Json<TokenListResponse>, Problem> {
    request.run().await
}

pub(super) struct ListTokens;

impl Query for ListTokens {
    const OPERATION: Operation = Operation::TokenList;
    type Path = CardRef;
    type Answer = TokenListResponse;

    async fn read(input: Reading<'_, Self>) -> Result<TokenListResponse, Problem> {
        let tokens = input
            .app
            .vault
            .tokens_of_card(&input.caller.actor, &input.path)
            .await?;
        Ok(TokenListResponse {
            card_ref: input.path.to_string(),
            tokens: tokens.iter().map(ToString::to_string).collect(),
        })
    }
}

/// Suspend, resume or delete: the token moves to `TO`.
pub(super) struct MoveToken<const TO: u8>;

const SUSPENDED: u8 = 0;
const ACTIVE: u8 = 1;
const DELETED: u8 = 2;

impl<const TO: u8> MoveToken<TO> {
    const STATUS: TokenStatus = match TO {
        SUSPENDED => TokenStatus::Suspended,
        ACTIVE => TokenStatus::Active,
        _ => TokenStatus::Deleted,
    };
}

impl<const TO: u8> Mutation for MoveToken<TO> {
    const OPERATION: Operation = match TO {
        SUSPENDED => Operation::TokenSuspend,
        ACTIVE => Operation::TokenResume,
        _ => Operation::TokenDelete,
    };
    type Path = TokenNumber;
    type Body = NoBody;
    type Done = TokenView;

    async fn apply(input: Input<'_, Self>, record: &Remembering<Self>) -> Result<TokenView, Problem> {
        Ok(input
            .app
            .vault
            .move_token(
                &input.caller.actor,
                &input.path,
                Self::STATUS,
                Timestamp::now(),
                record,
            )
            .await?)
    }

    fn answer(token: &TokenView) -> Result<Answer, Problem> {
        Answer::json(StatusCode::OK, &TokenResponse::from(token.clone()))
    }
}

/// Active → suspended.
#[utoipa::path(post, path = "/v1/tokens/{token}/suspend", tag = "tokens",
    params(("token" = String, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = TokenResponse), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn suspend(request: Mutate<MoveToken<SUSPENDED>>) -> Result<Response, Problem> {
    request.run().await
}

/// Suspended → active.
#[utoipa::path(post, path = "/v1/tokens/{token}/resume", tag = "tokens",
    params(("token" = String, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = TokenResponse), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn resume(request: Mutate<MoveToken<ACTIVE>>) -> Result<Response, Problem> {
    request.run().await
}

/// Active or suspended → deleted. Final.
#[utoipa::path(post, path = "/v1/tokens/{token}/delete", tag = "tokens",
    params(("token" = String, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = TokenResponse), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn delete(request: Mutate<MoveToken<DELETED>>) -> Result<Response, Problem> {
    request.run().await
}
