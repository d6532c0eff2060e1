//! Shared set-up for the integration tests: a real sled store in a temporary
//! directory, a real KEK, the project's own test data (tests/data).
#![allow(dead_code)]

use std::collections::BTreeSet;
use tokenvault::audit::Actor;
use tokenvault::domain::ids::{ChannelId, Currency, MerchantId};
use tokenvault::domain::time::Timestamp;
use tokenvault::store::{Backend, SledStore};
use tokenvault::vault::keys::kek::Kek;
use tokenvault::vault::token::{ControlsSpec, DomainControls, UseRequest};
use tokenvault::vault::{Vault, VaultConfig};

pub struct TestVault {
    pub dir: tempfile::TempDir,
    pub vault: Vault<Backend>,
    /// The same database as the vault's (a clone shares it): what a test
    /// reads or damages around the vault, which hands no store out.
    pub store: Backend,
}

pub async fn open_vault() -> TestVault {
    let dir = tempfile::tempdir().expect("temp dir");
    let (vault, store) = open_with_store(dir.path()).await;
    TestVault { dir, vault, store }
}

/// Opens (or re-opens) a vault whose development KEK lives in `dir`, on
/// `backend_in(dir)`.
pub async fn open_in(dir: &std::path::Path) -> Vault<Backend> {
    open_with_store(dir).await.0
}

