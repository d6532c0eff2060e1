//! Resolving a discrepancy: what was done about it and why, once, by
//! whom, audited. The resolution is a record of its own beside the
//! discrepancy (which stays as found), written on condition that none
//! exists yet, and takes the discrepancy off the open queue. By hand,
//! recording a decision moves no money: a refund at the channel or a
//! recovery is done there, and recorded here. The runs record their own
//! resolutions through `resolution_write` (`history`, `automatic`).

use super::super::{layout, OrchestrationError, Orchestrator};
use super::across::Short;
use super::matcher::{Class, Finding};
use super::RunId;
use crate::audit::Actor;
use crate::domain::operation::Operation;
use crate::domain::time::Timestamp;
use crate::domain::validation::{Field, Rule, ValidationError};
use crate::store::{Batch, Store};
use crate::vault::{decode, encode, JoinedRecord, Layer, Vault, VaultError};
use serde::{Deserialize, Serialize};
use std::fmt;

/// One discrepancy of one run: `<run id>-<n>`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DiscrepancyId {
    pub run: RunId,
    pub n: u64,
}

impl DiscrepancyId {
    /// What `parse` accepts, as a regular expression (OpenAPI).
    pub const PATTERN: &'static str = "^rcn_[0-9a-f]{32}-[0-9]{1,9}$";

    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        let invalid = || {
            ValidationError::new(
                Field::Reference,
                Rule::Format,
                "a discrepancy id is a run id, '-' and its number",
            )
        };
        let (run, n) = text.split_once('-').ok_or_else(invalid)?;
        let digits = !n.is_empty() && n.len() <= 9 && n.bytes().all(|b| b.is_ascii_digit());
        if !digits {
            return Err(invalid());
        }
        Ok(DiscrepancyId {
            run: RunId::parse(run).map_err(|_| invalid())?,
            n: n.parse().map_err(|_| invalid())?,
        })
    }
}

impl fmt::Display for DiscrepancyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.run, self.n)
    }
}

impl crate::domain::subject::AuditSubject for DiscrepancyId {
    fn audit_name(&self) -> String {
        self.to_string()
    }
}

/// What was done about a discrepancy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Explained; nothing to move (a cut-off difference, a known duplicate).
    Acknowledged,
    /// The money the channel took for an order closed here was refunded
    /// at the channel.
    RefundedAtChannel,
    /// A success the channel's file lacks is being recovered from the channel.
    RecoveryRequested,
    /// Accepted as paid by policy, outside the vault's payment flow.
    AcceptedAsPaid,
    /// A 短款 the next days' file showed (a cut-off difference): settled
    /// by the run of that file.
    CarriedForward,
    /// Found again by a later run of the same date, which stands instead.
    Superseded,
}

/// What a person may record by hand; the vault's own runs record the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ManualAction {
    Acknowledged,
    RefundedAtChannel,
    RecoveryRequested,
    AcceptedAsPaid,
}

impl From<ManualAction> for Action {
    fn from(action: ManualAction) -> Self {
        match action {
            ManualAction::Acknowledged => Action::Acknowledged,
            ManualAction::RefundedAtChannel => Action::RefundedAtChannel,
            ManualAction::RecoveryRequested => Action::RecoveryRequested,
            ManualAction::AcceptedAsPaid => Action::AcceptedAsPaid,
        }
    }
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Acknowledged => "acknowledged",
            Action::RefundedAtChannel => "refunded_at_channel",
            Action::RecoveryRequested => "recovery_requested",
            Action::AcceptedAsPaid => "accepted_as_paid",
            Action::CarriedForward => "carried_forward",
            Action::Superseded => "superseded",
        }
    }
}

/// A resolution as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    pub action: Action,
    pub reason: String,
    pub by: String,
    pub at: Timestamp,
}

/// A discrepancy, and its resolution once there is one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscrepancyView {
    pub id: DiscrepancyId,
    pub finding: Finding,
    pub resolution: Option<Resolution>,
}

/// 8 to 200 characters, no control characters, no personal number: the
/// reason is audited in clear.
fn check_reason(reason: &str) -> Result<(), ValidationError> {
    let len = reason.chars().count();
    if !(8..=200).contains(&len) || reason.chars().any(char::is_control) {
        return Err(ValidationError::new(
            Field::Reason,
            Rule::Length,
            "a reason is 8 to 200 characters, on one line",
        ));
    }
    crate::domain::personal_numbers::refuse_in(reason, Field::Reason)
}

