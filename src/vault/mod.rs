//! The vault: validated cards and identities stored encrypted, payment tokens
//! with domain controls, all on a `Store`.
//!
//! Plaintext card and identity types (`Pan`, `RealName`, `ResidentId`,
//! `Mobile`) are visible only inside this module; callers hand in raw input
//! and get back references and masked values.

mod agreements;
mod audit_object;
mod audited;
mod bulk;
pub mod card;
mod committer;
pub mod crypto;
mod error;
mod identity;
mod joined;
mod layout;
pub mod lease;
/// The hot pieces opened for `benches/hot_paths.rs` only; absent from any
/// build without the `bench` feature.
#[cfg(feature = "bench")]
#[doc(hidden)]
pub mod microbench;
pub mod password;
mod read_flushes;
mod records;
mod retry;
mod scan;
mod settings;
mod statements;
#[cfg(test)]
mod test_vault;
pub mod token;
mod view;

pub mod gateway;
pub mod keys;
mod reserve;
mod reveal;
mod reveal_approval;

pub use agreements::{SignedAgreement, Signing};
pub use audit_object::AuditObject;
pub use bulk::{BulkRefusal, MAX_BULK_CARDS};
pub use card::StoredCard;
pub use error::VaultError;
pub use identity::StoredIdentity;
pub use joined::{Alone, Joined, JoinedRecord, Opening, Recorded};
pub(crate) use keys::load_custody;
pub use keys::RewrapProgress;
pub use keys::{DataKeyStatus, KeyReport, KeyState};
pub use records::ReservationState;
pub(crate) use records::{decode, encode};
pub use reserve::Reservation;
pub use reveal::{RevealBasis, RevealedPan};
pub use reveal_approval::{RevealApprovalError, RevealRequestView};
pub use statements::{KeptStatement, StatementKeeper};
pub use token::TokenView;
pub use view::{Layer, StoreView};

use crate::audit::AuditChain;
use crate::store::Store;
use card::{BinTable, CardRules};
use keys::kek::Kek;
use keys::keyring::{KeyBudget, Keyring};
use token::TokenBinRange;

/// Everything the vault is configured with; `Default` is the embedded
/// development set-up (embedded BIN table, no Luhn exemptions, token BINs
/// 810000-819999, standard key budget).
#[derive(Clone, Debug)]
pub struct VaultConfig {
    pub bin_table: BinTable,
    pub card_rules: CardRules,
    pub token_range: TokenBinRange,
    pub key_budget: KeyBudget,
    /// A data-key version older than this is replaced for new writes
    /// (NIST SP 800-57 cryptoperiod). Default one year.
    pub cryptoperiod_s: u64,
    /// How long at most a plain read's applied audit record waits before
    /// its flush is asked for, when no other write comes (`committer`).
    pub read_durability: std::time::Duration,
    /// This node's name among several on one store: its audit records go
    /// to a chain of its own. `None`: the unnamed chain (one node).
    pub node: Option<crate::domain::node::NodeName>,
    /// Break-glass reveals per identity in any hour, over every node.
    pub reveals_per_hour: u32,
    /// Dual control of reveals; off, one identity reveals on a reason.
    pub reveal_dual_control: bool,
    /// How long a reveal request waits for its approval, and an approval
    /// for its reveal.
    pub reveal_approval_window: std::time::Duration,
}

pub use crate::config::DEFAULT_CRYPTOPERIOD_S;

impl VaultConfig {
    pub fn embedded() -> Result<Self, card::BinTableError> {
        Ok(VaultConfig {
            bin_table: BinTable::embedded()?,
            card_rules: CardRules::default(),
            token_range: TokenBinRange::default(),
            key_budget: KeyBudget::default(),
            cryptoperiod_s: DEFAULT_CRYPTOPERIOD_S,
            read_durability: std::time::Duration::from_millis(10),
            node: None,
            reveals_per_hour: 10,
            reveal_dual_control: true,
            reveal_approval_window: std::time::Duration::from_secs(900),
        })
    }
}

pub struct Vault<S: Store> {
    /// Shared with the committer thread, which alone writes audited batches.
    store: std::sync::Arc<S>,
    /// Swapped whole by a KEK rotation (`rotation::rotate_kek`).
    kek: std::sync::RwLock<std::sync::Arc<Kek>>,
    keyring: Keyring,
    audit: std::sync::Arc<AuditChain>,
    committer: committer::Committer,
    peppers: password::Peppers,
    anchor: keys::anchors::AnchorKeys,
    config: VaultConfig,
    budget_lock: tokio::sync::Mutex<()>,
    stripes: crate::stripes::Stripes,
}

