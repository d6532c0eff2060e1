//! POST /v1/payment-passwords, POST …/{user_id}/change, POST …/{user_id}/verify

use super::flow_dto::{ChangePasswordRequest, PasswordResponse, SetPasswordRequest, VerifyPasswordRequest};
use super::idempotency::Answer;
use super::mutation::{Input, JsonBody, KnownAnswer, Mutate, Mutation, Remembering};
use super::path_id::NoPath;
use super::problem::Problem;
use crate::domain::operation::Operation;
use crate::domain::refs::{IdentityRef, UserId};
use axum::http::StatusCode;
use axum::response::Response;

/// A password operation's result, as answered.
#[derive(Clone)]
pub(super) struct PasswordDone {
    user: UserId,
    result: &'static str,
    status: StatusCode,
}

fn answer(done: &PasswordDone) -> Result<Answer, Problem> {
    Answer::json(
        done.status,
        &PasswordResponse {
            user_id: done.user.to_string(),
            result: done.result.to_owned(),
        },
    )
}

pub(super) struct SetPassword;

impl Mutation for SetPassword {
    const OPERATION: Operation = Operation::PasswordSet;
    type Path = NoPath;
    type Body = JsonBody<SetPasswordRequest>;
    type Done = PasswordDone;

    async fn apply(input: Input<'_, Self>, record: &Remembering<Self>) -> Result<PasswordDone, Problem> {
        let JsonBody(r) = &input.body;
        let user = input.field("user_id", UserId::parse(&r.user_id)).await?;
        let identity = input
            .field("identity_ref", IdentityRef::parse(&r.identity_ref))
            .await?;
        let done = PasswordDone {
            user: user.clone(),
            result: "set",
            status: StatusCode::CREATED,
        };
        let answering = KnownAnswer::<Self>(record, done.clone());
        input
            .app
            .vault
            .set_password_joined(&input.caller.actor, &user, &identity, &r.password, &answering)
            .await?;
        Ok(done)
    }

    fn answer(done: &PasswordDone) -> Result<Answer, Problem> {
        answer(done)
    }
}

/// Set a user's first payment password. Weak ones are refused with the
/// rule named (repeated_digits, ascending_run, descending_run,
/// few_distinct_digits, birth_date, id_number_run, phone_run).
#[utoipa::path(post, path = "/v1/payment-passwords", tag = "payment passwords",
    params(("Idempotency-Key" = String, Header, description = "Required; replays the first answer")),
    request_body = SetPasswordRequest,
    responses((status = 201, body = PasswordResponse), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn set(request: Mutate<SetPassword>) -> Result<Response, Problem> {
    request.run().await
}

pub(super) struct ChangePassword;

impl Mutation for ChangePassword {
    const OPERATION: Operation = Operation::PasswordChange;
    type Path = UserId;
    type Body = JsonBody<ChangePasswordRequest>;
    type Done = PasswordDone;

    async fn apply(input: Input<'_, Self>, record: &Remembering<Self>) -> Result<PasswordDone, Problem> {
        let JsonBody(r) = &input.body;
        let done = PasswordDone {
            user: input.path.clone(),
            result: "changed",
            status: StatusCode::OK,
        };
        let answering = KnownAnswer::<Self>(record, done.clone());
        input
            .app
            .vault
            .change_password_joined(&input.caller.actor, &input.path, &r.current, &r.new, &answering)
            .await?;
        Ok(done)
    }

    fn answer(done: &PasswordDone) -> Result<Answer, Problem> {
        answer(done)
    }
}

/// Change a payment password after checking the current one (a wrong
/// current password counts towards the lock-out).
#[utoipa::path(post, path = "/v1/payment-passwords/{user_id}/change", tag = "payment passwords",
    params(("user_id" = String, Path), ("Idempotency-Key" = String, Header)),
    request_body = ChangePasswordRequest,
    responses((status = 200, body = PasswordResponse), (status = 403, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem), (status = 423, body = Problem)))]
pub async fn change(request: Mutate<ChangePassword>) -> Result<Response, Problem> {
    request.run().await
}

pub(super) struct VerifyPassword;

impl Mutation for VerifyPassword {
    const OPERATION: Operation = Operation::PasswordVerify;
    type Path = UserId;
    type Body = JsonBody<VerifyPasswordRequest>;
    type Done = PasswordDone;

    async fn apply(input: Input<'_, Self>, _record: &Remembering<Self>) -> Result<PasswordDone, Problem> {
        let JsonBody(r) = &input.body;
        input
            .app
            .vault
            .verify_password(&input.caller.actor, &input.path, &r.password)
            .await?;
        Ok(PasswordDone {
            user: input.path,
            result: "verified",
            status: StatusCode::OK,
        })
    }

    fn answer(done: &PasswordDone) -> Result<Answer, Problem> {
        answer(done)
    }
}

/// Check a payment password. Five wrong ones in a row lock it for 30 minutes (423).
#[utoipa::path(post, path = "/v1/payment-passwords/{user_id}/verify", tag = "payment passwords",
    params(("user_id" = String, Path), ("Idempotency-Key" = String, Header)),
    request_body = VerifyPasswordRequest,
    responses((status = 200, body = PasswordResponse), (status = 403, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem), (status = 423, body = Problem)))]
pub async fn verify(request: Mutate<VerifyPassword>) -> Result<Response, Problem> {
    request.run().await
}
