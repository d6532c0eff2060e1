//! The JSON shapes of the API. Requests refuse unknown fields; plaintext
//! inputs are held in `Zeroizing` strings; responses carry references and
//! masked values only (the reveal response is the one exception).

use crate::audit::AuditRecord;
use crate::domain::amount::AmountCeiling;
use crate::domain::ids::{ChannelId, Currency, MerchantId};
use crate::domain::time::Timestamp;
use crate::domain::validation::{Field, ValidationError};
use crate::vault::token::{ControlsSpec, DomainControls, TokenStatus};
use crate::vault::{StoredCard, StoredIdentity, TokenView};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zeroize::Zeroizing;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreCardRequest {
    /// 13 to 19 digits; spaces and dashes are ignored.
    #[schema(value_type = String, example = "6222 0200 0012 3456 7")]
    pub pan: Zeroizing<String>,
}

/// Up to 500 cards stored in one durable, audited write.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreCardsRequest {
    /// Each 13 to 19 digits; one invalid number refuses the whole batch.
    #[schema(value_type = Vec<String>)]
    pub pans: Vec<Zeroizing<String>>,
}

/// The cards of a bulk store, in request order.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct CardsResponse {
    pub cards: Vec<CardResponse>,
}

/// The identity an erasure removed.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ErasedIdentityResponse {
    pub identity_ref: String,
}

/// What an erasure removed.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ErasedCardResponse {
    pub card_ref: String,
    /// Tokens of the card deleted with it (their numbers are never drawn again).
    pub tokens_deleted: usize,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct CardResponse {
    pub card_ref: String,
    /// At most the first six and last four digits.
    pub masked_pan: String,
    pub network: String,
    pub issuer: String,
    /// debit, credit or unknown.
    pub card_type: String,
    /// This PAN was stored before (keyed fingerprint); `card_ref` is the existing one.
    pub already_stored: bool,
    pub created_at: i64,
}