impl<S: Store> Vault<S> {
    /// Opens the vault on `store`, creating the first data key and the
    /// fingerprint key on first use. Fails with `CryptoError::WrongKek` when
    /// `kek` is not the key this store was created with.
    pub async fn open(store: S, kek: Kek, config: VaultConfig) -> Result<Self, VaultError> {
        let keyring = keys::data_keys::load_or_create(&store, &kek).await?;
        let audit = std::sync::Arc::new(AuditChain::new(
            std::sync::Arc::new(keys::versioned::load_audit_keys(&store, &kek).await?),
            crate::audit::ChainName::of(config.node.clone()),
        ));
        let peppers = keys::versioned::PEPPER
            .load(&store, &kek, |_, raw| Ok(raw))
            .await?;
        let anchor = keys::anchors::load(&store, &kek).await?;
        let store = std::sync::Arc::new(store);
        let committer = committer::Committer::start(
            std::sync::Arc::clone(&store),
            std::sync::Arc::clone(&audit),
            config.read_durability,
        )?;
        let vault = Vault {
            store,
            kek: std::sync::RwLock::new(std::sync::Arc::new(kek)),
            keyring,
            audit,
            committer,
            peppers,
            anchor,
            config,
            budget_lock: tokio::sync::Mutex::new(()),
            stripes: crate::stripes::Stripes::new(),
        };
        vault.audit.tally.loaded(&vault.load_audit_head().await?);
        Ok(vault)
    }

    /// The audit trail's head sequence and record counts since start.
    pub fn audit_tally(&self) -> &crate::audit::Tally {
        &self.audit.tally
    }

    pub(in crate::vault) fn kek(&self) -> std::sync::Arc<Kek> {
        std::sync::Arc::clone(&self.kek.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    pub fn kek_version(&self) -> u32 {
        self.kek().version()
    }

    /// When the KEK in use was put in service (its share set adopted, or
    /// its rotation): `None` without share custody (a development key).
    pub async fn kek_in_service_since(&self) -> Result<Option<crate::domain::time::Timestamp>, VaultError> {
        Ok(load_custody(&*self.store)
            .await?
            .filter(|c| c.kek_version == self.kek_version())
            .map(|c| c.updated_at))
    }

    /// Keyed HMAC of request material (idempotency records): a request body
    /// may hold a PAN, so it is never hashed without a key.
    /// Keyed MAC of a request's parts (method, route, path, body) for the
    /// idempotency record: it names the request without keeping its body.
    pub(crate) fn request_mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        self.keyring
            .request_key()
            .fingerprint_parts("idempotency", parts)
            .0
    }

    /// Where the idempotency record of `identity`'s `key` is kept: a keyed
    /// digest of both (hex), so no header value reaches a store key.
    pub(crate) fn idempotency_slot(&self, identity: &str, key: &str) -> String {
        self.keyring
            .request_key()
            .fingerprint_parts("idempotency-key", &[identity.as_bytes(), key.as_bytes()])
            .to_hex()
    }

    /// Keyed digest of a one-time code bound to `context` (a binding id):
    /// the code itself is never stored.
    pub(crate) fn code_digest(&self, context: &str, code: &str) -> [u8; 32] {
        let mut material = Vec::with_capacity(context.len() + code.len() + 1);
        material.extend_from_slice(context.as_bytes());
        material.push(0);
        material.extend_from_slice(code.as_bytes());
        self.keyring
            .request_key()
            .fingerprint("one-time-code", &material)
            .0
    }

    pub fn config(&self) -> &VaultConfig {
        &self.config
    }

    /// Key versions with their encryption counts, newest last.
    pub fn key_versions(&self) -> Vec<KeyVersionStatus> {
        self.keyring
            .versions()
            .iter()
            .map(|k| KeyVersionStatus {
                version: k.version(),
                encryptions: k.encryptions(),
                budget: self.config.key_budget.encryptions_per_key,
                created_at: k.created_at(),
            })
            .collect()
    }
}

/// One data-key version as `key_versions` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyVersionStatus {
    pub version: u32,
    /// Upper bound on encryptions performed (counted in reserved blocks).
    pub encryptions: u64,
    pub budget: u64,
    pub created_at: crate::domain::time::Timestamp,
}
