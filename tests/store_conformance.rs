//! Issue 16, item 3: the backend conformance suite (tests/common/conformance.rs)
//! on the embedded default, through `Backend` exactly as the service holds
//! it. A later backend gets a file like this one, with its own `open`.

mod common;

use common::conformance as suite;
use std::path::Path;
use tokenvault::store::Backend;

fn open(dir: &Path) -> Backend {
    Backend::embedded(&dir.join("data"), &Default::default()).expect("sled opens")
}

#[tokio::test]
async fn batches_are_atomic() {
    suite::on_fresh(open, |store| async move { suite::atomic_batches(&store).await }).await;
}

#[tokio::test]
async fn preconditions_hold_exactly() {
    suite::on_fresh(open, |store| async move { suite::preconditions(&store).await }).await;
}

#[tokio::test]
async fn sequences_skip_failed_batches_and_seal_in_the_same_write() {
    suite::on_fresh(open, |store| async move {
        suite::sequences_skip_and_seal(&store).await
    })
    .await;
}

#[tokio::test]
async fn scans_are_ordered_and_page_without_gaps() {
    suite::on_fresh(open, |store| async move {
        suite::ordered_scans_and_paging(&store).await
    })
    .await;
}

#[tokio::test]
async fn injected_faults_are_reported_and_the_store_writes_on() {
    suite::on_fresh(open, suite::faults_are_reported_never_hidden).await;
}

/// The writer re-executes this test binary into `child_writer` below.
const CHILD_DIR: &str = "TOKENVAULT_CONFORMANCE_CHILD_DIR";

#[tokio::test]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap());
    child
        .args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir.path());
    suite::acknowledged_writes_survive_sigkill(child, || async { open(dir.path()) }).await;
}

/// Not a test of its own: the SIGKILL test's writer process. Without the
/// variable it returns at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_writer() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    suite::write_and_acknowledge_forever(open(Path::new(&dir))).await;
}
