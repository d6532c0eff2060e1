//! Sign-and-pay at a backup channel: the card was signed at its primary
//! channel only, so the debit first applies for signing at the backup
//! (the bank checks the four elements and sends its SMS, or the platform
//! sends its own code), and the user's one code both signs and pays.
//! A channel that signs at once (card and name alone) signs, but pays only
//! once the user enters the platform's own SMS code (170号's multi-factor:
//! the card and name are not enough to pay at a channel the user never
//! proved their phone to).

use super::super::binding::{platform_code, BindingId, CodeSender, ConfirmCode};
use super::super::{layout, OrchestrationError, Orchestrator};
use super::debit::Step;
use super::settle::BankWord;
use super::write::{Answering, ViewAnswer};
use super::{BackupSigning, PaymentId, PaymentRecord, PaymentStatus, PaymentView};
use crate::audit::Actor;
use crate::channel::protocol::{ApplyResult, RefusalCode};
use crate::domain::operation::Operation;
use crate::domain::refs::AgreementRef;
use crate::domain::time::Timestamp;
use crate::store::Store;
use crate::vault::gateway::{ApplyOpening, GatewayError};
use crate::vault::{Joined, Recorded, SignedAgreement, Vault};
use subtle::ConstantTimeEq;

impl Orchestrator {
    pub(super) async fn sign_then_pay<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        mut record: PaymentRecord,
        raw: Vec<u8>,
        opening: Recorded<ApplyOpening>,
        answer: &dyn Answering,
    ) -> Result<Step, OrchestrationError> {
        let (binding, _) = self.load(vault, &record.binding).await?;
        let applied = self.gateway.apply_recorded(vault, opening).await;
        let op = Operation::PaymentDebit;
        let applied = match applied {
            Ok(applied) => applied,
            Err(GatewayError::Unavailable(why)) | Err(GatewayError::Unanswered(why)) => {
                // An application moves no money: safe to try the next channel.
                self.routing.failed(vault, &record.channel).await;
                return self.unreached(vault, actor, record, &raw, why).await;
            }
            Err(GatewayError::Refused(code)) => {
                let word = BankWord::failed(&format!("backup_signing_{}", code.as_str()));
                let record = self
                    .settle_payment(vault, actor, op, record, &raw, word, answer)
                    .await?;
                return Ok(Step::Done(record));
            }
            Err(e) => return Err(e.into()),
        };
        self.routing.succeeded(vault, &record.channel).await;
        let code_expires_at = Timestamp(Timestamp::now().seconds() + self.policy.code_ttl.as_secs() as i64);
        let signing = |code_sender, platform_code| BackupSigning {
            apply_no: applied.apply_no.clone(),
            code_sender,
            platform_code,
            attempts: 0,
            code_expires_at,
        };
        let signing = match (applied.result, applied.agreement) {
            (ApplyResult::Signed, Some(agreement)) => {
                // Signed on card and name alone: kept, and used only after
                // the user's code (`confirm_payment` finds it signed).
                self.store_backup_agreement(vault, actor, &record.binding, agreement)
                    .await?;
                let digest = self
                    .send_platform_code(vault, actor, &record.id, &binding.identity_ref)
                    .await?;
                signing(CodeSender::Platform, Some(digest))
            }
            (ApplyResult::Signed, None) => {
                let word = BankWord::failed("backup_signing_channel_protocol");
                let record = self
                    .settle_payment(vault, actor, op, record, &raw, word, answer)
                    .await?;
                return Ok(Step::Done(record));
            }
            (ApplyResult::SmsSent, _) => signing(CodeSender::Bank, None),
            (ApplyResult::SmsNotSent, _) => {
                let digest = self
                    .send_platform_code(vault, actor, &record.id, &binding.identity_ref)
                    .await?;
                signing(CodeSender::Platform, Some(digest))
            }
        };
        record.backup_signing = Some(signing);
        let word = BankWord {
            status: PaymentStatus::AwaitingCode,
            bank_txn_no: None,
            failure: None,
        };
        let record = self
            .settle_payment(vault, actor, op, record, &raw, word, answer)
            .await?;
        Ok(Step::Done(record))
    }

    /// Sends the platform's own SMS code for payment `id` to the
    /// identity's reserved phone; its keyed digest is what is kept.
    async fn send_platform_code<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        id: &PaymentId,
        identity: &crate::domain::refs::IdentityRef,
    ) -> Result<[u8; 32], OrchestrationError> {
        let code = platform_code()?;
        let digest = vault.code_digest(id.as_str(), &code);
        self.gateway.send_code(vault, actor, identity, &code).await?;
        Ok(digest)
    }

    /// Stores an agreement signed at a backup channel on its binding.
    async fn store_backup_agreement<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        binding_id: &BindingId,
        agreement: SignedAgreement,
    ) -> Result<AgreementRef, OrchestrationError> {
        let _binding_busy = self.locks.lock(&layout::binding(binding_id)).await;
        let (binding, raw) = self.load(vault, binding_id).await?;
        let channel = agreement.channel().clone();
        let agreement_ref = vault
            .store_agreement(actor, agreement, Timestamp::now(), |agreement_ref| {
                let mut updated = binding.clone();
                updated
                    .backup_agreements
                    .push((channel.clone(), agreement_ref.clone()));
                updated.updated_at = Timestamp::now();
                Self::update_batch(&raw, &updated)
            })
            .await?;
        Ok(agreement_ref)
    }

    /// The user's SMS code for a debit signing at a backup channel: signs
    /// there, then pays.
    pub async fn confirm_payment<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        id: &PaymentId,
        code: ConfirmCode,
        answer: &dyn Joined<PaymentView>,
    ) -> Result<PaymentView, OrchestrationError> {
        let answer = ViewAnswer(answer);
        let result = self.confirm_payment_inner(vault, actor, id, code, &answer).await;
        self.audit_failure(
            vault,
            actor,
            Operation::PaymentConfirm,
            vault.audit_object(id),
            result,
        )
        .await
    }

    async fn confirm_payment_inner<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        id: &PaymentId,
        code: ConfirmCode,
        answer: &dyn Answering,
    ) -> Result<PaymentView, OrchestrationError> {
        let _one_flow_per_payment = self.payment_locks.lock(&layout::payment(id)).await;
        let (record, raw) = self.load_payment(vault, id).await?;
        let Some(signing) = record.backup_signing.clone() else {
            return Err(OrchestrationError::PaymentTakesNoCode(record.status));
        };
        let op = Operation::PaymentConfirm;
        if signing.code_expires_at <= Timestamp::now() {
            let word = BankWord::closed("code_expired");
            self.apply_bank_word(vault, actor, op, record, &raw, word).await?;
            return Err(OrchestrationError::PaymentFailed("code_expired".to_owned()));
        }
        if let Some(expected) = signing.platform_code {
            let given = vault.code_digest(id.as_str(), code.as_str());
            if !bool::from(given.ct_eq(&expected)) {
                return Err(self.wrong_payment_code(vault, actor, record, &raw).await?);
            }
        }
        // Signed at once on card and name: the platform's code (checked
        // above) was all that was missing.
        let (binding, _) = self.load(vault, &record.binding).await?;
        if let Some((_, agreement_ref)) = binding
            .backup_agreements
            .iter()
            .find(|(channel, _)| *channel == record.channel)
        {
            return self
                .pay_once_signed(vault, actor, record, &raw, agreement_ref, answer)
                .await;
        }
        let sms_code = (signing.code_sender == CodeSender::Bank).then(|| code.as_str());
        let signed = self
            .gateway
            .confirm(
                vault,
                actor,
                &record.channel,
                &record.card_ref,
                &signing.apply_no,
                sms_code,
                None,
                None,
            )
            .await;
        let agreement = match signed {
            Ok(agreement) => agreement,
            Err(GatewayError::Refused(RefusalCode::SmsCodeMismatch)) => {
                return Err(self.wrong_payment_code(vault, actor, record, &raw).await?)
            }
            Err(GatewayError::Refused(code)) => {
                let word = BankWord::failed(&format!("backup_signing_{}", code.as_str()));
                let record = self
                    .settle_payment(vault, actor, op, record, &raw, word, answer)
                    .await?;
                return Ok(record.view());
            }
            Err(other) => return Err(other.into()),
        };
        let agreement_ref = self
            .store_backup_agreement(vault, actor, &record.binding, agreement)
            .await?;
        self.pay_once_signed(vault, actor, record, &raw, &agreement_ref, answer)
            .await
    }

    /// The payment read as `raw`, its signing done, paid under the
    /// agreement signed at its channel.
    async fn pay_once_signed<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        record: PaymentRecord,
        raw: &[u8],
        agreement_ref: &AgreementRef,
        answer: &dyn Answering,
    ) -> Result<PaymentView, OrchestrationError> {
        let op = Operation::PaymentConfirm;
        let mut paying = record;
        paying.status = paying.status.transition(PaymentStatus::Processing)?;
        paying.backup_signing = None;
        let batch = Self::update_payment_batch(raw, &paying)?;
        self.commit_payment(vault, actor, op, &paying, batch).await?;
        let raw = crate::vault::encode(&paying)?;
        match self
            .pay_under(vault, actor, paying, raw, agreement_ref, answer)
            .await?
        {
            Step::Done(record) => Ok(record.view()),
            // Stored unsent, its reservation back.
            Step::Unreached { .. } => Err(OrchestrationError::ChannelUnavailable),
        }
    }

    async fn wrong_payment_code<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        mut record: PaymentRecord,
        raw: &[u8],
    ) -> Result<OrchestrationError, OrchestrationError> {
        let op = Operation::PaymentConfirm;
        let attempts = match record.backup_signing.as_mut() {
            Some(signing) => {
                signing.attempts += 1;
                signing.attempts
            }
            None => return Ok(OrchestrationError::PaymentTakesNoCode(record.status)),
        };
        if attempts >= self.policy.max_code_attempts {
            let reason = "code_attempts_exhausted";
            self.apply_bank_word(vault, actor, op, record, raw, BankWord::failed(reason))
                .await?;
            return Ok(OrchestrationError::PaymentFailed(reason.to_owned()));
        }
        record.updated_at = Timestamp::now();
        let batch = Self::update_payment_batch(raw, &record)?;
        self.commit_payment(vault, actor, op, &record, batch).await?;
        Ok(OrchestrationError::CodeMismatch {
            remaining: self.policy.max_code_attempts - attempts,
        })
    }
}