impl Orchestrator {
    /// Records `action` for discrepancy `id`, with `reason`, as `actor`:
    /// once (a second resolution is `AlreadyResolved`).
    pub async fn resolve_discrepancy<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        id: &DiscrepancyId,
        action: Action,
        reason: &str,
    ) -> Result<DiscrepancyView, OrchestrationError> {
        let result = self.resolve_inner(vault, actor, id, action, reason).await;
        let object = vault.audit_object(id);
        self.audit_failure(vault, actor, Operation::ReconciliationResolve, object, result)
            .await
    }

    async fn resolve_inner<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        id: &DiscrepancyId,
        action: Action,
        reason: &str,
    ) -> Result<DiscrepancyView, OrchestrationError> {
        let reason = reason.trim();
        check_reason(reason)?;
        let view = vault.store_view(Layer::Orchestration);
        let key = layout::recon_discrepancy(&id.run, id.n);
        let raw = view
            .get(&key)
            .await
            .map_err(VaultError::from)?
            .ok_or(OrchestrationError::DiscrepancyNotFound)?;
        let finding: Finding = decode(&raw, "discrepancy")?;
        let resolution = Resolution {
            action,
            reason: reason.to_owned(),
            by: actor.identity.clone(),
            at: Timestamp::now(),
        };
        let mut batch = Batch::new();
        batch.expect_equals(key, raw);
        let record = resolution_write(vault, &mut batch, id, finding.class, &resolution)?;
        if finding.class == Class::VaultOnly {
            let channel = self.load_run_record(vault, &id.run).await?.channel;
            let short_key = layout::recon_short(&channel, &finding.key);
            if let Some(raw) = view.get(&short_key).await.map_err(VaultError::from)? {
                let short: Short = decode(&raw, "open short")?;
                if short.discrepancy() == *id {
                    batch.expect_equals(short_key.clone(), raw).delete(short_key);
                }
            }
        }
        if !vault
            .commit_from_above_records(batch, actor, vec![record])
            .await?
        {
            return Err(OrchestrationError::AlreadyResolved);
        }
        Ok(DiscrepancyView {
            id: id.clone(),
            finding,
            resolution: Some(resolution),
        })
    }

    /// The resolution of discrepancy `n` of `run`, if any.
    pub(super) async fn resolution_of<S: Store>(
        &self,
        vault: &Vault<S>,
        run: &RunId,
        n: u64,
    ) -> Result<Option<Resolution>, VaultError> {
        let raw = vault
            .store_view(Layer::Orchestration)
            .get(&layout::recon_resolution(run, n))
            .await?;
        raw.map(|raw| decode(&raw, "resolution")).transpose()
    }
}

/// Adds discrepancy `id`'s resolution to `batch` (on condition that it
/// has none yet), takes it off the open queue, and returns its audit record.
pub(super) fn resolution_write<S: Store>(
    vault: &Vault<S>,
    batch: &mut Batch,
    id: &DiscrepancyId,
    class: Class,
    resolution: &Resolution,
) -> Result<JoinedRecord, VaultError> {
    let resolution_key = layout::recon_resolution(&id.run, id.n);
    batch
        .expect_absent(resolution_key.clone())
        .put(resolution_key, encode(resolution)?)
        .delete(layout::recon_open(&id.run, id.n));
    Ok(JoinedRecord {
        operation: Operation::ReconciliationResolve,
        object: Some(vault.audit_object(id)),
        detail: Some(format!(
            "class={} action={} reason: {}",
            class.as_str(),
            resolution.action.as_str(),
            resolution.reason
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discrepancy_ids_parse_strictly_and_reasons_carry_no_personal_number() {
        let run = "rcn_0123456789abcdef0123456789abcdef";
        let id = DiscrepancyId::parse(&format!("{run}-12")).unwrap();
        assert_eq!((id.n, id.to_string()), (12, format!("{run}-12")));
        for bad in [
            run.to_owned(),
            format!("{run}-"),
            format!("{run}-x"),
            format!("{run}-1234567890"),
            "rcn_x-1".to_owned(),
        ] {
            assert!(DiscrepancyId::parse(&bad).is_err(), "{bad}");
        }
        assert!(check_reason("cut-off difference, on the next file").is_ok());
        assert!(check_reason("short").is_err());
        assert!(check_reason("card 4242 4242 4242 4242 refunded").is_err());
        assert!(
            check_reason("two\\nlines are not one").is_ok(),
            "a backslash is not a control"
        );
        assert!(check_reason("two\nlines are not one").is_err());
    }
}
