//! The service's own layers (vault, gateway, orchestration) built in the
//! test process over a stopped service's data directory and config: for
//! tests that wrap the store (`faults`) or run two nodes on one store,
//! which the `serve` binary does not do.

use std::path::Path;
use tokenvault::audit::Actor;
use tokenvault::config::ServiceConfig;
use tokenvault::domain::ids::{ChannelId, Currency, MerchantId};
use tokenvault::domain::time::Timestamp;
use tokenvault::orchestration::payment::OrderId;
use tokenvault::orchestration::{Debit, Orchestrator};
use tokenvault::server::settings::LayerSettings;
use tokenvault::store::{Backend, Store};
use tokenvault::vault::gateway::Gateway;
use tokenvault::vault::keys::kek::Kek;
use tokenvault::vault::Vault;

/// The store of the service configured by `config` (sled or PostgreSQL,
/// as the harness started it).
pub async fn open_store(config: &Path) -> Backend {
    let config = ServiceConfig::load(config).expect("service config");
    super::open_backend(&config).await
}

/// One node: a vault over `store` and an orchestrator of its own (its own
/// in-process locks), configured as the service is.
pub async fn node<S: Store>(config: &Path, store: S) -> (Vault<S>, Orchestrator) {
    let config = ServiceConfig::load(config).expect("service config");
    let layers = LayerSettings::build(&config).expect("layers");
    let kek = Kek::from_dev_file(&config.kek_file()).expect("dev KEK");
    let vault = Vault::open(store, kek, layers.vault).await.expect("vault");
    let gateway = Gateway::new(&layers.gateway).expect("gateway");
    (vault, Orchestrator::new(gateway, layers.orchestration))
}

pub const MERCHANT: &str = "M001";

pub fn actor() -> Actor {
    Actor::local("node-test")
}

/// A token number the service answered, parsed in the default token range.
pub fn token_number(token: &str) -> tokenvault::vault::token::TokenNumber {
    let vault_config = tokenvault::vault::VaultConfig::embedded().unwrap();
    vault_config.token_range.parse_token(token).unwrap()
}

/// A debit of 100 fen at `bank-a` for merchant `MERCHANT`.
pub fn debit_of(token: &str, order: &str, expires_at: i64) -> Debit {
    Debit {
        token: token_number(token),
        order_id: OrderId::parse(order).unwrap(),
        amount: 100,
        currency: Currency::parse("CNY").unwrap(),
        channel: ChannelId::parse("bank-a").unwrap(),
        merchant: MerchantId::parse(MERCHANT).unwrap(),
        expires_at: Timestamp(expires_at),
    }
}

/// A world with `user`'s card (test seed `seed`) bound at `bank-a`, its
/// service stopped so its data directory can be opened here; the bank
/// simulator keeps running. Returns the world, binding id, token and the
/// service's config file.
pub async fn bound_then_stopped(
    user: &str,
    seed: u64,
) -> (super::world::World, String, String, std::path::PathBuf) {
    use super::world::{debit_pan, holder, id_number, world};
    let (pan, id_no) = (debit_pan(seed), id_number());
    let mut w = world(&[holder(&pan, &id_no)], &[], "");
    let (binding, token, _) = w.bound(user, &pan, &id_no).await;
    let config = w.service.config_path.clone();
    w.service.kill();
    (w, binding, token, config)
}
