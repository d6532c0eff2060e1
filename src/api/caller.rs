//! Who is calling: the identity from the connection's verified client
//! certificate, plus the origin and request id the audit trail records.

use super::path_id::{PathValues, RawPath};
use super::problem::{FieldError, Problem};
use super::App;
use crate::audit::Actor;
use crate::domain::operation::Operation;
use crate::domain::subject::AuditSubject;
use crate::domain::validation::ValidationError;
use crate::policy::{ApprovalGrant, RevealGrant};
use crate::tls::{Identity, IdentityError};
use crate::vault::AuditObject;
use std::net::SocketAddr;

/// Set once per connection by the server after the TLS handshake.
#[derive(Clone, Debug)]
pub struct Peer {
    pub identity: Result<Identity, IdentityError>,
    pub origin: SocketAddr,
}

/// Set per request by the request-id middleware.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

pub struct Caller {
    pub identity: Option<Identity>,
    pub actor: Actor,
}

impl Caller {
    pub fn new(peer: &Peer, request_id: &RequestId) -> Self {
        let identity = peer.identity.as_ref().ok().cloned();
        Caller {
            actor: Actor {
                identity: identity
                    .as_ref()
                    .map_or_else(|| "unidentified".to_owned(), ToString::to_string),
                origin: peer.origin.to_string(),
                request_id: request_id.0.clone(),
            },
            identity,
        }
    }
}

impl App {
    /// Default deny. A refusal is audited before the 403 goes out.
    pub async fn authorize(
        &self,
        caller: &Caller,
        operation: Operation,
        object: Option<AuditObject>,
    ) -> Result<(), Problem> {
        let allowed = caller
            .identity
            .as_ref()
            .is_some_and(|id| self.policies().allows(id, operation));
        if allowed {
            return Ok(());
        }
        Err(self.deny(caller, operation, object).await)
    }

    /// `authorize` for break-glass detokenisation (`operation`: the reveal
    /// or its request): the grant the vault's `reveal_pan` and
    /// `request_reveal` require, or the same audited refusal.
    pub async fn grant_reveal(
        &self,
        caller: &Caller,
        operation: Operation,
        object: AuditObject,
    ) -> Result<RevealGrant, Problem> {
        let grant = caller
            .identity
            .as_ref()
            .and_then(|id| self.policies().grant_reveal(id, &caller.actor));
        match grant {
            Some(grant) => Ok(grant),
            None => Err(self.deny(caller, operation, Some(object)).await),
        }
    }

    /// `authorize` for approving a reveal: the grant the vault's
    /// `approve_reveal` requires, or the same audited refusal.
    pub async fn grant_approval(
        &self,
        caller: &Caller,
        object: AuditObject,
    ) -> Result<ApprovalGrant, Problem> {
        let grant = caller
            .identity
            .as_ref()
            .and_then(|id| self.policies().grant_approval(id, &caller.actor));
        match grant {
            Some(grant) => Ok(grant),
            None => Err(self.deny(caller, Operation::RevealApprove, Some(object)).await),
        }
    }

    /// The 403, once the refusal is audited (or the failure to audit it).
    async fn deny(&self, caller: &Caller, operation: Operation, object: Option<AuditObject>) -> Problem {
        self.metrics.denied();
        tracing::warn!(identity = %caller.actor.identity, operation = operation.as_str(), "denied by policy");
        match self.vault.record_denied(&caller.actor, operation, object).await {
            Ok(()) => Problem::forbidden(operation),
            Err(e) => Problem::from(e),
        }
    }
}

impl App {
    /// The audit object for a path value: the parsed value when `raw`
    /// parses as its kind, a keyed digest of it otherwise.
    pub(super) fn object<T: AuditSubject, E>(
        &self,
        raw: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> AuditObject {
        match parse(raw) {
            Ok(value) => self.vault.audit_object(&value),
            Err(_) => self.vault.unparsed_object(raw),
        }
    }

    /// A merchant's order, `order=<merchant>/<order>` when both parse.
    pub(super) fn order_object(&self, merchant: &str, order: &str) -> AuditObject {
        use crate::domain::ids::MerchantId;
        use crate::orchestration::payment::{OrderId, OrderSubject};
        match (MerchantId::parse(merchant), OrderId::parse(order)) {
            (Ok(merchant), Ok(order)) => self
                .vault
                .audit_object(&OrderSubject::new(Some(&merchant), &order)),
            _ => self.vault.unparsed_object(&format!("{merchant}/{order}")),
        }
    }

    /// A refused field, audited, as a problem naming `field` and the rule.
    pub(super) async fn refuse_field(
        &self,
        caller: &Caller,
        operation: Operation,
        field: &str,
        error: ValidationError,
    ) -> Problem {
        self.refuse_fields(caller, operation, None, field, error, &[])
            .await
    }

    /// The path values of `raw`, parsed; a value that does not parse is
    /// refused, audited with its keyed digest as the object.
    pub(super) async fn parse_path<P: PathValues>(
        &self,
        caller: &Caller,
        operation: Operation,
        raw: &RawPath,
    ) -> Result<P, Problem> {
        match P::parse(self, raw) {
            Ok(path) => Ok(path),
            Err((field, error)) => {
                let object = P::object(self, raw);
                Err(self
                    .refuse_fields(caller, operation, object, field, error, &[])
                    .await)
            }
        }
    }

    /// One audited refusal of several fields: `error` at `field` first (its
    /// detail is the problem's), then `more`; `object` is what they belong
    /// to, when a path names it.
    pub(super) async fn refuse_fields(
        &self,
        caller: &Caller,
        operation: Operation,
        object: Option<AuditObject>,
        field: &str,
        error: ValidationError,
        more: &[FieldError],
    ) -> Problem {
        let mut errors = vec![FieldError {
            field: field.to_owned(),
            rule: error.rule.code().to_owned(),
        }];
        errors.extend_from_slice(more);
        let detail: Vec<String> = errors.iter().map(|e| format!("{}.{}", e.field, e.rule)).collect();
        if let Err(e) = self
            .vault
            .record_refused(&caller.actor, operation, object, &detail.join(","))
            .await
        {
            return Problem::from(e);
        }
        Problem::from(crate::vault::VaultError::Invalid(error)).with_errors(errors)
    }

    /// The parsed value of request field `field`, or its audited refusal.
    pub(super) async fn field<T>(
        &self,
        caller: &Caller,
        operation: Operation,
        field: &str,
        parsed: Result<T, ValidationError>,
    ) -> Result<T, Problem> {
        match parsed {
            Ok(value) => Ok(value),
            Err(e) => Err(self.refuse_field(caller, operation, field, e).await),
        }
    }
}
