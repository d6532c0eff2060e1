//! Bank agreements (签约号): sealed under their own record binding, and
//! stored in the same batch as the binding's payment token.

use super::audited::Audit;
use super::crypto::aad::{Binding, RecordKind};
use super::keys::fence::fence;
use super::records::{decode, encode, AgreementRecord};
use super::token::{DomainControls, TokenNumber};
use super::{layout, TokenView, Vault, VaultError};
use crate::audit::Actor;
use crate::domain::ids::ChannelId;
use crate::domain::operation::Operation;
use crate::domain::refs::{AgreementRef, CardRef};
use crate::domain::time::Timestamp;
use crate::store::{Batch, Store};
use std::fmt;
use zeroize::Zeroizing;

/// An agreement a channel has just signed, on its way from the gateway into
/// the store. The orchestration layer can hold and pass it, never read it.
pub struct SignedAgreement {
    pub(in crate::vault) channel: ChannelId,
    pub(in crate::vault) card_ref: CardRef,
    pub(in crate::vault) agreement_no: Zeroizing<String>,
}

impl SignedAgreement {
    pub fn channel(&self) -> &ChannelId {
        &self.channel
    }
    pub fn card_ref(&self) -> &CardRef {
        &self.card_ref
    }
}

impl fmt::Debug for SignedAgreement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignedAgreement({:?}, {})", self.channel, self.card_ref)
    }
}

fn agreement_binding(agreement_ref: &AgreementRef) -> Binding<'_> {
    Binding {
        kind: RecordKind::Agreement,
        record_id: agreement_ref.as_str(),
        field: "agreement_no",
    }
}

/// What `record_signing` wrote.
#[derive(Debug)]
pub struct Signing {
    pub agreement_ref: AgreementRef,
    pub token: TokenView,
}

impl<S: Store> Vault<S> {
    /// The sealed agreement record and the data-key version its write must
    /// be fenced on (`keys::fence`).
    async fn seal_agreement(
        &self,
        signed: &SignedAgreement,
        now: Timestamp,
    ) -> Result<(AgreementRef, AgreementRecord, u32), VaultError> {
        let agreement_ref = AgreementRef::generate()?;
        let (agreement_no, version) = self
            .seal_versioned(&agreement_binding(&agreement_ref), signed.agreement_no.as_bytes())
            .await?;
        let record = AgreementRecord {
            agreement_ref: agreement_ref.clone(),
            channel: signed.channel.clone(),
            card_ref: signed.card_ref.clone(),
            agreement_no,
            created_at: now,
            cancelled_at: None,
        };
        Ok((agreement_ref, record, version))
    }

    /// Seals and stores `signed`, issues the card's payment token with
    /// `controls`, and applies `extra` (the caller's own records, built for
    /// the agreement and token chosen here): one batch, one audit record.
    pub async fn record_signing(
        &self,
        actor: &Actor,
        signed: SignedAgreement,
        controls: DomainControls,
        now: Timestamp,
        extra: impl Fn(&AgreementRef, &TokenNumber) -> Result<Batch, VaultError>,
    ) -> Result<Signing, VaultError> {
        let detail = format!("card={} channel={}", signed.card_ref, signed.channel.as_str());
        let audit = |number: &TokenNumber| {
            Audit::new(actor, Operation::BindingConfirm, Some(number.to_string())).with_detail(detail.clone())
        };
        let (signed_ref, controls, audit, extra) = (&signed, &controls, &audit, &extra);
        let result = self
            .resealing(|| self.sign_once(signed_ref, controls, now, audit, extra))
            .await;
        let (agreement_ref, token) = self
            .audited(
                Audit::new(
                    actor,
                    Operation::BindingConfirm,
                    Some(signed.card_ref.to_string()),
                ),
                result,
            )
            .await?;
        Ok(Signing { agreement_ref, token })
    }

