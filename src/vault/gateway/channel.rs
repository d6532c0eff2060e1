//! The `Channel` trait the gateway calls, and its adapter for the quick-pay
//! protocol `bank-sim` speaks. Another bank's protocol is another adapter.

use crate::channel::protocol::{
    ApplyRequest, ApplyResponse, CancelRequest, CancelResponse, ConfirmRequest, ConfirmResponse,
    OrderRequest, OrderState, PayRequest, RefundRequest, RefundResponse, Refusal, RefusalCode, APPLY_PATH,
    CANCEL_PATH, CLOSE_PATH, CONFIRM_PATH, PAY_PATH, QUERY_PATH, REFUND_PATH,
};
use crate::channel::statement::{StatementPart, StatementRequest, STATEMENT_PATH};
use crate::channel::{Bounds, ChannelClient, ClientError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::future::Future;
use std::pin::Pin;

pub(in crate::vault) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How a channel call failed.
#[derive(Debug)]
pub(in crate::vault) enum ChannelFailure {
    /// The bank answered no, with its reason.
    Refused(RefusalCode),
    /// Not reached, or the bank said "try later": the call did nothing.
    Unavailable(String),
    /// Sent, but no answer (time-out, cut connection): the bank may or
    /// may not have acted.
    Unanswered(String),
    /// An answer outside the protocol.
    Protocol(String),
}

impl From<ClientError> for ChannelFailure {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Timeout(_) | ClientError::Interrupted(_) | ClientError::Body(_) => {
                ChannelFailure::Unanswered(e.to_string())
            }
            _ => ChannelFailure::Unavailable(e.to_string()),
        }
    }
}

pub(in crate::vault) trait Channel: Send + Sync {
    fn apply(&self, request: ApplyRequest) -> BoxFuture<'_, Result<ApplyResponse, ChannelFailure>>;
    fn confirm(&self, request: ConfirmRequest) -> BoxFuture<'_, Result<ConfirmResponse, ChannelFailure>>;
    fn cancel(&self, request: CancelRequest) -> BoxFuture<'_, Result<CancelResponse, ChannelFailure>>;
    fn pay(&self, request: PayRequest) -> BoxFuture<'_, Result<OrderState, ChannelFailure>>;
    fn query(&self, request: OrderRequest) -> BoxFuture<'_, Result<OrderState, ChannelFailure>>;
    fn close(&self, request: OrderRequest) -> BoxFuture<'_, Result<OrderState, ChannelFailure>>;
    fn refund(&self, request: RefundRequest) -> BoxFuture<'_, Result<RefundResponse, ChannelFailure>>;
    fn statement(&self, request: StatementRequest) -> BoxFuture<'_, Result<StatementPart, ChannelFailure>>;
}

/// The quick-pay JSON protocol over mutual TLS.
pub(in crate::vault) struct QuickPay {
    pub client: ChannelClient,
}

/// One JSON call: `request` serialized and wiped, the answer parsed, a
/// refusal mapped to its code (retryable ones to `Unavailable`).
pub(in crate::vault) async fn call_json<Req: Serialize, Resp: DeserializeOwned>(
    client: &ChannelClient,
    path: &str,
    request: Req,
) -> Result<Resp, ChannelFailure> {
    call_json_within(client, path, request, None).await
}

/// A day's statement comes in parts, each of which a channel may make as
/// large as it likes within these bounds (not a call's): a part of 64 MiB
/// is some 600,000 lines.
const STATEMENT_BOUNDS: Bounds = Bounds {
    limit: 64 * 1024 * 1024,
    timeout: std::time::Duration::from_secs(120),
};

/// `call_json`, the answer read within `bounds` where given.
async fn call_json_within<Req: Serialize, Resp: DeserializeOwned>(
    client: &ChannelClient,
    path: &str,
    request: Req,
    bounds: Option<Bounds>,
) -> Result<Resp, ChannelFailure> {
    let body = serde_json::to_vec(&request).map_err(|e| ChannelFailure::Protocol(e.to_string()))?;
    // The request's own Zeroizing fields are wiped here; the serialized
    // copy goes to hyper, which does not zeroize its buffers.
    drop(request);
    let reply = match bounds {
        Some(bounds) => client.post_json_within(path, body, bounds).await?,
        None => client.post_json(path, body).await?,
    };
    if (200..300).contains(&reply.status) {
        return serde_json::from_slice(&reply.body)
            .map_err(|_| ChannelFailure::Protocol(format!("{path}: unreadable answer")));
    }
    match serde_json::from_slice::<Refusal>(&reply.body) {
        Ok(refusal) if refusal.code.retryable() => Err(ChannelFailure::Unavailable(format!(
            "{path}: {}",
            refusal.code.as_str()
        ))),
        Ok(refusal) => Err(ChannelFailure::Refused(refusal.code)),
        Err(_) if reply.status >= 500 => Err(ChannelFailure::Unavailable(format!(
            "{path}: HTTP {}",
            reply.status
        ))),
        Err(_) => Err(ChannelFailure::Protocol(format!("{path}: HTTP {}", reply.status))),
    }
}

impl Channel for QuickPay {
    fn apply(&self, request: ApplyRequest) -> BoxFuture<'_, Result<ApplyResponse, ChannelFailure>> {
        Box::pin(call_json(&self.client, APPLY_PATH, request))
    }
    fn confirm(&self, request: ConfirmRequest) -> BoxFuture<'_, Result<ConfirmResponse, ChannelFailure>> {
        Box::pin(call_json(&self.client, CONFIRM_PATH, request))
    }
    fn cancel(&self, request: CancelRequest) -> BoxFuture<'_, Result<CancelResponse, ChannelFailure>> {
        Box::pin(call_json(&self.client, CANCEL_PATH, request))
    }
    fn pay(&self, request: PayRequest) -> BoxFuture<'_, Result<OrderState, ChannelFailure>> {
        Box::pin(call_json(&self.client, PAY_PATH, request))
    }
    fn query(&self, request: OrderRequest) -> BoxFuture<'_, Result<OrderState, ChannelFailure>> {
        Box::pin(call_json(&self.client, QUERY_PATH, request))
    }
    fn close(&self, request: OrderRequest) -> BoxFuture<'_, Result<OrderState, ChannelFailure>> {
        Box::pin(call_json(&self.client, CLOSE_PATH, request))
    }
    fn refund(&self, request: RefundRequest) -> BoxFuture<'_, Result<RefundResponse, ChannelFailure>> {
        Box::pin(call_json(&self.client, REFUND_PATH, request))
    }
    fn statement(&self, request: StatementRequest) -> BoxFuture<'_, Result<StatementPart, ChannelFailure>> {
        Box::pin(call_json_within(
            &self.client,
            STATEMENT_PATH,
            request,
            Some(STATEMENT_BOUNDS),
        ))
    }
}
