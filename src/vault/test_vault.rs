//! For the vault's own tests: a vault on a fresh sled folder, and token
//! controls that allow a few small uses at `bank-a`.

use crate::domain::ids::{ChannelId, Currency};
use crate::domain::time::Timestamp;
use crate::store::SledStore;
use crate::vault::keys::kek::Kek;
use crate::vault::token::{ControlsSpec, DomainControls};
use crate::vault::{Vault, VaultConfig};

/// A vault with a new KEK on a new folder (kept alive by the `TempDir`).
pub(crate) async fn fresh() -> (tempfile::TempDir, Vault<SledStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    let vault = Vault::open(store, Kek::generate().unwrap(), VaultConfig::embedded().unwrap())
        .await
        .unwrap();
    (dir, vault)
}

/// `max_uses` uses of up to 100 fen each (500 in all), CNY, at `bank-a`,
/// valid from a minute ago for an hour.
pub(crate) fn controls(max_uses: u32) -> DomainControls {
    let now = Timestamp::now().seconds();
    DomainControls::new(ControlsSpec {
        max_uses,
        per_transaction_limit: 100,
        cumulative_limit: 500,
        currency: Currency::parse("CNY").unwrap(),
        valid_from: Timestamp(now - 60),
        valid_until: Timestamp(now + 3600),
        channels: [ChannelId::parse("bank-a").unwrap()].into(),
        merchants: None,
    })
    .unwrap()
}
