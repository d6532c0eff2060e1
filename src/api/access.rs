//! Request ids and the access log, from tower-http: every request carries an
//! `x-request-id` (the caller's when it is well formed, a fresh random one
//! otherwise) into its audit records, its log span and its response.
//!
//! The log names the route template, never the path: a path segment may be
//! a token number, or a card number sent by mistake.

use super::caller::Peer;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue};
use axum::Router;
use tower_http::classify::ServerErrorsFailureClass;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tower_http::LatencyUnit;
use tracing::Level;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

fn header_name() -> HeaderName {
    HeaderName::from_static(REQUEST_ID_HEADER)
}

/// Wraps `router` in the request-id and access-log layers.
pub fn logged<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router
        .layer(PropagateRequestIdLayer::new(header_name()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(span_for)
                .on_response(
                    DefaultOnResponse::new()
                        .level(Level::INFO)
                        .latency_unit(LatencyUnit::Micros),
                )
                .on_failure(
                    |class: ServerErrorsFailureClass, latency: std::time::Duration, _span: &tracing::Span| {
                        tracing::warn!(%class, latency_us = latency.as_micros(), "request failed");
                    },
                ),
        )
        .layer(SetRequestIdLayer::new(header_name(), FreshRequestId))
        .layer(axum::middleware::map_request(drop_malformed_request_id))
}

/// The request id of a request that went through `logged`.
pub fn request_id(request: &Request) -> String {
    request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Puts the request id where `Caller` reads it, for routers without the
/// API's own `observe` layer.
pub async fn with_request_id(mut request: Request) -> Request {
    let id = request_id(&request);
    request.extensions_mut().insert(super::caller::RequestId(id));
    request
}

fn span_for(request: &Request) -> tracing::Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    let caller = match request.extensions().get::<Peer>().map(|peer| &peer.identity) {
        Some(Ok(identity)) => identity.to_string(),
        _ => "unidentified".to_owned(),
    };
    tracing::info_span!(
        "request",
        id = %request_id(request),
        method = %request.method(),
        route,
        caller = %caller,
    )
}

/// A caller's id is kept only when it is 1-64 of `[A-Za-z0-9_-]` and holds
/// no card, resident ID or mobile number: it lands in audit records and
/// logs, so it must not carry arbitrary text or personal data.
fn well_formed(id: &[u8]) -> bool {
    (1..=64).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
        && std::str::from_utf8(id).is_ok_and(|id| crate::domain::personal_numbers::find(id).is_none())
}

async fn drop_malformed_request_id(mut request: Request) -> Request {
    let headers = request.headers_mut();
    let ids = headers.get_all(REQUEST_ID_HEADER);
    let mut ids = ids.iter();
    let keep = matches!((ids.next(), ids.next()), (Some(id), None) if well_formed(id.as_bytes()));
    if !keep {
        headers.remove(REQUEST_ID_HEADER);
    }
    request
}

#[derive(Clone, Copy)]
struct FreshRequestId;

impl MakeRequestId for FreshRequestId {
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<RequestId> {
        let id = crate::domain::random::array::<12>()
            .map(|b| crate::hex::encode(&b))
            .unwrap_or_else(|_| "unavailable".to_owned());
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

#[cfg(test)]
mod tests {
    use super::well_formed;

    #[test]
    fn only_short_plain_ids_are_kept() {
        assert!(well_formed(b"req-1_A"));
        assert!(well_formed(&[b'a'; 64]));
        assert!(!well_formed(&[b'a'; 65]));
        assert!(!well_formed(b""));
        assert!(!well_formed(b"id with space"));
        assert!(!well_formed(b"4242424242424242\n"));
    }
}
