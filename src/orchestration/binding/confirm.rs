//! Confirming a binding with the SMS code: the platform's own code is
//! checked here (keyed digest, constant-time), the bank's by the bank; wrong
//! codes are counted and end the binding at the limit; a signing stores the
//! sealed agreement and issues the payment token in one batch, with the
//! caller's remembered answer.

use super::super::{layout, OrchestrationError, Orchestrator};
use super::{BindingId, BindingRecord, BindingStatus, BindingView, CodeSender, ConfirmCode};
use crate::audit::{Actor, Outcome};
use crate::channel::protocol::RefusalCode;
use crate::domain::operation::Operation;
use crate::domain::refs::AgreementRef;
use crate::domain::time::Timestamp;
use crate::store::Store;
use crate::vault::gateway::{CardVerification, GatewayError};
use crate::vault::token::TokenNumber;
use crate::vault::{Joined, Vault};
use subtle::ConstantTimeEq;

impl Orchestrator {
    /// Whether the node that started `record` may still hold its card
    /// verification data: the binding is younger than the time it is held.
    fn may_be_held_elsewhere(&self, record: &BindingRecord, now: Timestamp) -> bool {
        let ttl = i64::try_from(self.gateway.verification_ttl().as_secs()).unwrap_or(i64::MAX);
        now.seconds() - record.created_at.seconds() < ttl
    }

