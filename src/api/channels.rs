//! POST /v1/channel-notifications/{channel} (banks post payment results),
//! GET /v1/admin/channels, PUT /v1/admin/channels/{channel} (routing health).

use super::extract::{Body, Param};
use super::idempotency::Answer;
use super::mutation::{Input, JsonBody, Mutate, Mutation, Remembering};
use super::payment_dto::{ChannelStateRequest, NotificationAck};
use super::problem::Problem;
use super::{App, Caller};
use crate::channel::protocol::Notification;
use crate::channel::signature;
use crate::domain::ids::ChannelId;
use crate::domain::operation::Operation;
use crate::domain::time::Timestamp;
use crate::orchestration::routing::ChannelHealth;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use std::sync::Arc;

/// A bank channel posts a payment result. Only the identity configured for
/// that channel (`notify_identity`) may, and only signed with the channel's
/// key (`notify_public_key`): headers `x-channel-timestamp` (Unix seconds,
/// within 300 s), `x-channel-nonce` (16-64 letters and digits) and
/// `x-channel-signature` (hex Ed25519 over `tokenvault-notify/1`, the
/// timestamp, the nonce, each on its own line, then the body's bytes); a
/// missing, malformed, stale or wrong signature is `401`, audited. The
/// result must agree with the payment (amount, currency, order, bank
/// transaction) and is applied once.
/// No Idempotency-Key: banks repeat notifications, and a repeat is
/// answered `applied: false`.
#[utoipa::path(post, path = "/v1/channel-notifications/{channel}", tag = "channels",
    params(("channel" = String, Path), ("x-channel-timestamp" = String, Header), ("x-channel-nonce" = String, Header), ("x-channel-signature" = String, Header)),
    request_body(content = Object, content_type = "application/json", description = "the bank's payment result: a JSON object of the channel protocol's Notification"),
    responses((status = 200, body = NotificationAck), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
pub async fn notify(
    State(app): State<Arc<App>>,
    caller: Caller,
    Param(channel): Param,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Json<NotificationAck>, Problem> {
    let op = Operation::PaymentNotify;
    let object = app.object(&channel, ChannelId::parse);
    app.authorize(&caller, op, Some(object.clone())).await?;
    let channel = app
        .field(&caller, op, "channel", ChannelId::parse(&channel))
        .await?;
    let Some(notifier) = app.orchestrator.notifier(&channel, &caller.actor.identity) else {
        tracing::warn!(identity = %caller.actor.identity, channel = channel.as_str(), "notification from an identity that is not this channel's");
        app.vault
            .record_denied(&caller.actor, op, Some(object))
            .await
            .map_err(Problem::from)?;
        return Err(Problem::forbidden(op));
    };
    let header = |name: &'static str| headers.get(name).and_then(|v| v.to_str().ok());
    let now = Timestamp::now().seconds();
    if let Err(refused) = signature::verify(&notifier.key, header, &body, now) {
        tracing::warn!(
            channel = channel.as_str(),
            rule = refused.rule(),
            "notification signature refused"
        );
        app.vault
            .record_refused(
                &caller.actor,
                op,
                Some(object),
                &format!("{}.{}", refused.field(), refused.rule()),
            )
            .await
            .map_err(Problem::from)?;
        return Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "notification-signature",
            "Notification signature refused",
            refused.to_string(),
        )
        .with_field(refused.field(), refused.rule()));
    }
    let notification: Notification = app.parse_body(&caller, op, &headers, &body).await?;
    let notified = app
        .orchestrator
        .notify(&app.vault, &caller.actor, &channel, &notification)
        .await?;
    Ok(Json(NotificationAck {
        payment_id: notified.payment.id.to_string(),
        applied: notified.applied,
        status: notified.payment.status.as_str().to_owned(),
    }))
}

/// Every configured channel: up or down (and why), failures, backups.
#[utoipa::path(get, path = "/v1/admin/channels", tag = "channels",
    responses((status = 200, body = Vec<ChannelHealth>), (status = 403, body = Problem)))]
pub async fn list(State(app): State<Arc<App>>, caller: Caller) -> Result<Json<Vec<ChannelHealth>>, Problem> {
    app.authorize(&caller, Operation::ChannelRead, None).await?;
    let channels = app.orchestrator.gateway.channel_ids();
    let health = app
        .orchestrator
        .routing
        .current_health(&app.vault, channels)
        .await?;
    Ok(Json(health))
}

pub(super) struct SetChannelState;

impl Mutation for SetChannelState {
    const OPERATION: Operation = Operation::ChannelManage;
    type Path = ChannelId;
    type Body = JsonBody<ChannelStateRequest>;
    type Done = ChannelHealth;

    async fn apply(input: Input<'_, Self>, _record: &Remembering<Self>) -> Result<ChannelHealth, Problem> {
        let app = input.app;
        let channel = input.path;
        if !app.orchestrator.gateway.has_channel(&channel) {
            return Err(Problem::not_found("channel"));
        }
        let JsonBody(r) = input.body;
        // The change and its audit record are one write, shared by every node.
        Ok(app
            .orchestrator
            .routing
            .set_down(&app.vault, &input.caller.actor, &channel, r.down)
            .await?)
    }

    fn answer(health: &ChannelHealth) -> Result<Answer, Problem> {
        Answer::json(StatusCode::OK, health)
    }
}

/// Mark a channel down (debits go to its backups) or up again.
#[utoipa::path(put, path = "/v1/admin/channels/{channel}", tag = "channels",
    params(("channel" = String, Path), ("Idempotency-Key" = String, Header)), request_body = ChannelStateRequest,
    responses((status = 200, body = ChannelHealth), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn set_state(request: Mutate<SetChannelState>) -> Result<Response, Problem> {
    request.run().await
}
