//! POST /v1/payments (debit), GET /v1/payments/{payment_id},
//! GET /v1/merchants/{merchant}/orders/{order_id},
//! POST /v1/payments/{payment_id}/confirm, /refunds, /cancel,
//! GET /v1/payments/{payment_id}/refunds/{refund_id}

use super::idempotency::Answer;
use super::mutation::{Input, JsonBody, Mutate, Mutation, NoBody, Remembering};
use super::path_id::{NoPath, OrderPath, RefundPath};
use super::payment_dto::{
    ConfirmPaymentRequest, DebitRequest, PaymentResponse, RefundRequest, RefundResponse,
};
use super::problem::Problem;
use super::query::{Query, Read, Reading};
use crate::domain::ids::{ChannelId, Currency, MerchantId};
use crate::domain::operation::Operation;
use crate::domain::time::Timestamp;
use crate::orchestration::payment::{OrderId, Refund, RefundId};
use crate::orchestration::{ConfirmCode, Debit, PaymentId, PaymentStatus, PaymentView};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;

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

pub(super) struct DebitCall;

impl Mutation for DebitCall {
    const OPERATION: Operation = Operation::PaymentDebit;
    type Path = NoPath;
    type Body = JsonBody<DebitRequest>;
    /// The payment, and whether this call created it.
    type Done = (PaymentView, bool);

    async fn apply(
        input: Input<'_, Self>,
        record: &Remembering<Self>,
    ) -> Result<(PaymentView, bool), Problem> {
        let JsonBody(r) = &input.body;
        let token_range = &input.app.vault.config().token_range;
        let mut check = input.checks();
        let token = check.take("token", token_range.parse_token(&r.token));
        let order_id = check.take("order_id", OrderId::parse(&r.order_id));
        let amount = check.take("amount", input.app.amount_ceiling.amount(r.amount));
        let currency = check.take("currency", Currency::parse(&r.currency));
        let channel = check.take("channel", ChannelId::parse(&r.channel));
        let merchant = check.take("merchant", MerchantId::parse(&r.merchant));
        check.done().await?;
        // `done` passed, so every field parsed.
        let (Some(token), Some(order_id), Some(amount), Some(currency), Some(channel), Some(merchant)) =
            (token, order_id, amount, currency, channel, merchant)
        else {
            return Err(Problem::internal());
        };
        let debit = Debit {
            token,
            order_id,
            amount: amount.minor_units(),
            currency,
            channel,
            merchant,
            expires_at: Timestamp(r.expires_at),
        };
        Ok(input
            .app
            .orchestrator
            .debit(&input.app.vault, &input.caller.actor, debit, record)
            .await?)
    }

    fn answer((view, created): &(PaymentView, bool)) -> Result<Answer, Problem> {
        payment_answer(view.clone(), *created)
    }
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
pub async fn debit(request: Mutate<DebitCall>) -> Result<Response, Problem> {
    request.run().await
}

/// One payment (masked card, route used, status, refunds). A payment still
/// processing is first asked about at its channel.
#[utoipa::path(get, path = "/v1/payments/{payment_id}", tag = "payments", params(("payment_id" = String, Path)),
    responses((status = 200, body = PaymentResponse), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn read(request: Read<ReadPayment>) -> Result<Json<PaymentResponse>, Problem> {
    request.run().await
}

pub(super) struct ReadPayment;

impl Query for ReadPayment {
    const OPERATION: Operation = Operation::PaymentRead;
    type Path = PaymentId;
    type Answer = PaymentResponse;

    async fn read(input: Reading<'_, Self>) -> Result<PaymentResponse, Problem> {
        let app = input.app;
        let view = app
            .orchestrator
            .payment(&app.vault, &input.caller.actor, &input.path)
            .await?;
        Ok(PaymentResponse::from(view))
    }
}

/// The payment of a merchant's order.
#[utoipa::path(get, path = "/v1/merchants/{merchant}/orders/{order_id}", tag = "payments",
    params(("merchant" = String, Path), ("order_id" = String, Path)),
    responses((status = 200, body = PaymentResponse), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn by_order(request: Read<ReadOrder>) -> Result<Json<PaymentResponse>, Problem> {
    request.run().await
}

pub(super) struct ReadOrder;

impl Query for ReadOrder {
    const OPERATION: Operation = Operation::PaymentRead;
    type Path = OrderPath;
    type Answer = PaymentResponse;

    async fn read(input: Reading<'_, Self>) -> Result<PaymentResponse, Problem> {
        let (app, OrderPath { merchant, order }) = (input.app, &input.path);
        let view = app
            .orchestrator
            .payment_by_order(&app.vault, &input.caller.actor, merchant, order)
            .await?;
        Ok(PaymentResponse::from(view))
    }
}

pub(super) struct ConfirmPayment;

impl Mutation for ConfirmPayment {
    const OPERATION: Operation = Operation::PaymentConfirm;
    type Path = PaymentId;
    type Body = JsonBody<ConfirmPaymentRequest>;
    type Done = PaymentView;

    async fn apply(input: Input<'_, Self>, record: &Remembering<Self>) -> Result<PaymentView, Problem> {
        let JsonBody(r) = &input.body;
        let code = input.field("code", ConfirmCode::parse(&r.code)).await?;
        Ok(input
            .app
            .orchestrator
            .confirm_payment(&input.app.vault, &input.caller.actor, &input.path, code, record)
            .await?)
    }

    fn answer(view: &PaymentView) -> Result<Answer, Problem> {
        payment_answer(view.clone(), true)
    }
}

/// The SMS code of a debit that signs at a backup channel first: signs
/// there and pays, in this one step.
#[utoipa::path(post, path = "/v1/payments/{payment_id}/confirm", tag = "payments",
    params(("payment_id" = String, Path), ("Idempotency-Key" = String, Header)),
    request_body = ConfirmPaymentRequest,
    responses((status = 200, body = PaymentResponse), (status = 202, body = PaymentResponse), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem), (status = 503, body = Problem)))]
