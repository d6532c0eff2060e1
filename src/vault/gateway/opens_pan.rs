//! The only code outside break-glass (`vault/reveal.rs`) that opens a PAN:
//! a signing application to a bank channel, which needs the card number
//! and the identity in clear. It takes the opening only as `Recorded`, so
//! the opening is on the audit trail before anything is opened, and the
//! plaintext is dropped before the channel is called.

use super::{Applied, ApplyOpening, Gateway, GatewayError};
use crate::channel::protocol::{ApplyRequest, ApplyResult};
use crate::store::Store;
use crate::vault::{Recorded, SignedAgreement, Vault};
use zeroize::Zeroizing;

impl Gateway {
    /// Sends an application whose opening of the PAN and identity is on
    /// the trail: only now are they opened.
    pub async fn apply_recorded<S: Store>(
        &self,
        vault: &Vault<S>,
        recorded: Recorded<ApplyOpening>,
    ) -> Result<Applied, GatewayError> {
        let opening = recorded.into_inner();
        let channel = self.channel(&opening.channel)?;
        let pan = vault.open_pan(&opening.card_ref).await?;
        let identity = vault.open_identity(&opening.identity_ref).await?;
        let request = ApplyRequest {
            merchant_id: self.merchant_id.clone(),
            user_ref: opening.user_ref.clone(),
            request_no: opening.request_no.clone(),
            card_no: Zeroizing::new(pan.expose_digits().to_owned()),
            name: Zeroizing::new(identity.name.expose().to_owned()),
            id_no: Zeroizing::new(identity.id_number.expose().to_owned()),
            phone: Zeroizing::new(identity.phone.expose().to_owned()),
        };
        drop((pan, identity));
        let response = channel.apply(request).await?;
        let channel_id = &opening.channel;
        let card_ref = &opening.card_ref;
        let agreement = match (response.result, response.agreement_no) {
            (ApplyResult::Signed, Some(no)) if !no.is_empty() => Some(SignedAgreement {
                channel: channel_id.clone(),
                card_ref: card_ref.clone(),
                agreement_no: Zeroizing::new(no),
            }),
            (ApplyResult::Signed, _) => {
                return Err(GatewayError::Protocol(
                    "signed without an agreement number".into(),
                ))
            }
            _ => None,
        };
        Ok(Applied {
            result: response.result,
            apply_no: response.apply_no,
            card_kind: response.card_kind,
            agreement,
        })
    }
}
