//! Starting a binding: preconditions (payment password, the user's own
//! identity, CVN/expiry for credit cards, duplicates), then the bank's
//! four-element check through the gateway, then the SMS: the bank's, or
//! the platform's own where the bank sends none or signed at once.

use super::super::{layout, OrchestrationError, Orchestrator, SharedCardPolicy};
use super::{BindingId, BindingRecord, BindingStatus, BindingView, CodeSender};
use crate::audit::{Actor, Outcome};
use crate::channel::protocol::{ApplyResult, CardKind};
use crate::domain::ids::ChannelId;
use crate::domain::operation::Operation;
use crate::domain::refs::{CardRef, IdentityRef, UserId};
use crate::domain::time::Timestamp;
use crate::store::Store;
use crate::vault::card::CardType;
use crate::vault::gateway::{CardVerification, GatewayError};
use crate::vault::{Joined, Vault};
use zeroize::Zeroizing;

/// What a caller asks for. Credit cards bring their verification data,
/// which goes to the gateway's memory and nowhere else.
pub struct StartBinding {
    pub user: UserId,
    pub card_ref: CardRef,
    pub identity_ref: IdentityRef,
    pub channel: ChannelId,
    pub verification: Option<CardVerification>,
}

pub(crate) fn platform_code() -> Result<Zeroizing<String>, OrchestrationError> {
    let mut code = Zeroizing::new(String::with_capacity(6));
    for _ in 0..6 {
        let digit = crate::domain::random::below(10).map_err(crate::vault::VaultError::from)?;
        // below(10) < 10: one ASCII digit.
        code.push(char::from(b'0' + digit as u8));
    }
    Ok(code)
}

