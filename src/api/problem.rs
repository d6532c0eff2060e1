//! Errors as RFC 9457 `application/problem+json` documents: a stable `type`,
//! the field and the rule where there is one, and never a secret (no input
//! value is ever echoed).

use crate::vault::VaultError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub const CONTENT_TYPE: &str = "application/problem+json";

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Stable identifier of the kind of problem, `urn:tokenvault:problem:<kind>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    /// The request field at fault, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The rule that field broke, a stable code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The token control that refused a use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control: Option<String>,
    #[serde(skip)]
    retry_after: Option<u64>,
}

impl Problem {
    pub fn new(status: StatusCode, kind: &str, title: &'static str, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!("urn:tokenvault:problem:{kind}"),
            title,
            status: status.as_u16(),
            detail: detail.into(),
            field: None,
            rule: None,
            control: None,
            retry_after: None,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>, rule: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self.rule = Some(rule.into());
        self
    }

    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn forbidden() -> Self {
        Problem::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", "your identity's policy does not grant this operation")
    }

    pub fn internal() -> Self {
        Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error", "the vault could not complete the request; nothing secret is reported")
    }

    pub fn not_found(what: &str) -> Self {
        Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found", format!("no such {what}"))
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<VaultError> for Problem {
    fn from(error: VaultError) -> Self {
        use StatusCode as S;
        match error {
            VaultError::Invalid(e) => Problem::new(S::UNPROCESSABLE_ENTITY, "invalid-field", "Invalid field", e.detail)
                .with_field(e.field.as_str(), e.rule.code()),
            VaultError::NotFound { what } => Problem::not_found(what),
            VaultError::Refused(refusal) => {
                let mut p = Problem::new(S::UNPROCESSABLE_ENTITY, "control-refused", "Refused by a domain control", refusal.to_string());
                p.control = Some(refusal.control().to_owned());
                p
            }
            VaultError::Lifecycle(e) => Problem::new(S::CONFLICT, "lifecycle", "Transition not allowed", e.to_string()),
            VaultError::ReservationSettled(_) => {
                Problem::new(S::CONFLICT, "reservation-settled", "Reservation already settled", error.to_string())
            }
            VaultError::PanInTokenRange => Problem::new(S::UNPROCESSABLE_ENTITY, "invalid-field", "Invalid field", error.to_string())
                .with_field("pan", "in_token_range"),
            VaultError::RevealReason => Problem::new(S::UNPROCESSABLE_ENTITY, "invalid-field", "Invalid field", error.to_string())
                .with_field("reason", "reason"),
            VaultError::Contention => {
                Problem::new(S::SERVICE_UNAVAILABLE, "contention", "Busy", "too many concurrent changes to one record; retry").retry_after(1)
            }
            other => {
                tracing::error!(error = %other, "request failed inside the vault");
                Problem::internal()
            }
        }
    }
}