impl From<StoredCard> for CardResponse {
    fn from(c: StoredCard) -> Self {
        CardResponse {
            card_ref: c.card_ref.to_string(),
            masked_pan: c.masked.as_str().to_owned(),
            network: c.network.as_str().to_owned(),
            issuer: c.issuer,
            card_type: c.card_type.as_str().to_owned(),
            already_stored: c.already_stored,
            created_at: c.created_at.seconds(),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreIdentityRequest {
    #[schema(value_type = String, example = "张三")]
    pub name: Zeroizing<String>,
    /// 18-character resident ID number (GB 11643).
    #[schema(value_type = String)]
    pub id_number: Zeroizing<String>,
    /// Mainland mobile number; +86 is stripped.
    #[schema(value_type = String)]
    pub phone: Zeroizing<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct IdentityResponse {
    pub identity_ref: String,
    pub masked_name: String,
    pub masked_id_number: String,
    pub masked_phone: String,
    pub created_at: i64,
}

impl From<StoredIdentity> for IdentityResponse {
    fn from(i: StoredIdentity) -> Self {
        IdentityResponse {
            identity_ref: i.identity_ref.to_string(),
            masked_name: i.masked_name,
            masked_id_number: i.masked_id_number,
            masked_phone: i.masked_phone,
            created_at: i.created_at.seconds(),
        }
    }
}

/// Domain controls (域控) of a payment token. Amounts are integer minor
/// units (fen) of `currency`; times are Unix seconds.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ControlsDto {
    #[schema(minimum = 1)]
    pub max_uses: u32,
    /// At most `cumulative_limit`.
    #[schema(minimum = 1, maximum = 1000000000000_u64)]
    pub per_transaction_limit: u64,
    /// At most 10^12 minor units.
    #[schema(minimum = 1, maximum = 1000000000000_u64)]
    pub cumulative_limit: u64,
    #[schema(example = "CNY")]
    pub currency: String,
    pub valid_from: i64,
    pub valid_until: i64,
    pub channels: Vec<String>,
    /// Omit to allow any merchant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchants: Option<Vec<String>>,
}

fn in_controls(e: ValidationError) -> (String, ValidationError) {
    (format!("controls.{}", e.field.as_str()), e)
}

impl ControlsDto {
    /// Checked controls, or the field (under `controls.`) and rule at fault.
    /// Amount limits are held to the service's `ceiling` as well as to the
    /// controls' own hard bound.
    pub fn parse(&self, ceiling: AmountCeiling) -> Result<DomainControls, (String, ValidationError)> {
        for (name, limit) in [
            ("controls.per_transaction_limit", self.per_transaction_limit),
            ("controls.cumulative_limit", self.cumulative_limit),
        ] {
            ceiling
                .check(Field::TokenControls, limit)
                .map_err(|e| (name.to_owned(), e))?;
        }
        let channels = self
            .channels
            .iter()
            .map(|c| ChannelId::parse(c))
            .collect::<Result<_, _>>()
            .map_err(in_controls)?;
        let merchants = match &self.merchants {
            None => None,
            Some(list) => Some(
                list.iter()
                    .map(|m| MerchantId::parse(m))
                    .collect::<Result<_, _>>()
                    .map_err(in_controls)?,
            ),
        };
        DomainControls::new(ControlsSpec {
            max_uses: self.max_uses,
            per_transaction_limit: self.per_transaction_limit,
            cumulative_limit: self.cumulative_limit,
            currency: Currency::parse(&self.currency).map_err(in_controls)?,
            valid_from: Timestamp(self.valid_from),
            valid_until: Timestamp(self.valid_until),
            channels,
            merchants,
        })
        .map_err(|e| ("controls".to_owned(), e))
    }
}

impl From<&ControlsSpec> for ControlsDto {
    fn from(c: &ControlsSpec) -> Self {
        ControlsDto {
            max_uses: c.max_uses,
            per_transaction_limit: c.per_transaction_limit,
            cumulative_limit: c.cumulative_limit,
            currency: c.currency.as_str().to_owned(),
            valid_from: c.valid_from.seconds(),
            valid_until: c.valid_until.seconds(),
            channels: c.channels.iter().map(|c| c.as_str().to_owned()).collect(),
            merchants: c
                .merchants
                .as_ref()
                .map(|m| m.iter().map(|m| m.as_str().to_owned()).collect()),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueTokenRequest {
    pub card_ref: String,
    pub controls: ControlsDto,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct UsageDto {
    pub uses_committed: u32,
    pub uses_reserved: u32,
    pub amount_committed: u64,
    pub amount_reserved: u64,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    /// The payment token number (支付标记).
    pub token: String,
    pub card_ref: String,
    pub masked_pan: String,
    /// active, suspended or deleted.
    pub status: String,
    pub controls: ControlsDto,
    pub usage: UsageDto,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<TokenView> for TokenResponse {
    fn from(t: TokenView) -> Self {
        TokenResponse {
            token: t.number.to_string(),
            card_ref: t.card_ref.to_string(),
            masked_pan: t.masked_card.as_str().to_owned(),
            status: match t.status {
                TokenStatus::Active => "active",
                TokenStatus::Suspended => "suspended",
                _ => "deleted",
            }
            .to_owned(),
            controls: ControlsDto::from(&t.controls),
            usage: UsageDto {
                uses_committed: t.usage.uses_committed,
                uses_reserved: t.usage.uses_reserved,
                amount_committed: t.usage.amount_committed,
                amount_reserved: t.usage.amount_reserved,
            },
            created_at: t.created_at.seconds(),
            updated_at: t.updated_at.seconds(),
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct TokenListResponse {
    pub card_ref: String,
    pub tokens: Vec<String>,
}

/// A reveal: under dual control (the default) the approved request it
/// rests on; with `limits.reveal_dual_control = false`, a reason. One of
/// the two.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevealBody {
    /// A reveal request of this caller's for this card, approved by
    /// another identity (`POST /v1/reveal-requests/{request_id}/approve`).
    /// Its reason is the reveal's. Used once.
    #[schema(value_type = Option<String>, pattern = "^rvq_[0-9a-f]{32}$")]
    pub request_id: Option<crate::domain::refs::RevealRequestId>,
    /// Without dual control: why the PAN is needed, 8 to 200 characters,
    /// no card numbers. Audited.
    pub reason: Option<String>,
}

/// The first half of a reveal under dual control.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevealRequestBody {
    /// Why the PAN is needed: 8 to 200 characters, no card numbers (no
    /// run of 12 or more digits, whatever separates them). Audited, and
    /// shown to the approver.
    pub reason: String,
}

/// A reveal request, waiting for its approval or approved.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct RevealRequestResponse {
    pub request_id: String,
    pub card_ref: String,
    pub requested_by: String,
    /// `pending` until another identity approves it, then `approved`.
    pub state: String,
    pub approved_by: Option<String>,
    /// Until when it may be approved (pending) or used (approved), Unix seconds.
    pub expires_at: i64,
}

impl From<crate::vault::RevealRequestView> for RevealRequestResponse {
    fn from(view: crate::vault::RevealRequestView) -> Self {
        RevealRequestResponse {
            request_id: view.id.to_string(),
            card_ref: view.card_ref.to_string(),
            requested_by: view.requested_by,
            state: if view.approved_by.is_some() {
                "approved"
            } else {
                "pending"
            }
            .to_owned(),
            approved_by: view.approved_by,
            expires_at: view.expires_at.seconds(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct RevealResponse {
    pub card_ref: String,
    /// The full card number. Only the break-glass identity ever receives this.
    #[schema(value_type = String)]
    pub pan: Zeroizing<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    pub records: Vec<AuditRecord>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next_after: Option<u64>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ChainBreak {
    pub seq: u64,
    pub description: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct VerifyResponse {
    /// Every chain intact, and every checkpoint's records still held.
    pub intact: bool,
    /// Records checked, over every chain.
    pub records: u64,
    /// The unnamed chain's head (a single node's chain; 0 when there is
    /// none). Each chain's head is in `chains`.
    pub head_seq: u64,
    /// The first break of the first broken chain; its description names a
    /// named node's chain.
    pub first_break: Option<ChainBreak>,
    /// Each chain: the unnamed one (no `node`) and each named node's.
    pub chains: Vec<ChainReport>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ChainReport {
    /// The node whose chain this is; absent for the unnamed chain.
    pub node: Option<String>,
    pub records: u64,
    pub head_seq: u64,
    pub first_break: Option<ChainBreak>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct StatusResponse {
    pub status: String,
}

/// Whether the vault is sealed, and how far share collection has come.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct SealStatus {
    pub sealed: bool,
    /// Shares counted so far (distinct shares from distinct custodians).
    pub shares_submitted: usize,
    /// Shares needed, once the first share has told.
    pub threshold: Option<u8>,
    /// The identities whose shares counted.
    pub custodians: Vec<String>,
}

/// One data-key version.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct DataKeyView {
    pub version: u32,
    /// current (seals new writes), active (opens old records) or retired.
    pub state: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
    /// Seconds since the version was created.
    pub age_s: i64,
    /// Encryptions performed (counted in durably reserved blocks).
    pub encryptions: u64,
    pub encryption_budget: u64,
    /// Stored records with at least one field sealed under this version.
    pub records: u64,
    /// The KEK version this data key is wrapped under.
    pub kek_version: u32,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct RewrapView {
    pub state: String,
    pub started_at: i64,
    pub started_by: String,
    pub scanned: u64,
    pub rewrapped: u64,
    /// Records counted when the job started.
    pub total: u64,
    pub finished_at: Option<i64>,
}

/// The share set holding the KEK (public part: no share material).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct CustodyView {
    pub set_id: String,
    pub threshold: u8,
    pub shares: u8,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct KeyStatusResponse {
    /// `dev-file` or `shares`.
    pub custody: String,
    pub kek_version: u32,
    pub share_set: Option<CustodyView>,
    /// Age after which the current version is replaced automatically.
    pub cryptoperiod_s: u64,
    pub data_keys: Vec<DataKeyView>,
    pub rewrap: Option<RewrapView>,
    /// The newest audit key version (`POST /v1/admin/keys/audit/rotate`).
    pub audit_key_version: u32,
    /// The newest pepper version (`POST /v1/admin/keys/pepper/rotate`).
    pub pepper_version: u32,
    /// Stored payment passwords per pepper version their hash names.
    pub passwords_per_pepper: Vec<PepperView>,
    /// The PAN fingerprint version new cards are indexed under
    /// (`POST /v1/admin/keys/fingerprint/rotate`).
    pub fingerprint_version: u32,
    /// The oldest fingerprint version a card may still be indexed under:
    /// a PAN is looked up under every version from it to the newest.
    pub fingerprint_floor: u32,
    /// Stored cards per fingerprint version (`keys rewrap` moves them to the newest).
    pub cards_per_fingerprint: Vec<FingerprintVersionView>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct FingerprintVersionView {
    pub version: u32,
    pub cards: u64,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct PepperView {
    pub version: u32,
    pub passwords: u64,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct KeyVersionResponse {
    pub version: u32,
    pub state: String,
}