pub async fn confirm(request: Mutate<ConfirmPayment>) -> Result<Response, Problem> {
    request.run().await
}

pub(super) struct RefundCall;

impl Mutation for RefundCall {
    const OPERATION: Operation = Operation::PaymentRefund;
    type Path = PaymentId;
    type Body = JsonBody<RefundRequest>;
    /// The refund, and whether this call created it.
    type Done = (Refund, bool);

    async fn apply(input: Input<'_, Self>, record: &Remembering<Self>) -> Result<(Refund, bool), Problem> {
        let JsonBody(r) = &input.body;
        let refund_id = input.field("refund_id", RefundId::parse(&r.refund_id)).await?;
        let amount = input
            .field("amount", input.app.amount_ceiling.amount(r.amount))
            .await?;
        Ok(input
            .app
            .orchestrator
            .refund(
                &input.app.vault,
                &input.caller.actor,
                &input.path,
                &refund_id,
                amount.minor_units(),
                record,
            )
            .await?)
    }

    fn answer((refund, created): &(Refund, bool)) -> Result<Answer, Problem> {
        let status = if *created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        Answer::json(status, &RefundResponse::from(refund.clone()))
    }
}

/// Refund part or all of a succeeded payment. Refused while the payment is
/// in flight and beyond the captured amount. Refunds do not give back the
/// token's uses or cumulative amount.
#[utoipa::path(post, path = "/v1/payments/{payment_id}/refunds", tag = "payments",
    params(("payment_id" = String, Path), ("Idempotency-Key" = String, Header)),
    request_body = RefundRequest,
    responses((status = 201, body = RefundResponse), (status = 200, body = RefundResponse), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem), (status = 503, body = Problem)))]
pub async fn refund(request: Mutate<RefundCall>) -> Result<Response, Problem> {
    request.run().await
}

/// One refund of a payment.
#[utoipa::path(get, path = "/v1/payments/{payment_id}/refunds/{refund_id}", tag = "payments",
    params(("payment_id" = String, Path), ("refund_id" = String, Path)),
    responses((status = 200, body = RefundResponse), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn read_refund(request: Read<ReadRefund>) -> Result<Json<RefundResponse>, Problem> {
    request.run().await
}

pub(super) struct ReadRefund;

impl Query for ReadRefund {
    const OPERATION: Operation = Operation::PaymentRead;
    type Path = RefundPath;
    type Answer = RefundResponse;

    async fn read(input: Reading<'_, Self>) -> Result<RefundResponse, Problem> {
        let (app, RefundPath { payment, refund }) = (input.app, &input.path);
        let refund = app
            .orchestrator
            .refund_of(&app.vault, &input.caller.actor, payment, refund)
            .await?;
        Ok(RefundResponse::from(refund))
    }
}

pub(super) struct CancelPayment;

impl Mutation for CancelPayment {
    const OPERATION: Operation = Operation::PaymentCancel;
    type Path = PaymentId;
    type Body = NoBody;
    type Done = PaymentView;

    async fn apply(input: Input<'_, Self>, record: &Remembering<Self>) -> Result<PaymentView, Problem> {
        Ok(input
            .app
            .orchestrator
            .cancel_payment(&input.app.vault, &input.caller.actor, &input.path, record)
            .await?)
    }

    fn answer(view: &PaymentView) -> Result<Answer, Problem> {
        Answer::json(StatusCode::OK, &PaymentResponse::from(view.clone()))
    }
}

/// Cancel (撤销): an unpaid order is closed; a paid one is refunded in full
/// within the cancel window. Repeats answer with the payment as it stands.
#[utoipa::path(post, path = "/v1/payments/{payment_id}/cancel", tag = "payments",
    params(("payment_id" = String, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = PaymentResponse), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 503, body = Problem)))]
pub async fn cancel(request: Mutate<CancelPayment>) -> Result<Response, Problem> {
    request.run().await
}
