//! `Idempotency-Key` on every mutating call: the first answer (2xx or 4xx)
//! is stored durably under the caller's identity and key, and a retry with the
//! same key and the same request gets that answer again without doing the
//! work twice. The same key with a different request is refused (422).
//!
//! The request is remembered by a keyed HMAC of method, path and body (the
//! body may hold a PAN, so an unkeyed hash would not do). A crash between the
//! operation and this record can still let a retry repeat the operation;
//! card storage is naturally idempotent (fingerprint), token issue is not.

use super::problem::Problem;
use super::App;
use crate::store::keyspace;
use crate::store::{Batch, Store};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::future::Future;

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED: &str = "idempotent-replayed";

#[derive(Serialize, Deserialize)]
struct Remembered {
    request_mac: [u8; 32],
    status: u16,
    problem: bool,
    body: Vec<u8>,
}

/// A valid key from the request headers: 1 to 128 of `A-Za-z0-9-_.:`.
pub fn key(headers: &HeaderMap) -> Result<String, Problem> {
    let bad = |rule: &str, detail: &str| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "idempotency-key",
            "Idempotency key",
            detail,
        )
        .with_field("Idempotency-Key", rule)
    };
    let value = headers
        .get(HEADER)
        .ok_or_else(|| bad("required", "every mutating call needs an Idempotency-Key header"))?;
    let text = value
        .to_str()
        .map_err(|_| bad("format", "the Idempotency-Key is 1 to 128 of A-Z a-z 0-9 - _ . :"))?;
    let ok = (1..=128).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    if !ok {
        return Err(bad(
            "format",
            "the Idempotency-Key is 1 to 128 of A-Z a-z 0-9 - _ . :",
        ));
    }
    Ok(text.to_owned())
}

/// What an operation answered, before it becomes a response.
pub struct Answer {
    pub status: StatusCode,
    pub body: Vec<u8>,
    pub problem: bool,
    /// Sent on the first answer only; a replay does not repeat a stale wait.
    pub retry_after: Option<u64>,
}

impl Answer {
    pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Result<Self, Problem> {
        let body = serde_json::to_vec(value).map_err(|_| Problem::internal())?;
        Ok(Answer {
            status,
            body,
            problem: false,
            retry_after: None,
        })
    }

    fn into_response(self, replayed: bool) -> Response {
        let content_type = if self.problem {
            super::problem::CONTENT_TYPE
        } else {
            "application/json"
        };
        let mut response = (self.status, self.body).into_response();
        response.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static(content_type),
        );
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if replayed {
            response
                .headers_mut()
                .insert(REPLAYED, HeaderValue::from_static("true"));
        }
        response
    }
}

impl From<Problem> for Answer {
    fn from(p: Problem) -> Self {
        Answer {
            status: p.status(),
            body: p.to_json(),
            problem: true,
            retry_after: p.retry_after_seconds(),
        }
    }
}

impl App {
    /// Runs `work` once per (identity, key); replays its stored answer after.
    pub async fn idempotent<F, Fut>(
        &self,
        identity: &str,
        key: &str,
        method: &str,
        path: &str,
        body: &[u8],
        work: F,
    ) -> Result<Response, Problem>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Answer, Problem>>,
    {
        let store_key = keyspace::IDEMPOTENCY.key(format_args!("{identity}/{key}"));
        let mut material = Vec::with_capacity(method.len() + path.len() + body.len() + 2);
        material.extend_from_slice(method.as_bytes());
        material.push(0);
        material.extend_from_slice(path.as_bytes());
        material.push(0);
        material.extend_from_slice(body);
        let request_mac = self.vault.request_fingerprint(&material);
        let _same_key_queues_here = self.idempotency_locks.lock(&store_key).await;
        let store = self.vault.store();
        if let Some(bytes) = store.get(&store_key).await.map_err(|_| Problem::internal())? {
            let remembered: Remembered = postcard::from_bytes(&bytes).map_err(|_| Problem::internal())?;
            if remembered.request_mac != request_mac {
                return Err(Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "idempotency-key-reused",
                    "Idempotency key reused",
                    "this Idempotency-Key was used for a different request",
                )
                .with_field("Idempotency-Key", "reused"));
            }
            let status = StatusCode::from_u16(remembered.status).map_err(|_| Problem::internal())?;
            return Ok(Answer {
                status,
                body: remembered.body,
                problem: remembered.problem,
                retry_after: None,
            }
            .into_response(true));
        }
        let answer = match work().await {
            Ok(answer) => answer,
            Err(problem) => Answer::from(problem),
        };
        // Server errors are not remembered: the caller should retry them.
        if !answer.status.is_server_error() {
            let remembered = Remembered {
                request_mac,
                status: answer.status.as_u16(),
                problem: answer.problem,
                body: answer.body.clone(),
            };
            let mut batch = Batch::new();
            batch.put(
                store_key,
                postcard::to_allocvec(&remembered).map_err(|_| Problem::internal())?,
            );
            store.commit(batch).await.map_err(|_| Problem::internal())?;
        }
        Ok(answer.into_response(false))
    }
}
