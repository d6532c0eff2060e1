//! POST /v1/bindings, POST /v1/bindings/{binding_id}/confirm,
//! GET /v1/bindings/{binding_id}, GET /v1/users/{user_id}/bindings

use super::flow_dto::{BindingListResponse, BindingResponse, ConfirmBindingRequest, StartBindingRequest};
use super::idempotency::Answer;
use super::mutation::{Input, JsonBody, Mutate, Mutation, NoBody, Remembering};
use super::path_id::NoPath;
use super::problem::Problem;
use super::query::{Query, Read, Reading};
use crate::domain::ids::ChannelId;
use crate::domain::operation::Operation;
use crate::domain::refs::{CardRef, IdentityRef, UserId};
use crate::domain::time::Timestamp;
use crate::domain::validation::ValidationError;
use crate::orchestration::{BindingId, BindingView, ConfirmCode, StartBinding};
use crate::vault::gateway::CardVerification;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;

pub(super) struct StartBindingCall;

impl Mutation for StartBindingCall {
    const OPERATION: Operation = Operation::BindingStart;
    type Path = NoPath;
    type Body = JsonBody<StartBindingRequest>;
    /// The binding, and whether this call created it.
    type Done = (BindingView, bool);

    async fn apply(
        input: Input<'_, Self>,
        record: &Remembering<Self>,
    ) -> Result<(BindingView, bool), Problem> {
        let JsonBody(r) = &input.body;
        let mut check = input.checks();
        let user = check.take("user_id", UserId::parse(&r.user_id));
        let card_ref = check.take("card_ref", CardRef::parse(&r.card_ref));
        let identity_ref = check.take("identity_ref", IdentityRef::parse(&r.identity_ref));
        let channel = check.take("channel", ChannelId::parse(&r.channel));
        check.done().await?;
        // `done` passed, so every field parsed.
        let (Some(user), Some(card_ref), Some(identity_ref), Some(channel)) =
            (user, card_ref, identity_ref, channel)
        else {
            return Err(Problem::internal());
        };
        let verification = match verification_of(r.cvn.as_deref(), r.expiry.as_deref()) {
            Ok(verification) => verification,
            Err((field, e)) => return Err(input.refuse(field, e).await),
        };
        let start = StartBinding {
            user,
            card_ref,
            identity_ref,
            channel,
            verification,
        };
        Ok(input
            .app
            .orchestrator
            .start_binding(&input.app.vault, &input.caller.actor, start, record)
            .await?)
    }

    fn answer((view, created): &(BindingView, bool)) -> Result<Answer, Problem> {
        let status = if *created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        Answer::json(status, &BindingResponse::from(view.clone()))
    }
}

/// Start binding a stored card for a user on a channel. The bank checks the
/// four elements and sends an SMS (or the platform sends its own code).
/// A repeat for a card this user has bound or is binding returns that
/// binding (200, `duplicate: true`).
#[utoipa::path(post, path = "/v1/bindings", tag = "bindings",
    params(("Idempotency-Key" = String, Header, description = "Required; replays the first answer")),
    request_body = StartBindingRequest,
    responses((status = 201, body = BindingResponse), (status = 200, body = BindingResponse), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem), (status = 503, body = Problem)))]
pub async fn start(request: Mutate<StartBindingCall>) -> Result<Response, Problem> {
    request.run().await
}

/// A credit card's CVN and expiry, parsed: both or neither. `Err` names the
/// field at fault.
fn verification_of(
    cvn: Option<&String>,
    expiry: Option<&String>,
) -> Result<Option<CardVerification>, (&'static str, ValidationError)> {
    match (cvn, expiry) {
        (None, None) => Ok(None),
        (Some(cvn), Some(expiry)) => CardVerification::parse(cvn, expiry, Timestamp::now().date())
            .map(Some)
            .map_err(|e| (e.field.as_str(), e)),
        (Some(_), None) | (None, Some(_)) => {
            let missing = if cvn.is_none() { "cvn" } else { "expiry" };
            let e = ValidationError::new(
                crate::domain::validation::Field::Cvn,
                crate::domain::validation::Rule::Empty,
                "cvn and expiry come together",
            );
            Err((missing, e))
        }
    }
}

pub(super) struct ConfirmBinding;

impl Mutation for ConfirmBinding {
    const OPERATION: Operation = Operation::BindingConfirm;
    type Path = BindingId;
    type Body = JsonBody<ConfirmBindingRequest>;
    type Done = BindingView;