impl Orchestrator {
    /// Starts (or, for a repeat, returns) the user's binding of a card.
    /// `Ok((view, true))` for a new binding.
    pub async fn start_binding<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        input: StartBinding,
        answer: &dyn Joined<(BindingView, bool)>,
    ) -> Result<(BindingView, bool), OrchestrationError> {
        let object = Some(vault.audit_object(&input.card_ref));
        let result = self.start_inner(vault, actor, input, answer).await;
        if let Err(e) = &result {
            let (outcome, detail) = e.audit();
            vault
                .record_outcome(actor, Operation::BindingStart, object, outcome, Some(detail))
                .await?;
        }
        result
    }

    async fn start_inner<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        input: StartBinding,
        answer: &dyn Joined<(BindingView, bool)>,
    ) -> Result<(BindingView, bool), OrchestrationError> {
        if !self.gateway.has_channel(&input.channel) {
            return Err(OrchestrationError::UnknownChannel(
                input.channel.as_str().to_owned(),
            ));
        }
        let password = vault
            .password_status(&input.user)
            .await?
            .ok_or(OrchestrationError::PasswordRequired)?;
        if password.identity_ref != input.identity_ref {
            return Err(OrchestrationError::NotUsersIdentity);
        }
        let card = vault.card(actor, &input.card_ref).await?;
        match (card.card_type, &input.verification) {
            (CardType::Credit, None) => return Err(OrchestrationError::VerificationRequired),
            (CardType::Debit, Some(_)) => return Err(OrchestrationError::VerificationNotForDebit),
            _ => {}
        }
        let _one_start_per_card = self
            .locks
            .lock(&layout::card_bindings_prefix(&input.card_ref))
            .await;
        let now = Timestamp::now();
        for existing in self.bindings_of_card(vault, &input.card_ref).await? {
            if !existing.is_live(now) {
                continue;
            }
            if existing.user == input.user {
                return Ok((existing.view(true), false));
            }
            if existing.status == BindingStatus::Signed && self.policy.shared_card == SharedCardPolicy::Refuse
            {
                return Err(OrchestrationError::CardBoundToAnotherUser);
            }
        }

        let id = BindingId::generate().map_err(crate::vault::VaultError::from)?;
        let applied = self
            .gateway
            .apply(
                vault,
                actor,
                &input.channel,
                input.user.as_str(),
                &input.card_ref,
                &input.identity_ref,
                id.as_str(),
            )
            .await;
        let mut record = BindingRecord {
            id: id.clone(),
            user: input.user.clone(),
            card_ref: input.card_ref.clone(),
            identity_ref: input.identity_ref.clone(),
            channel: input.channel.clone(),
            masked_card: card.masked.as_str().to_owned(),
            card_kind: match card.card_type {
                CardType::Credit => CardKind::Credit,
                _ => CardKind::Debit,
            },
            status: BindingStatus::AwaitingCode,
            code_sender: CodeSender::Bank,
            apply_no: String::new(),
            platform_code: None,
            attempts: 0,
            code_expires_at: Timestamp(now.seconds() + self.policy.code_ttl.as_secs() as i64),
            holds_verification: false,
            agreement_ref: None,
            token: None,
            failure: None,
            backup_agreements: Vec::new(),
            created_at: now,
            updated_at: now,
        };
        let applied = match applied {
            Ok(applied) => applied,
            Err(GatewayError::Refused(code)) => {
                // Kept as a failed binding: the user's history shows why.
                record.status = BindingStatus::Failed;
                record.failure = Some(code.as_str().to_owned());
                let batch = Self::create_batch(&record)?;
                self.commit(
                    vault,
                    actor,
                    Operation::BindingStart,
                    &record,
                    batch,
                    Outcome::Refused,
                )
                .await?;
                return Err(OrchestrationError::BankRefused(code));
            }
            Err(other) => return Err(other.into()),
        };
        record.apply_no = applied.apply_no;
        record.card_kind = applied.card_kind;
        if applied.result != ApplyResult::Signed
            && applied.card_kind == CardKind::Credit
            && input.verification.is_none()
        {
            return Err(OrchestrationError::VerificationRequired);
        }
        match (applied.result, applied.agreement) {
            (ApplyResult::SmsSent, _) => {
                self.hold(&mut record, input.verification);
                let mut batch = Self::create_batch(&record)?;
                batch.append(answer.writes(&(record.view(false), true))?);
                self.commit(
                    vault,
                    actor,
                    Operation::BindingStart,
                    &record,
                    batch,
                    Outcome::Success,
                )
                .await?;
            }
            (ApplyResult::SmsNotSent, _) => {
                let code = platform_code()?;
                record.code_sender = CodeSender::Platform;
                record.platform_code = Some(vault.code_digest(id.as_str(), &code));
                self.gateway
                    .send_code(vault, actor, &input.identity_ref, &code)
                    .await?;
                self.hold(&mut record, input.verification);
                let mut batch = Self::create_batch(&record)?;
                batch.append(answer.writes(&(record.view(false), true))?);
                if let Err(e) = self
                    .commit(
                        vault,
                        actor,
                        Operation::BindingStart,
                        &record,
                        batch,
                        Outcome::Success,
                    )
                    .await
                {
                    self.gateway.forget_verification(id.as_str());
                    return Err(e);
                }
            }
            (ApplyResult::Signed, Some(agreement)) => {
                // Pre-binding: the channel signed on card and name alone;
                // the platform's own SMS check decides whether it stands.
                drop(input.verification);
                let code = platform_code()?;
                record.status = BindingStatus::PreBound;
                record.code_sender = CodeSender::Platform;
                record.platform_code = Some(vault.code_digest(id.as_str(), &code));
                let agreement_ref = vault
                    .store_agreement(actor, agreement, now, |agreement_ref| {
                        let mut stored = record.clone();
                        stored.agreement_ref = Some(agreement_ref.clone());
                        Self::create_batch(&stored)
                    })
                    .await?;
                record.agreement_ref = Some(agreement_ref);
                if let Err(e) = self
                    .gateway
                    .send_code(vault, actor, &input.identity_ref, &code)
                    .await
                {
                    // No code reached the user: undo the pre-binding.
                    let (current, raw) = self.load(vault, &id).await?;
                    self.fail(
                        vault,
                        actor,
                        Operation::BindingStart,
                        current,
                        &raw,
                        "sms_unavailable",
                    )
                    .await?;
                    return Err(e.into());
                }
            }
            (ApplyResult::Signed, None) => {
                return Err(OrchestrationError::Failed("channel_protocol".to_owned()));
            }
        }
        Ok((record.view(false), true))
    }

    fn hold(&self, record: &mut BindingRecord, verification: Option<CardVerification>) {
        if let Some(v) = verification {
            self.gateway.hold_verification(record.id.as_str(), v);
            record.holds_verification = true;
        }
    }
}
