//! POST /v1/payment-passwords, POST …/{user_id}/change, POST …/{user_id}/verify

use super::extract::{Body, Param};
use super::flow_dto::{ChangePasswordRequest, PasswordResponse, SetPasswordRequest, VerifyPasswordRequest};
use super::idempotency::{self, Answer};
use super::problem::Problem;
use super::{App, Caller};
use crate::domain::operation::Operation;
use crate::domain::refs::{IdentityRef, UserId};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use std::sync::Arc;

fn answer(user: &UserId, result: &str, status: StatusCode) -> Result<Answer, Problem> {
    Answer::json(
        status,
        &PasswordResponse {
            user_id: user.to_string(),
            result: result.to_owned(),
        },
    )
}

/// Set a user's first payment password. Weak ones are refused with the
/// rule named (repeated_digits, ascending_run, descending_run,
/// few_distinct_digits, birth_date, id_number_run, phone_run).
#[utoipa::path(post, path = "/v1/payment-passwords", tag = "payment passwords",
    params(("Idempotency-Key" = String, Header, description = "Required; replays the first answer")),
    request_body = SetPasswordRequest,
    responses((status = 201, body = PasswordResponse), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn set(
    State(app): State<Arc<App>>,
    caller: Caller,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, Problem> {
    let op = Operation::PasswordSet;
    app.authorize(&caller, op, None).await?;
    let key = idempotency::key(&headers)?;
    app.idempotent(
        &caller.actor.identity,
        &key,
        "POST",
        "/v1/payment-passwords",
        &body,
        || async {
            let r: SetPasswordRequest = app.parse_body(&caller, op, &headers, &body).await?;
            let user = app
                .field(&caller, op, "user_id", UserId::parse(&r.user_id))
                .await?;
            let identity = app
                .field(&caller, op, "identity_ref", IdentityRef::parse(&r.identity_ref))
                .await?;
            app.vault
                .set_password(&caller.actor, &user, &identity, &r.password)
                .await?;
            answer(&user, "set", StatusCode::CREATED)
        },
    )
    .await
}

/// Change a payment password after checking the current one (a wrong
/// current password counts towards the lock-out).
#[utoipa::path(post, path = "/v1/payment-passwords/{user_id}/change", tag = "payment passwords",
    params(("user_id" = String, Path), ("Idempotency-Key" = String, Header)),
    request_body = ChangePasswordRequest,
    responses((status = 200, body = PasswordResponse), (status = 403, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem), (status = 423, body = Problem)))]
pub async fn change(
    State(app): State<Arc<App>>,
    caller: Caller,
    Param(user): Param,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, Problem> {
    let op = Operation::PasswordChange;
    app.authorize(&caller, op, Some(app.object(&user, UserId::parse)))
        .await?;
    let key = idempotency::key(&headers)?;
    let path = format!("/v1/payment-passwords/{user}/change");
    app.idempotent(&caller.actor.identity, &key, "POST", &path, &body, || async {
        let user = app.field(&caller, op, "user_id", UserId::parse(&user)).await?;
        let r: ChangePasswordRequest = app.parse_body(&caller, op, &headers, &body).await?;
        app.vault
            .change_password(&caller.actor, &user, &r.current, &r.new)
            .await?;
        answer(&user, "changed", StatusCode::OK)
    })
    .await
}

/// Check a payment password. Five wrong ones in a row lock it for 30 minutes (423).
#[utoipa::path(post, path = "/v1/payment-passwords/{user_id}/verify", tag = "payment passwords",
    params(("user_id" = String, Path), ("Idempotency-Key" = String, Header)),
    request_body = VerifyPasswordRequest,
    responses((status = 200, body = PasswordResponse), (status = 403, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem), (status = 423, body = Problem)))]
pub async fn verify(
    State(app): State<Arc<App>>,
    caller: Caller,
    Param(user): Param,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, Problem> {
    let op = Operation::PasswordVerify;
    app.authorize(&caller, op, Some(app.object(&user, UserId::parse)))
        .await?;
    let key = idempotency::key(&headers)?;
    let path = format!("/v1/payment-passwords/{user}/verify");
    app.idempotent(&caller.actor.identity, &key, "POST", &path, &body, || async {
        let user = app.field(&caller, op, "user_id", UserId::parse(&user)).await?;
        let r: VerifyPasswordRequest = app.parse_body(&caller, op, &headers, &body).await?;
        app.vault
            .verify_password(&caller.actor, &user, &r.password)
            .await?;
        answer(&user, "verified", StatusCode::OK)
    })
    .await
}
