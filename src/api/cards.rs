//! POST /v1/cards, GET /v1/cards/{card_ref}, POST /v1/cards/{card_ref}/reveal

use super::dto::{
    CardResponse, CardsResponse, ErasedCardResponse, RevealBody, RevealResponse, StoreCardRequest,
    StoreCardsRequest,
};
use super::idempotency::Answer;
use super::mutation::{Input, JsonBody, Mutate, Mutation, NoBody, Remembering};
use super::path_id::NoPath;
use super::problem::Problem;
use super::query::{Query, Read, Reading};
use super::{json, App, Caller};
use crate::domain::operation::Operation;
use crate::domain::refs::CardRef;
use crate::vault::card::ErasedCard;
use crate::vault::{RevealBasis, StoredCard};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use zeroize::Zeroizing;

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

pub(super) struct EraseCard;

impl Mutation for EraseCard {
    const OPERATION: Operation = Operation::CardErase;
    type Path = CardRef;
    type Body = NoBody;
    type Done = ErasedCard;

    async fn apply(input: Input<'_, Self>, _record: &Remembering<Self>) -> Result<ErasedCard, Problem> {
        Ok(input
            .app
            .vault
            .erase_card(&input.caller.actor, &input.path)
            .await?)
    }

    fn answer(erased: &ErasedCard) -> Result<Answer, Problem> {
        Answer::json(
            StatusCode::OK,
            &ErasedCardResponse {
                card_ref: erased.card_ref.to_string(),
                tokens_deleted: erased.tokens_deleted,
            },
        )
    }
}

/// Erases a card: its record, its duplicate-detection entry and every token of it, in one audited write (PCI DSS 3.2.1 disposal, PIPL deletion). Refused `409 card-in-use` while a token of it holds a payment in flight. A deleted token's number is never drawn again. Old bytes the store's files keep stay sealed under their data-key version, and become unrecoverable once that version is rotated, rewrapped and retired (SECURITY.md, "Erasure"). A retry with the same Idempotency-Key answers the first erasure.
#[utoipa::path(delete, path = "/v1/cards/{card_ref}", tag = "cards",
    params(("card_ref" = String, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = ErasedCardResponse), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn erase(request: Mutate<EraseCard>) -> Result<Response, Problem> {
    request.run().await
}

pub(super) struct RevealCard;

impl Mutation for RevealCard {
    const OPERATION: Operation = Operation::CardReveal;
    type Path = CardRef;
    type Body = JsonBody<RevealBody>;
    type Done = RevealResponse;

    async fn apply(input: Input<'_, Self>, _record: &Remembering<Self>) -> Result<RevealResponse, Problem> {
        let app = input.app;
        let caller = input.caller;
        let card_ref = input.path;
        // The runner authorized the operation; the grant is the capability
        // `reveal_pan` takes, from the same policy.
        let grant = app
            .grant_reveal(caller, Operation::CardReveal, app.vault.audit_object(&card_ref))
            .await?;
        let JsonBody(body) = input.body;
        let basis = match (&body.request_id, &body.reason) {
            (Some(id), None) => RevealBasis::Approved(id),
            (None, Some(reason)) => RevealBasis::Reason(reason),
            (request_id, _) => {
                let (status, kind, title, field, rule, detail) = match request_id {
                    Some(_) => (
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid-field",
                        "Invalid field",
                        "reason",
                        "with_request_id",
                        "a reveal on an approved request takes the request's reason: send request_id alone",
                    ),
                    None => (
                        StatusCode::BAD_REQUEST,
                        "malformed-body",
                        "Malformed request body",
                        "request_id",
                        "missing_field",
                        "a reveal needs the approved request it rests on (request_id), or, without dual control, a reason",
                    ),
                };
                app.vault
                    .record_refused(
                        &caller.actor,
                        Operation::CardReveal,
                        Some(app.vault.audit_object(&card_ref)),
                        &format!("{field}.{rule}"),
                    )
                    .await
                    .map_err(Problem::from)?;
                return Err(Problem::new(status, kind, title, detail).with_field(field, rule));
            }
        };
        let revealed = app.vault.reveal_pan(&grant, &card_ref, basis).await?;
        Ok(RevealResponse {
            card_ref: card_ref.to_string(),
            pan: Zeroizing::new(revealed.digits().to_owned()),
        })
    }

    fn answer(revealed: &RevealResponse) -> Result<Answer, Problem> {
        Answer::json(StatusCode::OK, revealed)
    }

    /// A revealed number is never stored to answer a retry: the key
    /// remembers that it revealed once, and a retry is told so.
    fn remembered(_revealed: &RevealResponse) -> Answer {
        Answer::from(Problem::new(
            StatusCode::CONFLICT,
            "reveal-not-replayed",
            "Reveal not replayed",
            "this Idempotency-Key already revealed the card once; a revealed number is never stored to answer a retry: send a new Idempotency-Key to reveal it again (audited as a new reveal)",
        )
        .with_field("Idempotency-Key", "reveal_once"))
    }
}

/// Break-glass: the full PAN. Under dual control (the default) it rests on
/// a reveal request of this caller's for this card that a different
/// identity approved (`request_id`), and uses it up; with
/// `limits.reveal_dual_control = false`, on a reason given here. Granted to
/// the break-glass identity only, rate-limited per identity, audited. A
/// retry with the same Idempotency-Key answers `409 reveal-not-replayed`.
#[utoipa::path(post, path = "/v1/cards/{card_ref}/reveal", tag = "cards",
    params(("card_ref" = String, Path), ("Idempotency-Key" = String, Header)), request_body = RevealBody,
    responses((status = 200, body = RevealResponse), (status = 403, body = Problem), (status = 404, body = Problem, description = "no such card, or no such reveal request (used already, or never made)"), (status = 409, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem)))]
pub async fn reveal(request: Mutate<RevealCard>) -> Result<Response, Problem> {
    let mut response = request.run().await?;
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
