//! The gateway: the only code that opens a PAN or identity plaintext after
//! it was stored, to hand it to a bank channel (or a reserved phone number
//! to the SMS carrier). Every opening is audited before the data leaves.
//!
//! Callers (the orchestration layer) pass references and get back outcomes,
//! opaque `SignedAgreement`s and bank reason codes, never plaintext.

mod channel;
mod held;
mod opens_pan;
mod payments;
mod settings;
mod verification;

pub use payments::{PayOpening, PayOrder};
pub use verification::CardVerification;

use super::audited::Audit;
use super::{
    layout, records, AuditObject, JoinedRecord, Opening, Recorded, SignedAgreement, Vault, VaultError,
};
use crate::audit::{Actor, Outcome};
use crate::channel::protocol::{
    ApplyResult, CancelRequest, CardKind, ConfirmRequest, RefusalCode, SmsRequest, SmsResponse, SMS_PATH,
};
use crate::channel::{ChannelClient, ClientError, ClientTls};
use crate::domain::error_code::{Class, ErrorCode};
use crate::domain::ids::ChannelId;
use crate::domain::operation::Operation;
use crate::domain::refs::{AgreementRef, CardRef, IdentityRef};
use crate::domain::time::Timestamp;
use crate::store::{Batch, Store};
use channel::{Channel, ChannelFailure, QuickPay};
use held::HeldVerifications;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    #[error("no channel `{}` is configured", .0.as_str())]
    UnknownChannel(ChannelId),
    #[error("the channel refused: {}", .0.as_str())]
    Refused(RefusalCode),
    #[error("the channel is unreachable or unavailable: {0}")]
    Unavailable(String),
    #[error("the channel did not answer; whether it acted is unknown: {0}")]
    Unanswered(String),
    #[error("the channel answered outside its protocol: {0}")]
    Protocol(String),
    #[error("no SMS carrier is configured")]
    NoCarrier,
    #[error("the card verification data is no longer held (time-to-live passed or the service restarted)")]
    VerificationGone,
    #[error("channel client: {0}")]
    Client(#[from] ClientError),
    #[error(transparent)]
    Vault(#[from] VaultError),
}

impl GatewayError {
    /// This failure's one code (see `ErrorCode`).
    pub fn code(&self) -> ErrorCode {
        let upstream = || ErrorCode::new(Class::Upstream, "channel-error", "Bank channel error");
        match self {
            GatewayError::UnknownChannel(_) => ErrorCode::invalid("channel", "unknown"),
            GatewayError::Refused(code) => {
                ErrorCode::new(Class::Invalid, "bank-refused", "Refused by the bank")
                    .at_field("channel", code.as_str())
            }
            GatewayError::Unavailable(_) | GatewayError::Unanswered(_) => ErrorCode::new(
                Class::Unavailable,
                "channel-unavailable",
                "Bank channel unavailable",
            )
            .retry_after(5),
            GatewayError::NoCarrier => {
                ErrorCode::new(Class::Unavailable, "sms-unavailable", "No SMS carrier")
            }
            GatewayError::Protocol(_) => {
                upstream().public_detail("the bank channel answered outside its protocol")
            }
            GatewayError::VerificationGone | GatewayError::Client(_) => {
                upstream().public_detail("the bank gateway failed")
            }
            GatewayError::Vault(e) => e.code(),
        }
    }
}

impl From<ChannelFailure> for GatewayError {
    fn from(f: ChannelFailure) -> Self {
        match f {
            ChannelFailure::Refused(code) => GatewayError::Refused(code),
            ChannelFailure::Unavailable(why) => GatewayError::Unavailable(why),
            ChannelFailure::Unanswered(why) => GatewayError::Unanswered(why),
            ChannelFailure::Protocol(why) => GatewayError::Protocol(why),
        }
    }
}

/// An application for signing the gateway will send once its opening of
/// the card and identity is recorded.
pub struct ApplyOpening {
    channel: ChannelId,
    user_ref: String,
    card_ref: CardRef,
    identity_ref: IdentityRef,
    request_no: String,
}

impl Opening for ApplyOpening {
    /// The audit record of the PAN and identity leaving for the channel.
    fn record(&self) -> JoinedRecord {
        JoinedRecord {
            operation: Operation::GatewaySignApply,
            object: Some(AuditObject::named_by_vault(self.card_ref.to_string())),
            detail: Some(format!(
                "channel={} identity={}",
                self.channel.as_str(),
                self.identity_ref
            )),
        }
    }
}

/// What a debit's first write records as opened: the agreement number (to
/// pay), or the card and identity (to sign first at a backup channel).
pub enum DebitOpening {
    Pay(PayOpening),
    Apply(ApplyOpening),
}

impl Opening for DebitOpening {
    fn record(&self) -> JoinedRecord {
        match self {
            DebitOpening::Pay(pay) => pay.record(),
            DebitOpening::Apply(apply) => apply.record(),
        }
    }
}

/// A recorded `DebitOpening`, ready to send.
pub enum RecordedDebit {
    Pay(Recorded<PayOpening>),
    Apply(Recorded<ApplyOpening>),
}

impl Recorded<DebitOpening> {
    pub fn sendable(self) -> RecordedDebit {
        match self.into_inner() {
            DebitOpening::Pay(pay) => RecordedDebit::Pay(Recorded::new(pay)),
            DebitOpening::Apply(apply) => RecordedDebit::Apply(Recorded::new(apply)),
        }
    }
}

/// One configured bank channel.
#[derive(Clone, Debug)]
pub struct ChannelEndpoint {
    pub id: ChannelId,
    pub endpoint: String,
}

#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// How the banks know this platform.
    pub merchant_id: String,
    pub channels: Vec<ChannelEndpoint>,
    /// Where the platform's own SMS codes go; `None`: nowhere (a bank that
    /// sends no SMS cannot then be used for binding).
    pub sms_carrier: Option<String>,
    /// The gateway's client identity towards channels and the carrier.
    pub tls: ClientTls,
    pub timeout: Duration,
    /// How long a credit card's CVN and expiry wait for the signing call.
    pub verification_ttl: Duration,
}