/// The sled store at `path`. sled's own background thread can hold the
/// file lock a moment after the last handle in this process is dropped, so
/// a reopen right after a vault was dropped is retried briefly.
pub async fn open_sled(path: &std::path::Path) -> SledStore {
    let mut last_error = None;
    for _ in 0..50 {
        match SledStore::open(path) {
            Ok(store) => return store,
            Err(e) => last_error = Some(e),
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("sled store at {}: {last_error:?}", path.display());
}

/// The store a service's config names, as the service opens it: sled in
/// its data directory (retried while the stopped service's lock lingers),
/// or its PostgreSQL database.
pub async fn open_backend(config: &tokenvault::config::ServiceConfig) -> tokenvault::store::Backend {
    match config.store.backend {
        tokenvault::config::BackendKind::Postgres => {
            tokenvault::store::Backend::open(&config.data_dir, &config.store)
                .await
                .expect("the service's PostgreSQL store")
        }
        _ => tokenvault::store::Backend::Sled(open_sled(&config.data_dir).await),
    }
}

/// The store of the vault-level tests that use `dir`, on the backend this
/// run selected (`TOKENVAULT_TEST_BACKEND`): sled in `dir/data`, or a
/// PostgreSQL database made (and migrated) at the first call and named in
/// `dir/store.toml`, which later calls, and reopens, find again.
pub async fn backend_in(dir: &std::path::Path) -> Backend {
    let marker = dir.join("store.toml");
    let config = match std::fs::read_to_string(&marker) {
        Ok(text) => text,
        Err(_) if postgres::selected() => {
            let database = postgres::database();
            let store = tokenvault::store::PgStore::connect(&database.settings())
                .await
                .expect("connect");
            store.migrate().await.expect("migrate");
            std::fs::write(&marker, database.store_config()).unwrap();
            database.store_config()
        }
        Err(_) => return Backend::Sled(open_sled(&dir.join("data")).await),
    };
    Backend::open(&dir.join("data"), &postgres::store_section(&config))
        .await
        .expect("the test's PostgreSQL store")
}

/// Where `backend_in(dir)`'s bytes are on disk, flushed there: sled's
/// files (drop the store first), or the cluster's files and WAL after a
/// CHECKPOINT.
pub fn backend_files_in(dir: &std::path::Path) -> std::path::PathBuf {
    if !postgres::selected() {
        return dir.join("data");
    }
    postgres::cluster().files()
}

/// `open_in`, and the store beside it.
pub async fn open_with_store(dir: &std::path::Path) -> (Vault<Backend>, Backend) {
    vault_over(dir, backend_in(dir).await).await
}

/// `open_with_store` on sled whatever the run selected: for the tests of
/// sled's own files and flushes.
pub async fn open_sled_vault(dir: &std::path::Path) -> (Vault<SledStore>, SledStore) {
    vault_over(dir, open_sled(&dir.join("data")).await).await
}

/// A vault over `store` with the development KEK in `dir`, and the store.
async fn vault_over<S: tokenvault::store::Store + Clone>(dir: &std::path::Path, store: S) -> (Vault<S>, S) {
    let kek = Kek::from_dev_file(&dir.join("dev-kek.hex")).expect("dev KEK");
    let vault = Vault::open(
        store.clone(),
        kek,
        VaultConfig::embedded().expect("embedded config"),
    )
    .await
    .expect("vault opens");
    (vault, store)
}

#[path = "../data/mod.rs"]
pub mod test_data;

/// (pan, valid) rows of tests/data/cards.csv.
pub fn test_cards() -> Vec<(String, bool)> {
    test_data::cards()
        .into_iter()
        .map(|card| (card.pan, card.luhn_valid))
        .collect()
}

pub fn valid_test_pans() -> Vec<String> {
    test_cards()
        .into_iter()
        .filter(|(_, v)| *v)
        .map(|(p, _)| p)
        .collect()
}

pub const CHANNEL: &str = "icbc-quickpay";
pub const MERCHANT: &str = "M100200300";

pub fn controls(max_uses: u32, per_transaction: u64, cumulative: u64) -> DomainControls {
    let now = Timestamp::now().seconds();
    DomainControls::new(ControlsSpec {
        max_uses,
        per_transaction_limit: per_transaction,
        cumulative_limit: cumulative,
        currency: Currency::parse("CNY").unwrap(),
        valid_from: Timestamp(now - 60),
        valid_until: Timestamp(now + 3600),
        channels: BTreeSet::from([ChannelId::parse(CHANNEL).unwrap()]),
        merchants: Some(BTreeSet::from([MerchantId::parse(MERCHANT).unwrap()])),
    })
    .expect("valid controls")
}

pub fn use_of(amount: u64) -> UseRequest {
    UseRequest {
        amount,
        currency: Currency::parse("CNY").unwrap(),
        channel: ChannelId::parse(CHANNEL).unwrap(),
        merchant: MerchantId::parse(MERCHANT).unwrap(),
    }
}

/// A Luhn-valid 16-digit UnionPay-range PAN derived from `seed` (prefix
/// 621799, which the embedded BIN table does not list).
pub fn random_pan(seed: u64) -> String {
    with_check_digit(&format!("621799{:09}", seed % 1_000_000_000))
}

pub fn with_check_digit(body: &str) -> String {
    let check = tokenvault::vault::card::luhn::check_digit(body.as_bytes());
    format!("{body}{}", char::from(check))
}

/// The caller the library-level tests act as.
pub fn actor() -> Actor {
    Actor::local("integration-test")
}

pub mod bank_sim;
pub mod conformance;
pub mod faults;
pub mod keepalive;
pub mod pg_proxy;
pub mod postgres;
pub mod routes;
pub mod service;
pub mod stack;
pub mod world;

/// A valid 18-character resident ID number (GB 11643) for `area` (6
/// digits), birth date `yyyymmdd` and sequence `seq` (3 digits).
pub fn resident_id(area: &str, yyyymmdd: &str, seq: u16) -> String {
    let body = format!("{area}{yyyymmdd}{seq:03}");
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body
        .bytes()
        .zip(WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    let check = b"10X98765432"[(sum % 11) as usize];
    format!("{body}{}", char::from(check))
}

/// Every file under `dir`, read whole (sled's files, logs).
pub fn files_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    assert!(dir.is_dir(), "{} is not a directory", dir.display());
    while let Some(d) = stack.pop() {
        // A database server may remove a temporary file or folder while
        // this reads: what is gone is skipped.
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.push((path, bytes));
            }
        }
    }
    out
}

/// Parses `text` with the Prometheus project's reference OpenMetrics parser
/// (Python `prometheus_client`, strict: a family name clash, a bad TYPE, a
/// missing `# EOF` all fail). `.ci/run` installs it.
/// The value of the series `series` (name and labels, exactly as
/// written) in OpenMetrics `text`.
pub fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

pub fn assert_openmetrics(text: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys\nfrom prometheus_client.openmetrics.parser import text_string_to_metric_families as p\nprint(len(list(p(sys.stdin.read()))))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs (the OpenMetrics check needs `pip install prometheus-client`)");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the strict OpenMetrics parser refused /metrics (needs `pip install prometheus-client`):\n{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let families: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(families >= 10, "{families} metric families:\n{text}");
}

/// Validates `text` with `openapi-spec-validator` (the OpenAPI Initiative's
/// JSON Schemas plus its own checks: unique operation ids, references that
/// resolve). `.ci/run` installs it.
pub fn assert_valid_openapi(text: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, json\nfrom openapi_spec_validator import validate\nvalidate(json.load(sys.stdin))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs (the OpenAPI check needs `pip install openapi-spec-validator`)");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openapi-spec-validator refused the document (needs `pip install openapi-spec-validator`):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