    pub async fn confirm_binding<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        id: &BindingId,
        code: ConfirmCode,
        resent: Option<CardVerification>,
        answer: &dyn Joined<BindingView>,
    ) -> Result<BindingView, OrchestrationError> {
        let result = self.confirm_inner(vault, actor, id, code, resent, answer).await;
        self.audit_failure(
            vault,
            actor,
            Operation::BindingConfirm,
            vault.audit_object(id),
            result,
        )
        .await
    }

    async fn confirm_inner<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        id: &BindingId,
        code: ConfirmCode,
        resent: Option<CardVerification>,
        answer: &dyn Joined<BindingView>,
    ) -> Result<BindingView, OrchestrationError> {
        let _one_confirm_per_binding = self.locks.lock(&layout::binding(id)).await;
        let (record, raw) = self.load(vault, id).await?;
        match record.status {
            BindingStatus::Signed => return Ok(record.view(true)),
            BindingStatus::Failed | BindingStatus::Unbinding | BindingStatus::Unbound => {
                return Err(OrchestrationError::BindingClosed(record.status))
            }
            BindingStatus::AwaitingCode | BindingStatus::PreBound => {}
        }
        let now = Timestamp::now();
        if record.code_expires_at <= now {
            self.fail(
                vault,
                actor,
                Operation::BindingConfirm,
                record,
                &raw,
                "code_expired",
            )
            .await?;
            return Err(OrchestrationError::Failed("code_expired".to_owned()));
        }
        if let Some(expected) = record.platform_code {
            let given = vault.code_digest(id.as_str(), code.as_str());
            if !bool::from(given.ct_eq(&expected)) {
                return Err(self.wrong_code(vault, actor, record, &raw).await?);
            }
        }
        if record.status == BindingStatus::PreBound {
            return self.sign_pre_bound(vault, actor, record, &raw, now, answer).await;
        }
        let sms_code = (record.code_sender == CodeSender::Bank).then(|| code.as_str());
        let held_key = record.holds_verification.then(|| record.id.as_str());
        let signed = self
            .gateway
            .confirm(
                vault,
                actor,
                &record.channel,
                &record.card_ref,
                &record.apply_no,
                sms_code,
                held_key,
                resent,
            )
            .await;
        let agreement = match signed {
            Ok(agreement) => agreement,
            Err(GatewayError::Refused(RefusalCode::SmsCodeMismatch)) => {
                return Err(self.wrong_code(vault, actor, record, &raw).await?)
            }
            Err(GatewayError::Refused(code)) => {
                self.fail(
                    vault,
                    actor,
                    Operation::BindingConfirm,
                    record,
                    &raw,
                    code.as_str(),
                )
                .await?;
                return Err(OrchestrationError::BankRefused(code));
            }
            Err(GatewayError::VerificationGone) if self.may_be_held_elsewhere(&record, now) => {
                // Not this node's copy to lose: the binding stays open.
                return Err(OrchestrationError::VerificationNotHere);
            }
            Err(GatewayError::VerificationGone) => {
                let reason = "card_verification_expired";
                self.fail(vault, actor, Operation::BindingConfirm, record, &raw, reason)
                    .await?;
                return Err(OrchestrationError::Failed(reason.to_owned()));
            }
            Err(other) => return Err(other.into()),
        };
        let controls = self
            .policy
            .token
            .controls(self.routing.route_of(&record.channel), now)?;
        let signing = vault
            .record_signing(actor, agreement, controls, now, |agreement_ref, token| {
                let signed = record.signed(Some(agreement_ref), token, now);
                let mut batch = Self::signed_batch(&raw, &signed)?;
                batch.append(answer.writes(&signed.view(false))?);
                Ok(batch)
            })
            .await?;
        Ok(record
            .signed(Some(&signing.agreement_ref), &signing.token.number, now)
            .view(false))
    }

    async fn sign_pre_bound<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        record: BindingRecord,
        raw: &[u8],
        now: Timestamp,
        answer: &dyn Joined<BindingView>,
    ) -> Result<BindingView, OrchestrationError> {
        let controls = self
            .policy
            .token
            .controls(self.routing.route_of(&record.channel), now)?;
        let token = vault
            .issue_binding_token(actor, &record.card_ref, controls, now, |token| {
                let signed = record.signed(None, token, now);
                let mut batch = Self::signed_batch(raw, &signed)?;
                batch.append(answer.writes(&signed.view(false))?);
                Ok(batch)
            })
            .await?;
        Ok(record.signed(None, &token.number, now).view(false))
    }

    /// Counts a wrong code; at the limit the binding fails. Returns the
    /// error to answer with.
    async fn wrong_code<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        mut record: BindingRecord,
        raw: &[u8],
    ) -> Result<OrchestrationError, OrchestrationError> {
        record.attempts += 1;
        if record.attempts >= self.policy.max_code_attempts {
            let reason = "code_attempts_exhausted";
            self.fail(vault, actor, Operation::BindingConfirm, record, raw, reason)
                .await?;
            return Ok(OrchestrationError::Failed(reason.to_owned()));
        }
        let remaining = self.policy.max_code_attempts - record.attempts;
        record.updated_at = Timestamp::now();
        let batch = Self::update_batch(raw, &record)?;
        self.commit(
            vault,
            actor,
            Operation::BindingConfirm,
            &record,
            batch,
            Outcome::Refused,
        )
        .await?;
        Ok(OrchestrationError::CodeMismatch { remaining })
    }

    /// Ends a binding with `reason`: its held verification data is wiped
    /// and a pre-binding's agreement is cancelled at the channel.
    pub(super) async fn fail<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        operation: Operation,
        mut record: BindingRecord,
        raw: &[u8],
        reason: &str,
    ) -> Result<(), OrchestrationError> {
        self.gateway.forget_verification(record.id.as_str());
        if let (BindingStatus::PreBound, Some(agreement)) = (record.status, &record.agreement_ref) {
            if let Err(e) = self.gateway.cancel(vault, actor, agreement).await {
                // The channel keeps an agreement we no longer honour; it is
                // marked failed here and can be cancelled again later.
                tracing::warn!(binding = %record.id, error = %e, "could not cancel a pre-binding at its channel");
            }
        }
        record.status = BindingStatus::Failed;
        record.failure = Some(reason.to_owned());
        record.holds_verification = false;
        record.updated_at = Timestamp::now();
        let batch = Self::update_batch(raw, &record)?;
        self.commit(vault, actor, operation, &record, batch, Outcome::Refused)
            .await
    }
}

impl BindingRecord {
    /// This binding, signed with `token` (and the agreement stored with it
    /// now; a pre-binding stored its agreement at start).
    fn signed(
        &self,
        agreement_ref: Option<&AgreementRef>,
        token: &TokenNumber,
        now: Timestamp,
    ) -> BindingRecord {
        let mut signed = self.clone();
        signed.status = BindingStatus::Signed;
        if let Some(agreement_ref) = agreement_ref {
            signed.agreement_ref = Some(agreement_ref.clone());
        }
        signed.token = Some(token.clone());
        signed.holds_verification = false;
        signed.updated_at = now;
        signed
    }
}
