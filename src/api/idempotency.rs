//! `Idempotency-Key` on every mutating call: the first answer (2xx or 4xx)
//! is stored durably under the caller's identity and key, and a retry with the
//! same key and the same request gets that answer again without doing the
//! work twice. The same key with a different request is refused (422).
//!
//! The request is remembered by a keyed MAC of method, matched route, real
//! path and body (the body may hold a PAN, so an unkeyed hash would not do).
//! The record of a successful answer is written in the operation's own
//! atomic batch (`vault::Joined`): cards, identities, tokens, payment
//! passwords set and changed, binding starts, confirms and unbinds, and
//! the write of the bank's answer to a debit, payment confirm, refund or
//! cancel. A crash then leaves both the effect and its remembered answer,
//! or neither. Elsewhere (a pre-binding start, a password check, a bulk
//! store, a debit the bank did not answer) and for refusals, it is a second
//! write after the answer is decided, on condition that nobody wrote it
//! meanwhile.
//!
//! A remembered answer is kept for `limits.idempotency_ttl_s` (default a
//! day): past it, the key is free again and a request with it is a new
//! request (`replay` sees no record, and the new answer replaces the old
//! one on condition that it is still the one seen). The background sweep
//! (`idempotency_sweep`) deletes what has expired.

use super::problem::Problem;
use super::App;
use crate::audit::{Actor, Outcome};
use crate::domain::operation::Operation;
use crate::domain::time::Timestamp;
use crate::store::keyspace;
use crate::store::Batch;
use crate::vault::{Joined, Layer, VaultError};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

pub const HEADER: &str = "idempotency-key";
/// The header as the OpenAPI document spells it.
pub const HEADER_NAME: &str = "Idempotency-Key";
pub const REPLAYED: &str = "idempotent-replayed";

#[derive(Serialize, Deserialize)]
struct Remembered {
    /// Unix seconds when the answer was remembered.
    remembered_at: i64,
    request_mac: [u8; 32],
    status: u16,
    problem: bool,
    body: Vec<u8>,
}

/// When the record `bytes` was remembered (`None`: it does not decode, as
/// records written before answers expired do not).
pub(super) fn remembered_at(bytes: &[u8]) -> Option<i64> {
    postcard::from_bytes::<Remembered>(bytes)
        .ok()
        .map(|r| r.remembered_at)
}