    /// One attempt of `record_signing`: seal, then issue the token with the
    /// agreement and `extra` in its write, fenced on the sealing version.
    async fn sign_once<'a>(
        &self,
        signed: &SignedAgreement,
        controls: &DomainControls,
        now: Timestamp,
        audit: &impl Fn(&TokenNumber) -> Audit<'a>,
        extra: &impl Fn(&AgreementRef, &TokenNumber) -> Result<Batch, VaultError>,
    ) -> Result<(AgreementRef, TokenView), VaultError> {
        let (agreement_ref, record, version) = self.seal_agreement(signed, now).await?;
        let encoded = encode(&record)?;
        let key = layout::agreement(&agreement_ref);
        let token = self
            .issue_token_with(&signed.card_ref, controls.clone(), now, audit, |token| {
                let mut batch = extra(&agreement_ref, &token.number)?;
                batch.expect_absent(key.clone()).put(key.clone(), encoded.clone());
                fence(&mut batch, version)?;
                Ok(batch)
            })
            .await?;
        Ok((agreement_ref, token))
    }

    /// Seals and stores `signed` alone (a pre-binding: no token until the
    /// platform's own code check passes), with `extra` in the same batch.
    pub async fn store_agreement(
        &self,
        actor: &Actor,
        signed: SignedAgreement,
        now: Timestamp,
        extra: impl Fn(&AgreementRef) -> Result<Batch, VaultError>,
    ) -> Result<AgreementRef, VaultError> {
        let (signed, extra) = (&signed, &extra);
        self.resealing(|| self.store_agreement_once(actor, signed, now, extra))
            .await
    }

    async fn store_agreement_once(
        &self,
        actor: &Actor,
        signed: &SignedAgreement,
        now: Timestamp,
        extra: &impl Fn(&AgreementRef) -> Result<Batch, VaultError>,
    ) -> Result<AgreementRef, VaultError> {
        let (agreement_ref, record, version) = self.seal_agreement(signed, now).await?;
        let key = layout::agreement(&agreement_ref);
        let mut batch = extra(&agreement_ref)?;
        batch.expect_absent(key.clone()).put(key, encode(&record)?);
        fence(&mut batch, version)?;
        let audit =
            Audit::new(actor, Operation::BindingStart, Some(agreement_ref.to_string())).with_detail(format!(
                "pre-bound card={} channel={}",
                signed.card_ref,
                signed.channel.as_str()
            ));
        if !self.commit_once(batch, &audit).await? {
            return Err(VaultError::Contention);
        }
        Ok(agreement_ref)
    }

    /// Issues a binding's payment token with `extra` in the same batch
    /// (the pre-binding's completion, once the platform's code matched).
    pub async fn issue_binding_token(
        &self,
        actor: &Actor,
        card_ref: &CardRef,
        controls: DomainControls,
        now: Timestamp,
        extra: impl Fn(&TokenNumber) -> Result<Batch, VaultError>,
    ) -> Result<TokenView, VaultError> {
        let detail = format!("card={card_ref}");
        let audit = |number: &TokenNumber| {
            Audit::new(actor, Operation::BindingConfirm, Some(number.to_string())).with_detail(detail.clone())
        };
        let result = self
            .issue_token_with(card_ref, controls, now, audit, |token| extra(&token.number))
            .await;
        self.audited(
            Audit::new(actor, Operation::BindingConfirm, Some(card_ref.to_string())),
            result,
        )
        .await
    }

    pub(in crate::vault) async fn agreement_record(
        &self,
        agreement_ref: &AgreementRef,
    ) -> Result<AgreementRecord, VaultError> {
        let bytes = self
            .store
            .get(&layout::agreement(agreement_ref))
            .await?
            .ok_or(VaultError::NotFound { what: "agreement" })?;
        decode(&bytes, "agreement")
    }

    /// The bank's agreement number, for the gateway's next call to the bank.
    pub(in crate::vault) async fn open_agreement(
        &self,
        agreement_ref: &AgreementRef,
    ) -> Result<(AgreementRecord, Zeroizing<String>), VaultError> {
        let record = self.agreement_record(agreement_ref).await?;
        let plain = self
            .open_sealed(&agreement_binding(agreement_ref), &record.agreement_no)
            .await?;
        let text =
            String::from_utf8(plain.to_vec()).map_err(|_| VaultError::Corrupt { what: "agreement" })?;
        Ok((record, Zeroizing::new(text)))
    }
}
