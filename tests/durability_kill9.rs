//! Invariant 8: an acknowledged write survives `kill -9` and restart.
//!
//! The parent re-runs this test binary as a child that stores cards, issues
//! tokens and commits a reservation on each, printing `ACK …` only after each
//! call returned. The parent SIGKILLs it mid-stream, reopens the same data
//! directory in this process, and checks every acknowledged write.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use tokenvault::domain::time::Timestamp;
use tokenvault::vault::token::TokenNumber;

const CHILD_ENV: &str = "TOKENVAULT_KILL9_CHILD_DIR";
const ACKS_BEFORE_KILL: usize = 60;

/// The child's work. A no-op unless the parent set `CHILD_ENV`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn child_writer_for_kill9() {
    let Ok(dir) = std::env::var(CHILD_ENV) else { return };
    let vault = common::open_sled_vault(std::path::Path::new(&dir)).await.0;
    for seed in 0u64.. {
        let pan = common::random_pan(seed * 7919 + 13);
        let card = vault
            .store_card(&common::actor(), &pan)
            .await
            .expect("store card");
        let token = vault
            .issue_token(
                &common::actor(),
                &card.card_ref,
                common::controls(3, 1_000, 3_000),
                Timestamp::now(),
            )
            .await
            .expect("issue token");
        let r = vault
            .reserve(
                &common::actor(),
                &token.number,
                &common::use_of(250),
                Timestamp::now(),
            )
            .await
            .expect("reserve");
        vault
            .commit_reservation(&common::actor(), &r.id, Timestamp::now())
            .await
            .expect("commit");
        // Printed only after all three writes were acknowledged (durable).
        println!("ACK {pan} {} {}", card.card_ref, token.number);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_writer_for_kill9",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().unwrap();
    let mut acked = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("ACK ") {
            let parts: Vec<String> = rest.split(' ').map(str::to_owned).collect();
            acked.push(parts);
            if acked.len() == ACKS_BEFORE_KILL {
                break;
            }
        }
    }
    child.kill().expect("SIGKILL the child"); // std sends SIGKILL on Unix
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child was killed, not finished");
    assert_eq!(
        acked.len(),
        ACKS_BEFORE_KILL,
        "child acknowledged writes before the kill"
    );

    let vault = common::open_sled_vault(dir.path()).await.0;
    for parts in &acked {
        let (pan, card_ref, token) = (&parts[0], &parts[1], &parts[2]);
        // The keyed fingerprint index finds the same card: the PAN record and
        // its index entry both survived.
        let again = vault.store_card(&common::actor(), pan).await.unwrap();
        assert!(again.already_stored);
        assert_eq!(again.card_ref.as_str(), card_ref);
        let token = vault
            .token(&common::actor(), &TokenNumber::parse(token).unwrap())
            .await
            .unwrap();
        assert_eq!(token.card_ref.as_str(), card_ref);
        assert_eq!(
            (token.usage.uses_committed, token.usage.amount_committed),
            (1, 250)
        );
        assert_eq!(token.usage.uses_reserved, 0);
    }
    // The restarted vault keeps working on the same keys.
    let fresh = vault
        .store_card(&common::actor(), &common::random_pan(424_242))
        .await
        .unwrap();
    assert!(!fresh.already_stored);
}