/// What a channel answered to an application for signing.
#[derive(Debug)]
pub struct Applied {
    pub result: ApplyResult,
    pub apply_no: String,
    pub card_kind: CardKind,
    /// Present when the channel signed at once (pre-binding).
    pub agreement: Option<SignedAgreement>,
}

pub struct Gateway {
    merchant_id: String,
    channels: BTreeMap<ChannelId, Arc<dyn Channel>>,
    carrier: Option<ChannelClient>,
    held: Arc<HeldVerifications>,
    /// The platform's own address for bank notifications, known once the
    /// listener is bound.
    notify_base: std::sync::OnceLock<String>,
}

impl Gateway {
    pub fn new(config: &GatewayConfig) -> Result<Self, GatewayError> {
        let mut channels: BTreeMap<ChannelId, Arc<dyn Channel>> = BTreeMap::new();
        for c in &config.channels {
            let client = ChannelClient::new(&c.endpoint, &config.tls, config.timeout)?;
            channels.insert(c.id.clone(), Arc::new(QuickPay { client }));
        }
        let carrier = config
            .sms_carrier
            .as_deref()
            .map(|endpoint| ChannelClient::new(endpoint, &config.tls, config.timeout))
            .transpose()?;
        Ok(Gateway {
            merchant_id: config.merchant_id.clone(),
            channels,
            carrier,
            held: HeldVerifications::new(config.verification_ttl),
            notify_base: std::sync::OnceLock::new(),
        })
    }

    pub fn has_channel(&self, id: &ChannelId) -> bool {
        self.channels.contains_key(id)
    }

    /// How the banks know this platform (notifications must carry it).
    pub fn merchant_id(&self) -> &str {
        &self.merchant_id
    }

