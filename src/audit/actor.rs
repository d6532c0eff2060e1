//! Who asked, from where, under which request id; and how it ended.

use crate::domain::error_code::{Class, ErrorCode};
use std::fmt;

/// The caller of an operation as the audit trail records it: the identity
/// from its client certificate (or a named local tool), its network origin
/// and the request id it was given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub identity: String,
    pub origin: String,
    pub request_id: String,
}

impl Actor {
    /// A local, non-network actor (the CLI, a test, a migration).
    pub fn local(tool: &str) -> Self {
        Actor {
            identity: format!("local:{tool}"),
            origin: "local".to_owned(),
            request_id: String::new(),
        }
    }
}

/// How an audited operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    Success,
    /// Bad input or a domain control said no; the detail names the rule.
    Refused,
    /// The caller's policy does not grant the operation.
    Denied,
    NotFound,
    Error,
}

impl Outcome {
    /// How a failure of `class` ends in the trail.
    pub fn of_failure(class: Class) -> Outcome {
        match class {
            Class::NotFound => Outcome::NotFound,
            class if class.is_refusal() => Outcome::Refused,
            _ => Outcome::Error,
        }
    }

    /// The outcome and detail an audit record keeps for a failure: the same
    /// code its problem document carries.
    pub fn failure(code: &ErrorCode) -> (Outcome, String) {
        (Outcome::of_failure(code.class), code.audit_detail())
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Refused => "refused",
            Outcome::Denied => "denied",
            Outcome::NotFound => "not_found",
            Outcome::Error => "error",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
