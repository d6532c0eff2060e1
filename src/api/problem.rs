//! Errors as RFC 9457 `application/problem+json` documents: a stable `type`,
//! the field and the rule where there is one, and never a secret (no input
//! value is ever echoed).

use crate::domain::error_code::{Class, ErrorCode, Locus};
use crate::domain::operation::Operation;
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
    /// Every field error of the request, in the order the fields were
    /// checked; the first is also `field` and `rule`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// The token control that refused a use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control: Option<String>,
    /// The operation a 403 denied (`token.issue`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<&'static str>,
    #[serde(skip)]
    retry_after: Option<u64>,
}

/// One field at fault and the rule it broke.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub rule: String,
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
            errors: Vec::new(),
            control: None,
            operation: None,
            retry_after: None,
        }))
    }

    /// The one field at fault (also the whole of `errors`).
    pub fn with_field(mut self, field: impl Into<String>, rule: impl Into<String>) -> Self {
        let (field, rule) = (field.into(), rule.into());
        self.0.errors = vec![FieldError {
            field: field.clone(),
            rule: rule.clone(),
        }];
        self.0.field = Some(field);
        self.0.rule = Some(rule);
        self
    }

    /// Several fields at fault: `errors` lists them all, `field` and `rule`
    /// name the first.
    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        if let Some(first) = errors.first() {
            self.0.field = Some(first.field.clone());
            self.0.rule = Some(first.rule.clone());
        }
        self.0.errors = errors;
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

    /// `operation` denied to the caller's identity.
    pub fn forbidden(operation: Operation) -> Self {
        let mut problem = Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Forbidden",
            format!("your identity's policy does not grant {}", operation.as_str()),
        );
        problem.0.operation = Some(operation.as_str());
        problem
    }

    pub fn internal() -> Self {
        Problem::from_code(ErrorCode::internal(), String::new())
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

    // The schemas the document's own refers to (`FieldError`).
    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        <ProblemDoc as utoipa::ToSchema>::schemas(schemas);
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

impl Problem {
    /// The problem document for a failure's code; `detail` is the error's
    /// own text, replaced by the code's public detail where it has one.
    pub fn from_code(code: ErrorCode, detail: String) -> Self {
        let status = match code.class {
            Class::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
            Class::Conflict => StatusCode::CONFLICT,
            Class::NotFound => StatusCode::NOT_FOUND,
            Class::Locked => StatusCode::LOCKED,
            Class::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Class::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Class::Upstream => StatusCode::BAD_GATEWAY,
            Class::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            // Class is non_exhaustive only towards other crates.
        };
        let detail = match (code.public_detail, &code.locus) {
            (Some(public), _) => public.to_owned(),
            (None, Some(Locus::Subject(what))) => format!("no such {what}"),
            (None, _) => detail,
        };
        let mut problem = Problem::new(status, code.kind, code.title, detail);
        match code.locus {
            Some(Locus::Field { field, rule }) => problem = problem.with_field(field, rule),
            Some(Locus::Control(control)) => problem = problem.with_control(control),
            Some(Locus::Rule(rule)) => problem.0.rule = Some(rule.into_owned()),
            Some(Locus::Subject(_)) | None => {}
        }
        if let Some(seconds) = code.retry_after_s {
            problem = problem.retry_after(seconds);
        }
        problem
    }
}

impl From<VaultError> for Problem {
    fn from(error: VaultError) -> Self {
        let code = error.code();
        if code.class == Class::Internal {
            tracing::error!(error = %error, "request failed inside the vault");
        }
        Problem::from_code(code, error.to_string())
    }
}
