//! JSON shapes of the payment-password and binding calls. Passwords, CVN
//! and expiry arrive in `Zeroizing` strings and never appear in a response.

use crate::orchestration::BindingView;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zeroize::Zeroizing;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPasswordRequest {
    pub user_id: String,
    /// The user's stored identity: the password must not come from its
    /// birth date, ID number or phone.
    pub identity_ref: String,
    /// Six digits.
    #[schema(value_type = String)]
    pub password: Zeroizing<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    #[schema(value_type = String)]
    pub current: Zeroizing<String>,
    #[schema(value_type = String)]
    pub new: Zeroizing<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyPasswordRequest {
    #[schema(value_type = String)]
    pub password: Zeroizing<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct PasswordResponse {
    pub user_id: String,
    /// `set`, `changed` or `verified`.
    pub result: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartBindingRequest {
    pub user_id: String,
    pub card_ref: String,
    /// Must be the identity the user's payment password was set for.
    pub identity_ref: String,
    /// A configured bank channel.
    pub channel: String,
    /// Credit cards only: 3 or 4 digits, held in memory until the signing
    /// call and then wiped; never stored.
    #[schema(value_type = Option<String>)]
    pub cvn: Option<Zeroizing<String>>,
    /// Credit cards only: MMYY, same handling as `cvn`.
    #[schema(value_type = Option<String>)]
    pub expiry: Option<Zeroizing<String>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmBindingRequest {
    /// The 6-digit SMS code the user received.
    #[schema(value_type = String)]
    pub code: Zeroizing<String>,
    /// Credit cards, only when a confirm was answered 409
    /// `verification-not-here` (the node that started the binding holds
    /// the CVN in its memory alone): the CVN again, used for this signing
    /// call and wiped; never stored.
    #[schema(value_type = Option<String>)]
    pub cvn: Option<Zeroizing<String>>,
    /// With `cvn`: MMYY.
    #[schema(value_type = Option<String>)]
    pub expiry: Option<Zeroizing<String>>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct BindingResponse {
    pub binding_id: String,
    pub user_id: String,
    pub card_ref: String,
    pub masked_card: String,
    pub channel: String,
    /// awaiting_code, pre_bound, signed, failed, unbinding (an unbind has
    /// begun; no debit starts) or unbound.
    pub status: String,
    /// Who sent the SMS code: bank or platform.
    pub code_sender: String,
    /// The payment token, once signed.
    pub token: Option<String>,
    /// The reason code of a failed binding (the bank's or ours).
    pub failure: Option<String>,
    pub code_expires_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// An existing binding of this user and card, returned for a repeat.
    pub duplicate: bool,
}

impl From<BindingView> for BindingResponse {
    fn from(b: BindingView) -> Self {
        BindingResponse {
            binding_id: b.id.to_string(),
            user_id: b.user.to_string(),
            card_ref: b.card_ref.to_string(),
            masked_card: b.masked_card,
            channel: b.channel.as_str().to_owned(),
            status: b.status.as_str().to_owned(),
            code_sender: match b.code_sender {
                crate::orchestration::CodeSender::Bank => "bank".to_owned(),
                crate::orchestration::CodeSender::Platform => "platform".to_owned(),
            },
            token: b.token.map(|t| t.to_string()),
            failure: b.failure,
            code_expires_at: b.code_expires_at.seconds(),
            created_at: b.created_at.seconds(),
            updated_at: b.updated_at.seconds(),
            duplicate: b.duplicate,
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct BindingListResponse {
    pub user_id: String,
    pub bindings: Vec<BindingResponse>,
}
