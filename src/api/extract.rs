//! Extractors whose rejections are problem documents, not axum's plain text.

use super::caller::{Caller, Peer, RequestId};
use super::problem::Problem;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;

/// The raw body, size-limited by `DefaultBodyLimit`.
pub struct Body(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = Problem;
    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        Bytes::from_request(request, state)
            .await
            .map(Body)
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    Problem::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "body-too-large",
                        "Body too large",
                        "the request body exceeds the configured limit",
                    )
                    .with_field("body", "too_large")
                } else {
                    Problem::new(
                        StatusCode::BAD_REQUEST,
                        "malformed-body",
                        "Malformed request body",
                        "the request body could not be read",
                    )
                    .with_field("body", "unreadable")
                }
            })
    }
}

/// A query string, percent-decoded by axum's `Query`, as name/value pairs
/// in the order sent; `number` parses one parameter, `only` refuses any the
/// route does not take.
pub struct QueryPairs(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = Problem;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map(|Query(pairs)| QueryPairs(pairs))
            .map_err(|_| {
                invalid_query(
                    "query",
                    "malformed",
                    "the query string could not be read".to_owned(),
                )
            })
    }
}

impl QueryPairs {
    /// Refuses a parameter outside `known`, or one given twice.
    pub fn only(&self, known: &[&'static str]) -> Result<(), Problem> {
        for (i, (name, _)) in self.0.iter().enumerate() {
            let Some(known_name) = known.iter().find(|k| **k == name) else {
                return Err(invalid_query(
                    "query",
                    "unknown_parameter",
                    format!("this route takes only {}", known.join(", ")),
                ));
            };
            if self.0[..i].iter().any(|(earlier, _)| earlier == name) {
                return Err(invalid_query(
                    known_name,
                    "repeated",
                    "give each parameter once".to_owned(),
                ));
            }
        }
        Ok(())
    }

    /// The parameter `name` as a non-negative integer, or `default` when absent.
    pub fn number<T: std::str::FromStr>(&self, name: &'static str, default: T) -> Result<T, Problem> {
        match self.0.iter().find(|(k, _)| k == name) {
            None => Ok(default),
            Some((_, value)) => value
                .parse()
                .map_err(|_| invalid_query(name, "integer", "expected a non-negative integer".to_owned())),
        }
    }
}

/// The most records one page of a listing holds.
pub const MAX_PAGE: usize = 1000;

impl QueryPairs {
    /// `limit`: a page's size, 1 to `MAX_PAGE`, 100 when absent.
    pub fn page_limit(&self) -> Result<usize, Problem> {
        let limit = self.number("limit", 100usize)?;
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(invalid_query(
                "limit",
                "range",
                "limit must be 1 to 1000".to_owned(),
            ));
        }
        Ok(limit)
    }

    /// The parameter `name` as sent, if it was.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

pub fn invalid_query(field: &str, rule: &str, detail: String) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "invalid-query",
        "Invalid query parameter",
        detail,
    )
    .with_field(field, rule)
}

/// One path parameter as text; its own parser checks the format.
pub struct Param(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Param {
    type Rejection = Problem;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(p)| Param(p))
            .map_err(|_| {
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    "malformed-path",
                    "Malformed path",
                    "a path parameter could not be read",
                )
            })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Problem;
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        let peer = parts.extensions.get::<Peer>().ok_or_else(Problem::internal)?;
        let request_id = parts
            .extensions
            .get::<RequestId>()
            .cloned()
            .unwrap_or(RequestId(String::new()));
        Ok(Caller::new(peer, &request_id))
    }
}
