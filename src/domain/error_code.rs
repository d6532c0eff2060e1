//! A failure's one stable identity. Each error enum answers `code()` once,
//! beside its variants; the audit record's detail and the problem document
//! are both read off the same `ErrorCode`, so the two can never spell a
//! refusal differently.

use std::borrow::Cow;

/// What kind of failure: decides the HTTP status and the audit outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Class {
    /// The input broke a rule (422).
    Invalid,
    /// The input is well formed but the state forbids it (409).
    Conflict,
    /// The thing named does not exist (404).
    NotFound,
    /// Too many wrong attempts; wait (423).
    Locked,
    /// Too many requests of one kind in a window; wait (429).
    RateLimited,
    /// Try again later; nothing was done (503).
    Unavailable,
    /// A bank channel failed in a way the caller cannot fix (502).
    Upstream,
    /// A fault inside the service; reported without detail (500).
    Internal,
}

impl Class {
    /// True when the caller's request was turned down, as opposed to the
    /// service failing to carry it out.
    pub fn is_refusal(self) -> bool {
        matches!(
            self,
            Class::Invalid | Class::Conflict | Class::Locked | Class::RateLimited
        )
    }
}

/// Where a failure points.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Locus {
    /// A request field and the rule it broke.
    Field {
        field: Cow<'static, str>,
        rule: Cow<'static, str>,
    },
    /// A token domain control that refused a use.
    Control(&'static str),
    /// A rule of the state machine, with no single field at fault
    /// (`lifecycle.active_to_active`).
    Rule(Cow<'static, str>),
    /// What was looked for and not found.
    Subject(&'static str),
}

/// A failure's code: built once per variant by its enum's `code()`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorCode {
    pub class: Class,
    /// The problem type, `urn:tokenvault:problem:<kind>`.
    pub kind: &'static str,
    pub title: &'static str,
    pub locus: Option<Locus>,
    /// Non-secret context the audit record keeps after the code (attempts
    /// left, say); never an input value.
    pub context: Option<String>,
    /// How long a client should wait before trying again.
    pub retry_after_s: Option<u64>,
    /// What a client is told instead of the error's own text, for failures
    /// whose text may name internals.
    pub public_detail: Option<&'static str>,
}

impl ErrorCode {
    pub fn new(class: Class, kind: &'static str, title: &'static str) -> Self {
        ErrorCode {
            class,
            kind,
            title,
            locus: None,
            context: None,
            retry_after_s: None,
            public_detail: None,
        }
    }

    /// The common refusal: `field` broke `rule`.
    pub fn invalid(field: impl Into<Cow<'static, str>>, rule: impl Into<Cow<'static, str>>) -> Self {
        ErrorCode::new(Class::Invalid, "invalid-field", "Invalid field").at_field(field, rule)
    }

    pub fn not_found(what: &'static str) -> Self {
        let mut code = ErrorCode::new(Class::NotFound, "not-found", "Not found");
        code.locus = Some(Locus::Subject(what));
        code
    }

    pub fn internal() -> Self {
        ErrorCode::new(Class::Internal, "internal", "Internal error")
            .public_detail("the vault could not complete the request; nothing secret is reported")
    }

    pub fn at_field(
        mut self,
        field: impl Into<Cow<'static, str>>,
        rule: impl Into<Cow<'static, str>>,
    ) -> Self {
        self.locus = Some(Locus::Field {
            field: field.into(),
            rule: rule.into(),
        });
        self
    }

    pub fn at_rule(mut self, rule: impl Into<Cow<'static, str>>) -> Self {
        self.locus = Some(Locus::Rule(rule.into()));
        self
    }

    pub fn at_control(mut self, control: &'static str) -> Self {
        self.locus = Some(Locus::Control(control));
        self
    }

    pub fn context(mut self, context: String) -> Self {
        self.context = Some(context);
        self
    }

    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_s = Some(seconds);
        self
    }

    pub fn public_detail(mut self, detail: &'static str) -> Self {
        self.public_detail = Some(detail);
        self
    }

    /// The short code: `field.rule`, the control, the rule, the subject, or
    /// failing those the problem kind.
    pub fn code(&self) -> Cow<'_, str> {
        match &self.locus {
            Some(Locus::Field { field, rule }) => Cow::Owned(format!("{field}.{rule}")),
            Some(Locus::Control(control)) => Cow::Borrowed(control),
            Some(Locus::Rule(rule)) => Cow::Borrowed(rule),
            Some(Locus::Subject(what)) => Cow::Borrowed(what),
            None => Cow::Borrowed(self.kind),
        }
    }

    /// What the audit record keeps: the code, then any context.
    pub fn audit_detail(&self) -> String {
        match &self.context {
            Some(context) => format!("{} {context}", self.code()),
            None => self.code().into_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audit_detail_is_the_problem_field_and_rule() {
        let code = ErrorCode::invalid("order_id", "conflict");
        assert_eq!(code.audit_detail(), "order_id.conflict");
        assert_eq!(
            code.locus,
            Some(Locus::Field {
                field: "order_id".into(),
                rule: "conflict".into()
            })
        );
    }

    #[test]
    fn context_follows_the_code_and_a_bare_code_falls_back_to_its_kind() {
        let code = ErrorCode::invalid("code", "mismatch").context("remaining=2".into());
        assert_eq!(code.audit_detail(), "code.mismatch remaining=2");
        let bare = ErrorCode::new(Class::Unavailable, "contention", "Busy");
        assert_eq!(bare.audit_detail(), "contention");
        assert_eq!(ErrorCode::not_found("payment").audit_detail(), "payment");
    }

    #[test]
    fn only_the_callers_own_faults_are_refusals() {
        assert!(Class::Invalid.is_refusal() && Class::Conflict.is_refusal());
        assert!(!Class::Unavailable.is_refusal() && !Class::Internal.is_refusal());
    }
}
