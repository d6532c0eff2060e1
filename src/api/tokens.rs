//! POST /v1/tokens, GET /v1/tokens/{token}, POST …/suspend, …/resume,
//! …/delete, GET /v1/cards/{card_ref}/tokens

use super::cards::card_ref;
use super::dto::{IssueTokenRequest, TokenListResponse, TokenResponse};
use super::extract::{Body, Param};
use super::idempotency::{self, Answer};
use super::problem::Problem;
use super::{App, Caller};
use crate::domain::operation::Operation;
use crate::domain::refs::CardRef;
use crate::domain::time::Timestamp;
use crate::vault::token::TokenNumber;
use crate::vault::VaultError;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::Json;
use std::sync::Arc;

fn token_number(app: &App, text: &str) -> Result<TokenNumber, Problem> {
    app.vault
        .config()
        .token_range
        .parse_token(text)
        .map_err(|e| Problem::from(VaultError::Invalid(e)).with_field("token", "format"))
}

/// Issue a payment token for a stored card, with its domain controls.
#[utoipa::path(post, path = "/v1/tokens", tag = "tokens",
    params(("Idempotency-Key" = String, Header, description = "Required; replays the first answer")),
    request_body = IssueTokenRequest,
    responses((status = 201, body = TokenResponse), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn issue(
    State(app): State<Arc<App>>,
    caller: Caller,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, Problem> {
    app.authorize(&caller, Operation::TokenIssue, None).await?;
    let key = idempotency::key(&headers)?;
    app.idempotent(
        &caller.actor.identity,
        &key,
        "POST",
        "/v1/tokens",
        &body,
        || async {
            let request: IssueTokenRequest = app
                .parse_body(&caller, Operation::TokenIssue, &headers, &body)
                .await?;
            let card = card_ref(&request.card_ref)?;
            let controls = match request.controls.parse() {
                Ok(c) => c,
                Err((field, error)) => {
                    let rule = error.rule.code();
                    app.vault
                        .record_refused(
                            &caller.actor,
                            Operation::TokenIssue,
                            Some(app.vault.audit_object(&card)),
                            &format!("{field}.{rule}"),
                        )
                        .await
                        .map_err(Problem::from)?;
                    return Err(Problem::from(VaultError::Invalid(error)).with_field(field, rule));
                }
            };
            let token = app
                .vault
                .issue_token(&caller.actor, &card, controls, Timestamp::now())
                .await?;
            Answer::json(StatusCode::CREATED, &TokenResponse::from(token))
        },
    )
    .await
}

/// Status, controls, usage and masked card of a token. Never a PAN.
#[utoipa::path(get, path = "/v1/tokens/{token}", tag = "tokens", params(("token" = String, Path)),
    responses((status = 200, body = TokenResponse), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn read(
    State(app): State<Arc<App>>,
    caller: Caller,
    Param(token): Param,
) -> Result<Json<TokenResponse>, Problem> {
    app.authorize(&caller, Operation::TokenRead, Some(app.token_object(&token)))
        .await?;
    Ok(Json(TokenResponse::from(
        app.vault
            .token(&caller.actor, &token_number(&app, &token)?)
            .await?,
    )))
}

/// Tokens issued for a card.
#[utoipa::path(get, path = "/v1/cards/{card_ref}/tokens", tag = "tokens", params(("card_ref" = String, Path)),
    responses((status = 200, body = TokenListResponse), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn list(
    State(app): State<Arc<App>>,
    caller: Caller,
    Param(card): Param,
) -> Result<Json<TokenListResponse>, Problem> {
    app.authorize(
        &caller,
        Operation::TokenList,
        Some(app.object(&card, CardRef::parse)),
    )
    .await?;
    let card = card_ref(&card)?;
    let tokens = app.vault.tokens_of_card(&caller.actor, &card).await?;
    Ok(Json(TokenListResponse {
        card_ref: card.to_string(),
        tokens: tokens.iter().map(ToString::to_string).collect(),
    }))
}

async fn transition(
    app: Arc<App>,
    caller: Caller,
    token: String,
    uri: Uri,
    headers: HeaderMap,
    body: &[u8],
    operation: Operation,
) -> Result<Response, Problem> {
    app.authorize(&caller, operation, Some(app.token_object(&token)))
        .await?;
    let key = idempotency::key(&headers)?;
    // The path as the request named it (not rebuilt by hand), so the
    // request MAC covers the route actually served.
    app.idempotent(&caller.actor.identity, &key, "POST", uri.path(), body, || async {
        let number = token_number(&app, &token)?;
        let now = Timestamp::now();
        let view = match operation {
            Operation::TokenSuspend => app.vault.suspend_token(&caller.actor, &number, now).await?,
            Operation::TokenResume => app.vault.resume_token(&caller.actor, &number, now).await?,
            _ => app.vault.delete_token(&caller.actor, &number, now).await?,
        };
        Answer::json(StatusCode::OK, &TokenResponse::from(view))
    })
    .await
}

/// Active → suspended.
#[utoipa::path(post, path = "/v1/tokens/{token}/suspend", tag = "tokens",
    params(("token" = String, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = TokenResponse), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn suspend(
    State(app): State<Arc<App>>,
    caller: Caller,
    Param(token): Param,
    uri: Uri,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, Problem> {
    transition(app, caller, token, uri, headers, &body, Operation::TokenSuspend).await
}

/// Suspended → active.
#[utoipa::path(post, path = "/v1/tokens/{token}/resume", tag = "tokens",
    params(("token" = String, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = TokenResponse), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn resume(
    State(app): State<Arc<App>>,
    caller: Caller,
    Param(token): Param,
    uri: Uri,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, Problem> {
    transition(app, caller, token, uri, headers, &body, Operation::TokenResume).await
}

/// Active or suspended → deleted. Final.
#[utoipa::path(post, path = "/v1/tokens/{token}/delete", tag = "tokens",
    params(("token" = String, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = TokenResponse), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn delete(
    State(app): State<Arc<App>>,
    caller: Caller,
    Param(token): Param,
    uri: Uri,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, Problem> {
    transition(app, caller, token, uri, headers, &body, Operation::TokenDelete).await
}
