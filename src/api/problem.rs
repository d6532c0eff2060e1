//! Errors as RFC 9457 `application/problem+json` documents: a stable `type`,
//! the field and the rule where there is one, and never a secret (no input
//! value is ever echoed).

use crate::vault::VaultError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub const CONTENT_TYPE: &str = "application/problem+json";

/// A problem document; boxed so `Result<T, Problem>` stays small.
#[derive(Clone, Debug)]
pub struct Problem(Box<ProblemDoc>);

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Problem)]
pub struct ProblemDoc {
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
        Problem(Box::new(ProblemDoc {
            kind: format!("urn:tokenvault:problem:{kind}"),
            title,
            status: status.as_u16(),
            detail: detail.into(),
            field: None,
            rule: None,
            control: None,
            retry_after: None,
        }))
    }

    pub fn with_field(mut self, field: impl Into<String>, rule: impl Into<String>) -> Self {
        self.0.field = Some(field.into());
        self.0.rule = Some(rule.into());
        self
    }

    pub fn with_control(mut self, control: &str) -> Self {
        self.0.control = Some(control.to_owned());
        self
    }

    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.0.retry_after = Some(seconds);
        self
    }

    pub fn forbidden() -> Self {
        Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Forbidden",
            "your identity's policy does not grant this operation",
        )
    }

    pub fn internal() -> Self {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the vault could not complete the request; nothing secret is reported",
        )
    }

    pub fn not_found(what: &str) -> Self {
        Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            format!("no such {what}"),
        )
    }

    pub fn retry_after_seconds(&self) -> Option<u64> {
        self.0.retry_after
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&*self.0).unwrap_or_default()
    }
}

impl std::ops::Deref for Problem {
    type Target = ProblemDoc;
    fn deref(&self) -> &ProblemDoc {
        &self.0
    }
}

impl utoipa::PartialSchema for Problem {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <ProblemDoc as utoipa::PartialSchema>::schema()
    }
}

impl utoipa::ToSchema for Problem {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("Problem")
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = self.to_json();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        if let Some(seconds) = self.0.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<VaultError> for Problem {
    fn from(error: VaultError) -> Self {
        use StatusCode as S;
        match error {
            VaultError::Invalid(e) => Problem::new(
                S::UNPROCESSABLE_ENTITY,
                "invalid-field",
                "Invalid field",
                e.detail,
            )
            .with_field(e.field.as_str(), e.rule.code()),
            VaultError::NotFound { what } => Problem::not_found(what),
            VaultError::Refused(refusal) => Problem::new(
                S::UNPROCESSABLE_ENTITY,
                "control-refused",
                "Refused by a domain control",
                refusal.to_string(),
            )
            .with_control(refusal.control()),
            VaultError::Lifecycle(e) => {
                Problem::new(S::CONFLICT, "lifecycle", "Transition not allowed", e.to_string())
            }
            VaultError::ReservationSettled(_) => Problem::new(
                S::CONFLICT,
                "reservation-settled",
                "Reservation already settled",
                error.to_string(),
            ),
            VaultError::PanInTokenRange => Problem::new(
                S::UNPROCESSABLE_ENTITY,
                "invalid-field",
                "Invalid field",
                error.to_string(),
            )
            .with_field("pan", "in_token_range"),
            VaultError::BulkSize { .. } => Problem::new(
                S::UNPROCESSABLE_ENTITY,
                "invalid-field",
                "Invalid field",
                error.to_string(),
            )
            .with_field("pans", "count"),
            VaultError::RevealReason => Problem::new(
                S::UNPROCESSABLE_ENTITY,
                "invalid-field",
                "Invalid field",
                error.to_string(),
            )
            .with_field("reason", "reason"),
            VaultError::PasswordMismatch { .. } => Problem::new(
                S::UNPROCESSABLE_ENTITY,
                "password-mismatch",
                "Payment password does not match",
                error.to_string(),
            )
            .with_field("password", "mismatch"),
            VaultError::PasswordLocked { until } => {
                let wait = u64::try_from(until.seconds() - crate::domain::time::Timestamp::now().seconds())
                    .unwrap_or(1);
                Problem::new(
                    S::LOCKED,
                    "password-locked",
                    "Payment password locked",
                    error.to_string(),
                )
                .with_field("password", "locked")
                .retry_after(wait.max(1))
            }
            VaultError::PasswordNotSet => Problem::new(
                S::CONFLICT,
                "password-not-set",
                "No payment password",
                error.to_string(),
            )
            .with_field("password", "not_set"),
            VaultError::PasswordAlreadySet => Problem::new(
                S::CONFLICT,
                "password-already-set",
                "Payment password already set",
                error.to_string(),
            )
            .with_field("password", "already_set"),
            VaultError::KeyVersionCurrent { .. } => Problem::new(
                S::CONFLICT,
                "key-version-current",
                "Key version is current",
                error.to_string(),
            )
            .with_field("version", "current"),
            VaultError::KeyVersionInUse { .. } => Problem::new(
                S::CONFLICT,
                "key-version-in-use",
                "Key version still in use",
                error.to_string(),
            )
            .with_field("version", "in_use"),
            VaultError::Contention => Problem::new(
                S::SERVICE_UNAVAILABLE,
                "contention",
                "Busy",
                "too many concurrent changes to one record; retry",
            )
            .retry_after(1),
            other => {
                tracing::error!(error = %other, "request failed inside the vault");
                Problem::internal()
            }
        }
    }
}
