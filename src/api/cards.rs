//! POST /v1/cards, GET /v1/cards/{card_ref}, POST /v1/cards/{card_ref}/reveal

use super::dto::{
    CardResponse, CardsResponse, RevealRequest, RevealResponse, StoreCardRequest, StoreCardsRequest,
};
use super::extract::{Body, Param};
use super::idempotency::Answer;
use super::mutation::{Input, JsonBody, Mutate, Mutation, Remembering};
use super::path_id::NoPath;
use super::problem::Problem;
use super::query::{Query, Read, Reading};
use super::{json, App, Caller};
use crate::domain::operation::Operation;
use crate::domain::refs::CardRef;
use crate::vault::StoredCard;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::Arc;
use zeroize::Zeroizing;

pub(super) fn card_ref(text: &str) -> Result<CardRef, Problem> {
    CardRef::parse(text)
        .map_err(|e| Problem::from(crate::vault::VaultError::Invalid(e)).with_field("card_ref", "format"))
}

pub(super) struct StoreCard;

impl Mutation for StoreCard {
    const OPERATION: Operation = Operation::CardStore;
    type Path = NoPath;
    type Body = JsonBody<StoreCardRequest>;
    type Done = StoredCard;

    async fn apply(input: Input<'_, Self>, record: &Remembering<Self>) -> Result<StoredCard, Problem> {
        let JsonBody(request) = &input.body;
        Ok(input
            .app
            .vault
            .store_card_joined(&input.caller.actor, &request.pan, record)
            .await?)
    }

    fn answer(card: &StoredCard) -> Result<Answer, Problem> {
        let status = if card.already_stored {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        };
        Answer::json(status, &CardResponse::from(card.clone()))
    }
}

/// Store a card. Answers 201 for a new card, 200 when the same PAN was
/// stored before (the existing reference, `already_stored: true`).
#[utoipa::path(post, path = "/v1/cards", tag = "cards",
    params(("Idempotency-Key" = String, Header, description = "Required; replays the first answer")),
    request_body = StoreCardRequest,
    responses((status = 201, body = CardResponse), (status = 200, body = CardResponse),
        (status = 400, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn store(request: Mutate<StoreCard>) -> Result<Response, Problem> {
    request.run().await
}

pub(super) struct StoreCards;

impl Mutation for StoreCards {
    const OPERATION: Operation = Operation::CardStore;
    type Path = NoPath;
    type Body = JsonBody<StoreCardsRequest>;
    type Done = Vec<StoredCard>;

    async fn apply(input: Input<'_, Self>, _record: &Remembering<Self>) -> Result<Vec<StoredCard>, Problem> {
        let JsonBody(request) = &input.body;
        let pans: Vec<&str> = request.pans.iter().map(|p| p.as_str()).collect();
        input
            .app
            .vault
            .store_cards(&input.caller.actor, &pans)
            .await
            .map_err(|refusal| {
                let field = format!("pans[{}]", refusal.index);
                let rule = match &refusal.error {
                    crate::vault::VaultError::Invalid(e) => Some(e.rule.code().to_owned()),
                    crate::vault::VaultError::PanInTokenRange => Some("in_token_range".to_owned()),
                    _ => None,
                };
                let problem = Problem::from(refusal.error);
                match rule {
                    Some(rule) => problem.with_field(field, rule),
                    None => problem,
                }
            })
    }

    fn answer(cards: &Vec<StoredCard>) -> Result<Answer, Problem> {
        let cards = cards.iter().cloned().map(CardResponse::from).collect();
        Answer::json(StatusCode::OK, &CardsResponse { cards })
    }
}

/// Store up to 500 cards in one durable write with one audit record per
/// card (migrations, bulk loads). Validated whole first: one invalid number
/// refuses the batch with `pans[i]` named, and nothing is stored.
#[utoipa::path(post, path = "/v1/cards/bulk", tag = "cards",
    params(("Idempotency-Key" = String, Header, description = "Required; replays the first answer")),
    request_body = StoreCardsRequest,
    responses((status = 200, body = CardsResponse),
        (status = 400, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn store_bulk(request: Mutate<StoreCards>) -> Result<Response, Problem> {
    request.run().await
}

/// Masked facts about a stored card.
#[utoipa::path(get, path = "/v1/cards/{card_ref}", tag = "cards",
    params(("card_ref" = String, Path)),
    responses((status = 200, body = CardResponse), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn read(request: Read<ReadCard>) -> Result<Json<CardResponse>, Problem> {
    request.run().await
}

pub(super) struct ReadCard;

impl Query for ReadCard {
    const OPERATION: Operation = Operation::CardRead;
    type Path = CardRef;
    type Answer = CardResponse;

    async fn read(input: Reading<'_, Self>) -> Result<CardResponse, Problem> {
        let card = input.app.vault.card(&input.caller.actor, &input.path).await?;
        Ok(CardResponse::from(card))
    }
}

/// Break-glass: the full PAN, with a mandatory reason. Granted to the
/// break-glass identity only, rate-limited per identity, audited.
#[utoipa::path(post, path = "/v1/cards/{card_ref}/reveal", tag = "cards",
    params(("card_ref" = String, Path)), request_body = RevealRequest,
    responses((status = 200, body = RevealResponse), (status = 403, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem)))]
pub async fn reveal(
    State(app): State<Arc<App>>,
    caller: Caller,
    Param(card): Param,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, Problem> {
    let grant = app
        .grant_reveal(&caller, app.object(&card, CardRef::parse))
        .await?;
    let request: RevealRequest = app
        .parse_body(&caller, Operation::CardReveal, &headers, &body)
        .await?;
    let card_ref = card_ref(&card)?;
    if let Err(wait) = app.reveals.take(&caller.actor.identity) {
        app.vault
            .record_refused(
                &caller.actor,
                Operation::CardReveal,
                Some(app.vault.audit_object(&card_ref)),
                "rate_limit",
            )
            .await
            .map_err(Problem::from)?;
        return Err(Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too many reveals",
            "this identity has used its reveals for the hour",
        )
        .retry_after(wait));
    }
    let revealed = app.vault.reveal_pan(&grant, &card_ref, &request.reason).await?;
    let response = RevealResponse {
        card_ref: card_ref.to_string(),
        pan: Zeroizing::new(revealed.digits().to_owned()),
    };
    let mut response = Json(response).into_response();
    // Never cached anywhere between the vault and the operator.
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

impl App {
    /// Parses a JSON body; a malformed one is audited as a refusal.
    pub(super) async fn parse_body<T: serde::de::DeserializeOwned>(
        &self,
        caller: &Caller,
        operation: Operation,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<T, Problem> {
        match json::parse(headers, body) {
            Ok(value) => Ok(value),
            Err(problem) => {
                // Every body refusal names its fields (`json::parse`).
                let detail: Vec<String> = problem
                    .errors
                    .iter()
                    .map(|e| format!("{}.{}", e.field, e.rule))
                    .collect();
                let detail = detail.join(",");
                self.vault
                    .record_refused(&caller.actor, operation, None, &detail)
                    .await
                    .map_err(Problem::from)?;
                Err(problem)
            }
        }
    }
}