/// What `key` accepts, as a regular expression (OpenAPI).
pub const KEY_PATTERN: &str = "^[A-Za-z0-9._:-]{1,128}$";

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

    pub(super) fn into_response(self, replayed: bool) -> Response {
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

/// One request's idempotency record: where it is kept, the request's MAC,
/// and (as `Joined`) the writes that remember an answer.
pub(super) struct Record<A> {
    store_key: Vec<u8>,
    request_mac: [u8; 32],
    answer: A,
    joined: AtomicBool,
    /// An expired record under `store_key` that `replay` saw: the new
    /// answer replaces exactly it (`None`: the key was free).
    expired: Mutex<Option<Vec<u8>>>,
    ttl: Duration,
}

impl<A> Record<A> {
    /// `parts` name the request: method, matched route, real path, body.
    pub(super) fn new(app: &App, identity: &str, key: &str, parts: &[&[u8]], answer: A) -> Self {
        Record {
            // A keyed digest, never the key as given: a caller may put
            // anything in the header, a card number included.
            store_key: keyspace::IDEMPOTENCY.key(app.vault.idempotency_slot(identity, key)),
            request_mac: app.vault.request_mac(parts),
            answer,
            joined: AtomicBool::new(false),
            expired: Mutex::new(None),
            ttl: app.idempotency_ttl,
        }
    }

    pub(super) fn store_key(&self) -> &[u8] {
        &self.store_key
    }

    /// Whether the operation took the record into its own batch.
    pub(super) fn was_joined(&self) -> bool {
        self.joined.load(Ordering::Acquire)
    }

    /// The remembered answer to this key, if there is one: a replay for
    /// the same request, a refusal for a different one.
    pub(super) async fn replay(&self, app: &App) -> Result<Option<Response>, Problem> {
        let Some(bytes) = app
            .vault
            .store_view(Layer::Api)
            .get(&self.store_key)
            .await
            .map_err(VaultError::from)?
        else {
            self.set_expired(None);
            return Ok(None);
        };
        // A record without a time (written before answers expired) or
        // otherwise unreadable cannot be replayed: it counts as expired, so
        // the key is a new request rather than a 500 for ever.
        let Ok(remembered) = postcard::from_bytes::<Remembered>(&bytes) else {
            tracing::warn!("an unreadable remembered answer is treated as expired");
            self.set_expired(Some(bytes));
            return Ok(None);
        };
        if is_expired(remembered.remembered_at, Timestamp::now().seconds(), self.ttl) {
            self.set_expired(Some(bytes));
            return Ok(None);
        }
        self.set_expired(None);
        if remembered.request_mac != self.request_mac {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency key reused",
                "this Idempotency-Key was used for a different request",
            )
            .with_field("Idempotency-Key", "reused"));
        }
        let status = StatusCode::from_u16(remembered.status).map_err(|_| Problem::internal())?;
        Ok(Some(
            Answer {
                status,
                body: remembered.body,
                problem: remembered.problem,
                retry_after: None,
            }
            .into_response(true),
        ))
    }

    fn set_expired(&self, bytes: Option<Vec<u8>>) {
        *self.expired.lock().unwrap_or_else(PoisonError::into_inner) = bytes;
    }

    /// The writes that remember `answer`, on condition that nobody has
    /// since `replay` looked (the key was free, or held an expired record).
    fn remembering(&self, answer: &Answer) -> Result<Batch, VaultError> {
        let remembered = Remembered {
            remembered_at: Timestamp::now().seconds(),
            request_mac: self.request_mac,
            status: answer.status.as_u16(),
            problem: answer.problem,
            body: answer.body.clone(),
        };
        let bytes = postcard::to_allocvec(&remembered).map_err(|_| VaultError::Corrupt {
            what: "idempotency record encoding",
        })?;
        let expired = self.expired.lock().unwrap_or_else(PoisonError::into_inner);
        let mut batch = Batch::new();
        batch
            .expect(self.store_key.clone(), expired.as_deref())
            .put(self.store_key.clone(), bytes);
        Ok(batch)
    }

    /// Remembers `answer` in a write of its own, with an audit record of
    /// it (what `operation` answered `actor`). `Ok(false)`: another request
    /// with this key (on another node) remembered its answer first.
    pub(super) async fn remember(
        &self,
        app: &App,
        actor: &Actor,
        operation: Operation,
        answer: &Answer,
    ) -> Result<bool, Problem> {
        let batch = self.remembering(answer)?;
        let outcome = match answer.status {
            status if status.is_success() => Outcome::Success,
            StatusCode::NOT_FOUND => Outcome::NotFound,
            StatusCode::FORBIDDEN => Outcome::Denied,
            _ => Outcome::Refused,
        };
        let detail = format!("answer {} remembered for replay", answer.status.as_u16());
        Ok(app
            .vault
            .commit_from_above(batch, actor, operation, None, outcome, Some(detail))
            .await?)
    }
}

/// Whether an answer remembered at `at` has outlived `ttl` at `now`.
pub(super) fn is_expired(at: i64, now: i64, ttl: Duration) -> bool {
    let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
    now.saturating_sub(at) >= ttl
}

/// Builds the answer for what an operation is about to commit, so the
/// vault writes it in the same batch.
impl<V, A> Joined<V> for Record<A>
where
    A: Fn(&V) -> Answer + Sync,
{
    fn writes(&self, done: &V) -> Result<Batch, VaultError> {
        let answer = (self.answer)(done);
        if answer.status.is_server_error() || answer.status == StatusCode::TOO_MANY_REQUESTS {
            return Ok(Batch::new());
        }
        let batch = self.remembering(&answer)?;
        self.joined.store(true, Ordering::Release);
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::is_expired;
    use std::time::Duration;

    #[test]
    fn an_answer_expires_when_its_time_has_fully_passed() {
        let day = Duration::from_secs(86_400);
        assert!(!is_expired(1_000, 1_000, day));
        assert!(!is_expired(1_000, 1_000 + 86_399, day));
        assert!(is_expired(1_000, 1_000 + 86_400, day));
        // A clock stepped back never expires an answer early.
        assert!(!is_expired(1_000, 0, day));
        // Extreme values saturate rather than wrap.
        assert!(is_expired(i64::MIN, i64::MAX, day));
        assert!(!is_expired(i64::MAX, i64::MIN, Duration::from_secs(u64::MAX)));
    }
}
