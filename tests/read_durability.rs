//! Issue 18, item 1: plain reads are audited without waiting for their own
//! flush, and nothing else is. Over a store whose flushes can be held (a
//! flush that does not finish) or failed (`common::faults`): a read is
//! answered, its record applied in chain order, while flushes are held; a
//! write, a refusal and a reveal-class record are not answered until their
//! flush is; a flush that fails after reads were answered fails the next
//! write closed, and the vault writes again after re-reading its head.

mod common;

use common::faults::{Fault, Faults, FaultyStore};
use common::{actor, controls, random_pan};
use std::sync::Arc;
use std::time::Duration;
use tokenvault::audit::Outcome;
use tokenvault::domain::operation::Operation;
use tokenvault::domain::time::Timestamp;
use tokenvault::store::SledStore;
use tokenvault::vault::keys::kek::Kek;
use tokenvault::vault::token::TokenNumber;
use tokenvault::vault::{Vault, VaultConfig};

type FaultyVault = Vault<FaultyStore<SledStore>>;

/// Long enough that an answer which had to wait for a held flush cannot
/// come; the property is "not before the release", not a speed.
const HELD: Duration = Duration::from_millis(500);
/// An answer that needs no flush comes long before this.
const HANG: Duration = Duration::from_secs(10);

async fn open(dir: &std::path::Path) -> (Arc<FaultyVault>, Faults) {
    let sled = SledStore::open(&dir.join("data")).unwrap();
    let (store, faults) = FaultyStore::new(sled);
    let kek = Kek::from_dev_file(&dir.join("dev-kek.hex")).unwrap();
    let vault = Vault::open(store, kek, VaultConfig::embedded().unwrap())
        .await
        .unwrap();
    (Arc::new(vault), faults)
}

async fn a_token(vault: &FaultyVault, seed: u64) -> TokenNumber {
    let me = actor();
    let card = vault.store_card(&me, &random_pan(seed)).await.unwrap();
    vault
        .issue_token(&me, &card.card_ref, controls(5, 10_000, 50_000), Timestamp::now())
        .await
        .unwrap()
        .number
}

/// The operations of the trail's records, in chain order.
async fn trail(vault: &FaultyVault) -> Vec<String> {
    vault
        .audit_page(&actor(), &tokenvault::audit::ChainName::UNNAMED, 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.operation.to_string())
        .collect()
}

/// Reads `token`, which must be answered without its record's flush.
async fn read_without_waiting(vault: &FaultyVault, token: &TokenNumber) {
    let view = tokio::time::timeout(HANG, vault.token(&actor(), token))
        .await
        .expect("a read waited for its record's flush")
        .unwrap();
    assert_eq!(&view.number, token);
}

/// Runs `work` with flushes held: it must not finish before they are
/// released, and must succeed after.
async fn waits_for_its_flush<E: std::fmt::Debug + Send + 'static>(
    faults: &Faults,
    what: &str,
    work: impl std::future::Future<Output = Result<(), E>> + Send + 'static,
) {
    let held = faults.hold_flushes();
    let task = tokio::spawn(work);
    tokio::time::sleep(HELD).await;
    assert!(!task.is_finished(), "{what} was answered before its flush");
    held.release();
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_is_answered_before_its_flush_and_a_write_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let (vault, faults) = open(dir.path()).await;
    let token = a_token(&vault, 1).await;
    let me = actor();

    let held = faults.hold_flushes();
    // Plain reads: answered while their records' flushes are held.
    for _ in 0..3 {
        read_without_waiting(&vault, &token).await;
    }
    held.release();
    // A write, a refused write's record and a key operation's record: each,
    // alone in the queue, is not answered while its flush is held.
    let (v, t) = (Arc::clone(&vault), token.clone());
    waits_for_its_flush(&faults, "a write", async move {
        v.suspend_token(&actor(), &t, Timestamp::now()).await.map(|_| ())
    })
    .await;
    let v = Arc::clone(&vault);
    waits_for_its_flush(&faults, "a refusal", async move {
        v.record_refused(&actor(), Operation::CardStore, None, "invalid_luhn")
            .await
    })
    .await;
    let v = Arc::clone(&vault);
    waits_for_its_flush(&faults, "a key operation", async move {
        v.record_admin(&actor(), Operation::KeyRotate, Outcome::Success, "held")
            .await
    })
    .await;
    let report = vault.audit_verify(&me).await.unwrap();
    assert!(report.intact(), "{:?}", report.first_break());
    let operations = trail(&vault).await;
    let first_read = operations.iter().position(|o| o == "token.read").unwrap();
    let suspend = operations.iter().position(|o| o == "token.suspend").unwrap();
    assert!(
        first_read < suspend,
        "the read's record is in chain order: {operations:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_flush_after_answered_reads_fails_the_next_write_closed_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let (vault, faults) = open(dir.path()).await;
    let token = a_token(&vault, 2).await;
    let me = actor();

    // The next write to the store is a read's record; its flush is held,
    // then fails. The read is answered all the same.
    let held = faults.hold_flushes();
    faults.arm(Fault::FailFlush, 1);
    read_without_waiting(&vault, &token).await;
    assert!(faults.has_fired());
    // The write after it waits on that flush too, and is not acknowledged.
    let after = tokio::spawn({
        let (vault, token) = (Arc::clone(&vault), token.clone());
        async move { vault.suspend_token(&actor(), &token, Timestamp::now()).await }
    });
    tokio::time::sleep(HELD).await;
    assert!(
        !after.is_finished(),
        "a write was answered before the flush before it"
    );
    held.release();
    assert!(
        after.await.unwrap().is_err(),
        "a write was acknowledged although a flush before it failed"
    );
    // Then the head is re-read and verified, and the vault writes again.
    vault
        .record_admin(&me, Operation::KeyRotate, Outcome::Success, "recovered")
        .await
        .unwrap();
    let report = vault.audit_verify(&me).await.unwrap();
    assert!(report.intact(), "{:?}", report.first_break());
}