    async fn apply(input: Input<'_, Self>, record: &Remembering<Self>) -> Result<BindingView, Problem> {
        let JsonBody(r) = &input.body;
        let code = input.field("code", ConfirmCode::parse(&r.code)).await?;
        let resent = match verification_of(r.cvn.as_deref(), r.expiry.as_deref()) {
            Ok(verification) => verification,
            Err((field, e)) => return Err(input.refuse(field, e).await),
        };
        let (app, actor) = (input.app, &input.caller.actor);
        Ok(app
            .orchestrator
            .confirm_binding(&app.vault, actor, &input.path, code, resent, record)
            .await?)
    }

    fn answer(view: &BindingView) -> Result<Answer, Problem> {
        Answer::json(StatusCode::OK, &BindingResponse::from(view.clone()))
    }
}

/// Confirm a binding with the SMS code. On success the binding is signed,
/// its agreement stored encrypted and a payment token issued.
#[utoipa::path(post, path = "/v1/bindings/{binding_id}/confirm", tag = "bindings",
    params(("binding_id" = String, Path), ("Idempotency-Key" = String, Header)),
    request_body = ConfirmBindingRequest,
    responses((status = 200, body = BindingResponse), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem), (status = 503, body = Problem)))]
pub async fn confirm(request: Mutate<ConfirmBinding>) -> Result<Response, Problem> {
    request.run().await
}

/// One binding (masked card, status, token).
#[utoipa::path(get, path = "/v1/bindings/{binding_id}", tag = "bindings", params(("binding_id" = String, Path)),
    responses((status = 200, body = BindingResponse), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn read(request: Read<ReadBinding>) -> Result<Json<BindingResponse>, Problem> {
    request.run().await
}

pub(super) struct ReadBinding;

impl Query for ReadBinding {
    const OPERATION: Operation = Operation::BindingRead;
    type Path = BindingId;
    type Answer = BindingResponse;

    async fn read(input: Reading<'_, Self>) -> Result<BindingResponse, Problem> {
        let app = input.app;
        let view = app
            .orchestrator
            .binding(&app.vault, &input.caller.actor, &input.path)
            .await?;
        Ok(BindingResponse::from(view))
    }
}

/// A user's bindings, newest first, failed ones included.
#[utoipa::path(get, path = "/v1/users/{user_id}/bindings", tag = "bindings", params(("user_id" = String, Path)),
    responses((status = 200, body = BindingListResponse), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn list(request: Read<ListBindings>) -> Result<Json<BindingListResponse>, Problem> {
    request.run().await
}

pub(super) struct ListBindings;

impl Query for ListBindings {
    const OPERATION: Operation = Operation::BindingList;
    type Path = UserId;
    type Answer = BindingListResponse;

    async fn read(input: Reading<'_, Self>) -> Result<BindingListResponse, Problem> {
        let app = input.app;
        let bindings = app
            .orchestrator
            .bindings(&app.vault, &input.caller.actor, &input.path)
            .await?;
        Ok(BindingListResponse {
            user_id: input.path.to_string(),
            bindings: bindings.into_iter().map(BindingResponse::from).collect(),
        })
    }
}

pub(super) struct Unbind;

impl Mutation for Unbind {
    const OPERATION: Operation = Operation::BindingUnbind;
    type Path = BindingId;
    type Body = NoBody;
    type Done = BindingView;

    async fn apply(input: Input<'_, Self>, record: &Remembering<Self>) -> Result<BindingView, Problem> {
        Ok(input
            .app
            .orchestrator
            .unbind(&input.app.vault, &input.caller.actor, &input.path, record)
            .await?)
    }

    fn answer(view: &BindingView) -> Result<Answer, Problem> {
        Answer::json(StatusCode::OK, &BindingResponse::from(view.clone()))
    }
}

/// Unbind (解约): refused while a payment of this binding is in flight;
/// otherwise the bank agreements are cancelled, the payment token deleted
/// (it can never debit again) and the binding kept, marked unbound.
/// Repeats answer with the unbound binding.
#[utoipa::path(post, path = "/v1/bindings/{binding_id}/unbind", tag = "bindings",
    params(("binding_id" = String, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = BindingResponse), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 503, body = Problem)))]
pub async fn unbind(request: Mutate<Unbind>) -> Result<Response, Problem> {
    request.run().await
}
