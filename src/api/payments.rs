//! POST /v1/payments (debit), GET /v1/payments/{payment_id},
//! GET /v1/merchants/{merchant}/orders/{order_id},
//! POST /v1/payments/{payment_id}/confirm, /refunds, /cancel,
//! GET /v1/payments/{payment_id}/refunds/{refund_id}

use super::extract::{Body, Param, Params2};
use super::idempotency::{self, Answer};
use super::payment_dto::{
    ConfirmPaymentRequest, DebitRequest, PaymentResponse, RefundRequest, RefundResponse,
};
use super::problem::Problem;
use super::{App, Caller};
use crate::domain::ids::{ChannelId, Currency, MerchantId};
use crate::domain::operation::Operation;
use crate::domain::time::Timestamp;
use crate::orchestration::payment::{OrderId, RefundId};
use crate::orchestration::{ConfirmCode, Debit, PaymentId, PaymentStatus, PaymentView};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use std::sync::Arc;

/// A payment as answered: a failed one is a problem naming the bank's (or
/// the route's) reason; one still in flight is 202.
fn payment_answer(view: PaymentView, created: bool) -> Result<Answer, Problem> {
    if created && view.status == PaymentStatus::Failed {
        let reason = view.failure.clone().unwrap_or_else(|| "failed".to_owned());
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "payment-failed",
            "Payment failed",
            format!("payment {} failed: {reason}", view.id),
        )
        .with_field("payment_id", reason));
    }
    let status = match (created, view.status.in_flight()) {
        (_, true) => StatusCode::ACCEPTED,
        (true, false) => StatusCode::CREATED,
        (false, false) => StatusCode::OK,
    };
    Answer::json(status, &PaymentResponse::from(view))
}

/// Debit a payment token. The token's domain controls are reserved
/// atomically; the bank answers at once (201), or later (202: processing,
/// user_paying, or awaiting_code when a backup channel signs first). A
/// repeated order with the same terms returns the existing payment (200).
#[utoipa::path(post, path = "/v1/payments", tag = "payments",
    params(("Idempotency-Key" = String, Header, description = "Required; replays the first answer")),
    request_body = DebitRequest,
    responses((status = 201, body = PaymentResponse), (status = 202, body = PaymentResponse), (status = 200, body = PaymentResponse),
        (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem), (status = 503, body = Problem)))]
pub async fn debit(
    State(app): State<Arc<App>>,
    caller: Caller,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, Problem> {
    let op = Operation::PaymentDebit;
    app.authorize(&caller, op, None).await?;
    let key = idempotency::key(&headers)?;
    app.idempotent(
        &caller.actor.identity,
        &key,
        "POST",
        "/v1/payments",
        &body,
        || async {
            let r: DebitRequest = app.parse_body(&caller, op, &headers, &body).await?;
            let debit = Debit {
                token: app
                    .field(
                        &caller,
                        op,
                        "token",
                        app.vault.config().token_range.parse_token(&r.token),
                    )
                    .await?,
                order_id: app
                    .field(&caller, op, "order_id", OrderId::parse(&r.order_id))
                    .await?,
                amount: r.amount,
                currency: app
                    .field(&caller, op, "currency", Currency::parse(&r.currency))
                    .await?,
                channel: app
                    .field(&caller, op, "channel", ChannelId::parse(&r.channel))
                    .await?,
                merchant: app
                    .field(&caller, op, "merchant", MerchantId::parse(&r.merchant))
                    .await?,
                expires_at: Timestamp(r.expires_at),
            };
            let (view, created) = app.orchestrator.debit(&app.vault, &caller.actor, debit).await?;
            payment_answer(view, created)
        },
    )
    .await
}

async fn payment_id(app: &App, caller: &Caller, op: Operation, text: &str) -> Result<PaymentId, Problem> {
    app.field(caller, op, "payment_id", PaymentId::parse(text)).await
}

/// One payment (masked card, route used, status, refunds). A payment still
/// processing is first asked about at its channel.
#[utoipa::path(get, path = "/v1/payments/{payment_id}", tag = "payments", params(("payment_id" = String, Path)),
    responses((status = 200, body = PaymentResponse), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn read(
    State(app): State<Arc<App>>,
    caller: Caller,
    Param(id): Param,
) -> Result<Json<PaymentResponse>, Problem> {
    let op = Operation::PaymentRead;
    app.authorize(&caller, op, Some(app.object(&id, PaymentId::parse)))
        .await?;
    let id = payment_id(&app, &caller, op, &id).await?;
    let view = app.orchestrator.payment(&app.vault, &caller.actor, &id).await?;
    Ok(Json(PaymentResponse::from(view)))
}

/// The payment of a merchant's order.
#[utoipa::path(get, path = "/v1/merchants/{merchant}/orders/{order_id}", tag = "payments",
    params(("merchant" = String, Path), ("order_id" = String, Path)),
    responses((status = 200, body = PaymentResponse), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn by_order(
    State(app): State<Arc<App>>,
    caller: Caller,
    Params2(merchant, order): Params2,
) -> Result<Json<PaymentResponse>, Problem> {
    let op = Operation::PaymentRead;
    app.authorize(&caller, op, Some(app.order_object(&merchant, &order)))
        .await?;
    let merchant = app
        .field(&caller, op, "merchant", MerchantId::parse(&merchant))
        .await?;
    let order = app.field(&caller, op, "order_id", OrderId::parse(&order)).await?;
    let view = app
        .orchestrator
        .payment_by_order(&app.vault, &caller.actor, &merchant, &order)
        .await?;
    Ok(Json(PaymentResponse::from(view)))
}

/// The SMS code of a debit that signs at a backup channel first: signs
/// there and pays, in this one step.
#[utoipa::path(post, path = "/v1/payments/{payment_id}/confirm", tag = "payments",
    params(("payment_id" = String, Path), ("Idempotency-Key" = String, Header)),
    request_body = ConfirmPaymentRequest,
    responses((status = 200, body = PaymentResponse), (status = 202, body = PaymentResponse), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem), (status = 503, body = Problem)))]
