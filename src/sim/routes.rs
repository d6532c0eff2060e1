//! The simulator's HTTP surface: quick-pay and carrier calls for the
//! gateway's identity, admin calls (faults, SMS outbox, agreements) for the
//! admin identity only.

use crate::api::Peer;
use crate::channel::protocol::{
    ApplyRequest, CancelRequest, CancelResponse, ConfirmRequest, OrderRequest, PayRequest, RefundRequest,
    Refusal, RefusalCode, SmsRequest, SmsResponse, APPLY_PATH, CANCEL_PATH, CLOSE_PATH, CONFIRM_PATH,
    PAY_PATH, QUERY_PATH, REFUND_PATH, SMS_PATH,
};
use crate::channel::ClientTls;
use crate::sim::bank::Bank;
use crate::sim::faults::Faults;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::Arc;

pub struct Sim {
    pub bank: Bank,
    pub client_identity: String,
    pub admin_identity: String,
    pub expose_sms: bool,
    /// The bank's client identity for posting notifications to the platform.
    pub notify_tls: ClientTls,
    /// What the bank signs each notification with, beside its certificate.
    pub signing_key: crate::ed25519::SigningKey,
}

fn status_of(code: RefusalCode) -> StatusCode {
    match code {
        RefusalCode::ApplyUnknown | RefusalCode::AgreementUnknown => StatusCode::NOT_FOUND,
        RefusalCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        RefusalCode::SystemError => StatusCode::INTERNAL_SERVER_ERROR,
        RefusalCode::BadRequest => StatusCode::BAD_REQUEST,
        RefusalCode::Forbidden => StatusCode::FORBIDDEN,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

fn answer<T: Serialize>(result: Result<T, Refusal>) -> Response {
    match result {
        Ok(value) => Json(value).into_response(),
        Err(refusal) => (status_of(refusal.code), Json(refusal)).into_response(),
    }
}

fn refusal(code: RefusalCode, message: &str) -> Refusal {
    Refusal {
        code,
        message: message.to_owned(),
    }
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Refusal> {
    serde_json::from_slice(body).map_err(|_| refusal(RefusalCode::BadRequest, "malformed request"))
}

fn caller_is(peer: &Peer, expected: &str) -> Result<(), Refusal> {
    match &peer.identity {
        Ok(identity) if identity.to_string() == expected => Ok(()),
        _ => Err(refusal(RefusalCode::Forbidden, "this identity may not call this")),
    }
}

pub fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route(APPLY_PATH, post(apply))
        .route(CONFIRM_PATH, post(confirm))
        .route(CANCEL_PATH, post(cancel))
        .route(SMS_PATH, post(carrier))
        .route(PAY_PATH, post(pay))
        .route(QUERY_PATH, post(query))
        .route(CLOSE_PATH, post(close))
        .route(REFUND_PATH, post(refund))
        .route(crate::channel::statement::STATEMENT_PATH, post(statement))
        .route("/sim/admin/orders", get(orders))
        .route("/sim/admin/faults", get(read_faults).put(write_faults))
        .route("/sim/admin/sms", get(outbox))
        .route("/sim/admin/sms/{phone}", get(outbox_of))
        .route("/sim/admin/agreements", get(agreements))
        .route("/sim/admin/orders/{order_no}/decision", post(decide))
        .route("/sim/admin/ledger/seed", post(seed_ledger))
        .with_state(sim)
}

/// Identity, then faults, then the body.
async fn quickpay<T: DeserializeOwned>(sim: &Sim, peer: &Peer, body: &[u8]) -> Result<T, Refusal> {
    caller_is(peer, &sim.client_identity)?;
    sim.bank.faults().before_call().await?;
    parse(body)
}

async fn apply(State(sim): State<Arc<Sim>>, Extension(peer): Extension<Peer>, body: Bytes) -> Response {
    let result = async {
        let request: ApplyRequest = quickpay(&sim, &peer, &body).await?;
        sim.bank.apply(&request)
    }
    .await;
    answer(result)
}

async fn confirm(State(sim): State<Arc<Sim>>, Extension(peer): Extension<Peer>, body: Bytes) -> Response {
    let result = async {
        let request: ConfirmRequest = quickpay(&sim, &peer, &body).await?;
        sim.bank.confirm(&request)
    }
    .await;
    answer(result)
}

async fn cancel(State(sim): State<Arc<Sim>>, Extension(peer): Extension<Peer>, body: Bytes) -> Response {
    let result = async {
        let request: CancelRequest = quickpay(&sim, &peer, &body).await?;
        sim.bank.cancel(&request)?;
        Ok(CancelResponse { cancelled: true })
    }
    .await;
    answer(result)
}

async fn pay(State(sim): State<Arc<Sim>>, Extension(peer): Extension<Peer>, body: Bytes) -> Response {
    let result = async {
        let request: PayRequest = quickpay(&sim, &peer, &body).await?;
        let (state, delivery) = sim.bank.pay(&request)?;
        if let Some(delivery) = delivery {
            tokio::spawn(crate::sim::notify::deliver(Arc::clone(&sim), delivery));
        }
        Ok(state)
    }
    .await;
    answer(result)
}

async fn query(State(sim): State<Arc<Sim>>, Extension(peer): Extension<Peer>, body: Bytes) -> Response {
    let result = async {
        let request: OrderRequest = quickpay(&sim, &peer, &body).await?;
        sim.bank.query(&request)
    }
    .await;
    answer(result)
}

async fn close(State(sim): State<Arc<Sim>>, Extension(peer): Extension<Peer>, body: Bytes) -> Response {
    let result = async {
        let request: OrderRequest = quickpay(&sim, &peer, &body).await?;
        sim.bank.close(&request)
    }
    .await;
    answer(result)
}

async fn refund(State(sim): State<Arc<Sim>>, Extension(peer): Extension<Peer>, body: Bytes) -> Response {
    let result = async {
        let request: RefundRequest = quickpay(&sim, &peer, &body).await?;
        sim.bank.refund(&request)
    }
    .await;
    answer(result)
}

/// A settlement date's statement, to the merchant that asks for it.
async fn statement(State(sim): State<Arc<Sim>>, Extension(peer): Extension<Peer>, body: Bytes) -> Response {
    let result = async {
        let request: crate::channel::statement::StatementRequest = quickpay(&sim, &peer, &body).await?;
        sim.bank.statement(&request)
    }
    .await;
    answer(result)
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    outcome: crate::sim::payments::Decision,
}

/// Admin: the bank's back office decides an order in flight
/// (`Bank::decide`); the platform hears of it only by querying.
async fn decide(
    State(sim): State<Arc<Sim>>,
    Extension(peer): Extension<Peer>,
    Path(order_no): Path<String>,
    body: Bytes,
) -> Response {
    let result = (|| {
        caller_is(&peer, &sim.admin_identity)?;
        let body: DecisionBody = parse(&body)?;
        sim.bank
            .decide(&order_no, body.outcome)
            .ok_or_else(|| refusal(RefusalCode::OrderUnknown, "no such order"))
    })();
    answer(result)
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedBody {
    merchant_id: String,
    count: u64,
    at: i64,
}

/// Admin: seeds the ledger with `count` payments for a benchmark
/// (`sim::seed`); answers how many lines the ledger holds seeded.
async fn seed_ledger(State(sim): State<Arc<Sim>>, Extension(peer): Extension<Peer>, body: Bytes) -> Response {
    let result = (|| {
        caller_is(&peer, &sim.admin_identity)?;
        let body: SeedBody = parse(&body)?;
        sim.bank.seed_ledger(&body.merchant_id, body.count, body.at);
        Ok(serde_json::json!({ "seeded": body.count }))
    })();
    answer(result)
}

async fn orders(State(sim): State<Arc<Sim>>, Extension(peer): Extension<Peer>) -> Response {
    answer(caller_is(&peer, &sim.admin_identity).map(|()| sim.bank.order_views()))
}

/// The carrier takes no bank faults: "the bank is down" must not stop the
/// platform's own SMS.
async fn carrier(State(sim): State<Arc<Sim>>, Extension(peer): Extension<Peer>, body: Bytes) -> Response {
    let result = (|| {
        caller_is(&peer, &sim.client_identity)?;
        let request: SmsRequest = parse(&body)?;
        Ok(SmsResponse {
            message_id: sim.bank.carrier_send(&request),
        })
    })();
    answer(result)
}

async fn read_faults(State(sim): State<Arc<Sim>>, Extension(peer): Extension<Peer>) -> Response {
    answer(caller_is(&peer, &sim.admin_identity).map(|()| sim.bank.faults()))
}

async fn write_faults(
    State(sim): State<Arc<Sim>>,
    Extension(peer): Extension<Peer>,
    body: Bytes,
) -> Response {
    let result = (|| {
        caller_is(&peer, &sim.admin_identity)?;
        let faults: Faults = parse(&body)?;
        faults.check().map_err(|m| refusal(RefusalCode::BadRequest, m))?;
        tracing::info!(?faults, "faults changed");
        sim.bank.set_faults(faults.clone());
        Ok(faults)
    })();
    answer(result)
}

/// Test-only: what the bank and the carrier "sent". Off unless the
/// simulator was started with `--expose-sms`.
fn sent(sim: &Sim, peer: &Peer, phone: Option<&str>) -> Response {
    if !sim.expose_sms {
        return answer::<()>(Err(refusal(RefusalCode::Forbidden, "start with --expose-sms")));
    }
    answer(caller_is(peer, &sim.admin_identity).map(|()| sim.bank.outbox(phone)))
}

async fn outbox(State(sim): State<Arc<Sim>>, Extension(peer): Extension<Peer>) -> Response {
    sent(&sim, &peer, None)
}

async fn outbox_of(
    State(sim): State<Arc<Sim>>,
    Extension(peer): Extension<Peer>,
    Path(phone): Path<String>,
) -> Response {
    sent(&sim, &peer, Some(&phone))
}

async fn agreements(State(sim): State<Arc<Sim>>, Extension(peer): Extension<Peer>) -> Response {
    answer(caller_is(&peer, &sim.admin_identity).map(|()| sim.bank.agreements()))
}