    /// Configured channel ids.
    pub fn channel_ids(&self) -> impl Iterator<Item = ChannelId> + '_ {
        self.channels.keys().cloned()
    }

    pub fn has_carrier(&self) -> bool {
        self.carrier.is_some()
    }

    fn channel(&self, id: &ChannelId) -> Result<&Arc<dyn Channel>, GatewayError> {
        self.channels
            .get(id)
            .ok_or_else(|| GatewayError::UnknownChannel(id.clone()))
    }

    /// Keeps a credit card's verification data for the signing call of
    /// `key` (a binding id), at most the configured time-to-live.
    pub fn hold_verification(&self, key: &str, verification: CardVerification) {
        self.held.hold(key, verification);
    }

    pub fn forget_verification(&self, key: &str) {
        self.held.forget(key);
    }

    /// How long held card verification data lives.
    pub fn verification_ttl(&self) -> Duration {
        self.held.ttl()
    }

    /// How many verifications are held right now (a metric; zero when idle).
    pub fn held_verifications(&self) -> usize {
        self.held.len()
    }

    /// Asks the channel to check the four elements and start signing: the
    /// opening recorded in a write of its own, then sent (a binding start).
    #[allow(clippy::too_many_arguments)]
    pub async fn apply<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        channel_id: &ChannelId,
        user_ref: &str,
        card_ref: &CardRef,
        identity_ref: &IdentityRef,
        request_no: &str,
    ) -> Result<Applied, GatewayError> {
        self.channel(channel_id)?;
        let opening = self.open_apply(channel_id, user_ref, card_ref, identity_ref, request_no);
        let recorded = self.record_opening(vault, actor, opening).await?;
        self.apply_recorded(vault, recorded).await
    }

    /// An application for signing about to be sent. Nothing is opened
    /// yet; its audit record is written with the caller's write
    /// (`Vault::reserve_joined`) or by `record_opening`. An unknown channel
    /// is refused when it is sent, after the token's own channel control
    /// had its say.
    pub fn open_apply(
        &self,
        channel_id: &ChannelId,
        user_ref: &str,
        card_ref: &CardRef,
        identity_ref: &IdentityRef,
        request_no: &str,
    ) -> ApplyOpening {
        ApplyOpening {
            channel: channel_id.clone(),
            user_ref: user_ref.to_owned(),
            card_ref: card_ref.clone(),
            identity_ref: identity_ref.clone(),
            request_no: request_no.to_owned(),
        }
    }

    /// Completes a signing with the bank's SMS code (if it sent one) and the
    /// card verification data of `held_key` (credit cards): `resent` with
    /// the confirm (another node holds the first copy), else the copy held
    /// here. The verification data is wiped after the call unless the call
    /// did not happen or only the code was wrong (the user may try again).
    #[allow(clippy::too_many_arguments)]
    pub async fn confirm<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        channel_id: &ChannelId,
        card_ref: &CardRef,
        apply_no: &str,
        sms_code: Option<&str>,
        held_key: Option<&str>,
        resent: Option<CardVerification>,
    ) -> Result<SignedAgreement, GatewayError> {
        let channel = self.channel(channel_id)?;
        let held = match (held_key, resent) {
            (Some(key), Some(verification)) => {
                self.held.forget(key);
                Some((std::time::Instant::now(), verification))
            }
            (Some(key), None) => Some(self.held.take(key).ok_or(GatewayError::VerificationGone)?),
            // A debit card's binding: nothing to send.
            (None, _) => None,
        };
        let audit = Audit::new(actor, Operation::GatewaySignConfirm, Some(card_ref.to_string()))
            .with_detail(format!("channel={}", channel_id.as_str()));
        vault.record(&audit, Outcome::Success, None).await?;
        let request = ConfirmRequest {
            merchant_id: self.merchant_id.clone(),
            apply_no: apply_no.to_owned(),
            sms_code: sms_code.map(|c| Zeroizing::new(c.to_owned())),
            cvn: held.as_ref().map(|(_, v)| v.cvn.clone()),
            expiry: held.as_ref().map(|(_, v)| v.expiry.clone()),
        };
        let result = channel.confirm(request).await;
        if let (Some(key), Some((since, verification))) = (held_key, held) {
            let retry_possible = matches!(
                result,
                Err(ChannelFailure::Unavailable(_))
                    | Err(ChannelFailure::Unanswered(_))
                    | Err(ChannelFailure::Refused(RefusalCode::SmsCodeMismatch))
            );
            if retry_possible {
                self.held.put_back(key, verification, since);
            }
        }
        let response = result?;
        Ok(SignedAgreement {
            channel: channel_id.clone(),
            card_ref: card_ref.clone(),
            agreement_no: response.agreement_no,
        })
    }

    /// Cancels an agreement at its channel and marks it cancelled here.
    pub async fn cancel<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        agreement_ref: &AgreementRef,
    ) -> Result<(), GatewayError> {
        let (record, agreement_no) = vault.open_agreement(agreement_ref).await?;
        let channel = self.channel(&record.channel)?;
        let audit = Audit::new(
            actor,
            Operation::GatewaySignCancel,
            Some(agreement_ref.to_string()),
        )
        .with_detail(format!("channel={}", record.channel.as_str()));
        vault.record(&audit, Outcome::Success, None).await?;
        channel
            .cancel(CancelRequest {
                merchant_id: self.merchant_id.clone(),
                agreement_no,
            })
            .await?;
        let key = layout::agreement(agreement_ref);
        let before = records::encode(&record)?;
        let mut cancelled = record;
        cancelled.cancelled_at = Some(Timestamp::now());
        let mut batch = Batch::new();
        batch
            .expect_equals(key.clone(), before)
            .put(key, records::encode(&cancelled)?);
        // The cancellation is stored with its own record: the channel's
        // answer, in the same write as the agreement it changes.
        let stored = vault
            .apply_audited(
                batch,
                &audit,
                Outcome::Success,
                Some("cancelled at the channel".into()),
            )
            .await?;
        if !stored {
            return Err(VaultError::Contention.into());
        }
        Ok(())
    }

    /// Sends the platform's own code to the identity's reserved phone.
    pub async fn send_code<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        identity_ref: &IdentityRef,
        code: &str,
    ) -> Result<(), GatewayError> {
        let carrier = self.carrier.as_ref().ok_or(GatewayError::NoCarrier)?;
        let identity = vault.open_identity(identity_ref).await?;
        let audit = Audit::new(actor, Operation::GatewaySms, Some(identity_ref.to_string()));
        vault.record(&audit, Outcome::Success, None).await?;
        let request = SmsRequest {
            phone: Zeroizing::new(identity.phone.expose().to_owned()),
            text: Zeroizing::new(format!(
                "【tokenvault】绑卡验证码{code}，5分钟内有效，请勿告诉他人。"
            )),
        };
        drop(identity);
        let _: SmsResponse = channel::call_json(carrier, SMS_PATH, request).await?;
        Ok(())
    }
}