pub async fn confirm(
    State(app): State<Arc<App>>,
    caller: Caller,
    Param(id): Param,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, Problem> {
    let op = Operation::PaymentConfirm;
    app.authorize(&caller, op, Some(app.object(&id, PaymentId::parse)))
        .await?;
    let key = idempotency::key(&headers)?;
    let path = format!("/v1/payments/{id}/confirm");
    app.idempotent(&caller.actor.identity, &key, "POST", &path, &body, || async {
        let id = payment_id(&app, &caller, op, &id).await?;
        let r: ConfirmPaymentRequest = app.parse_body(&caller, op, &headers, &body).await?;
        let code = app
            .field(&caller, op, "code", ConfirmCode::parse(&r.code))
            .await?;
        let view = app
            .orchestrator
            .confirm_payment(&app.vault, &caller.actor, &id, code)
            .await?;
        payment_answer(view, true)
    })
    .await
}

/// Refund part or all of a succeeded payment. Refused while the payment is
/// in flight and beyond the captured amount. Refunds do not give back the
/// token's uses or cumulative amount.
#[utoipa::path(post, path = "/v1/payments/{payment_id}/refunds", tag = "payments",
    params(("payment_id" = String, Path), ("Idempotency-Key" = String, Header)),
    request_body = RefundRequest,
    responses((status = 201, body = RefundResponse), (status = 200, body = RefundResponse), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem), (status = 503, body = Problem)))]
pub async fn refund(
    State(app): State<Arc<App>>,
    caller: Caller,
    Param(id): Param,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, Problem> {
    let op = Operation::PaymentRefund;
    app.authorize(&caller, op, Some(app.object(&id, PaymentId::parse)))
        .await?;
    let key = idempotency::key(&headers)?;
    let path = format!("/v1/payments/{id}/refunds");
    app.idempotent(&caller.actor.identity, &key, "POST", &path, &body, || async {
        let id = payment_id(&app, &caller, op, &id).await?;
        let r: RefundRequest = app.parse_body(&caller, op, &headers, &body).await?;
        let refund_id = app
            .field(&caller, op, "refund_id", RefundId::parse(&r.refund_id))
            .await?;
        let (refund, created) = app
            .orchestrator
            .refund(&app.vault, &caller.actor, &id, &refund_id, r.amount)
            .await?;
        let status = if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        Answer::json(status, &RefundResponse::from(refund))
    })
    .await
}

/// One refund of a payment.
#[utoipa::path(get, path = "/v1/payments/{payment_id}/refunds/{refund_id}", tag = "payments",
    params(("payment_id" = String, Path), ("refund_id" = String, Path)),
    responses((status = 200, body = RefundResponse), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn read_refund(
    State(app): State<Arc<App>>,
    caller: Caller,
    Params2(id, refund_id): Params2,
) -> Result<Json<RefundResponse>, Problem> {
    let op = Operation::PaymentRead;
    app.authorize(&caller, op, Some(app.object(&id, PaymentId::parse)))
        .await?;
    let id = payment_id(&app, &caller, op, &id).await?;
    let refund_id = app
        .field(&caller, op, "refund_id", RefundId::parse(&refund_id))
        .await?;
    let refund = app
        .orchestrator
        .refund_of(&app.vault, &caller.actor, &id, &refund_id)
        .await?;
    Ok(Json(RefundResponse::from(refund)))
}

/// Cancel (撤销): an unpaid order is closed; a paid one is refunded in full
/// within the cancel window. Repeats answer with the payment as it stands.
#[utoipa::path(post, path = "/v1/payments/{payment_id}/cancel", tag = "payments",
    params(("payment_id" = String, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = PaymentResponse), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 503, body = Problem)))]
pub async fn cancel(
    State(app): State<Arc<App>>,
    caller: Caller,
    Param(id): Param,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, Problem> {
    let op = Operation::PaymentCancel;
    app.authorize(&caller, op, Some(app.object(&id, PaymentId::parse)))
        .await?;
    let key = idempotency::key(&headers)?;
    let path = format!("/v1/payments/{id}/cancel");
    app.idempotent(&caller.actor.identity, &key, "POST", &path, &body, || async {
        let id = payment_id(&app, &caller, op, &id).await?;
        let view = app
            .orchestrator
            .cancel_payment(&app.vault, &caller.actor, &id)
            .await?;
        Answer::json(StatusCode::OK, &PaymentResponse::from(view))
    })
    .await
}
