//! Issue 16, item 2: a write path that a fault cannot tear. Audited writes
//! (cards, bulk cards, identities, tokens and their state changes, key
//! rotation) run concurrently over a store that fails one write or read
//! (`common::faults`). After every fault: the audit chain verifies from the
//! first record to the stored head (never a silent hole), every write the
//! vault acknowledged is there, the vault writes again once the fault is
//! gone, and all of it still holds after the store is reopened.

mod common;

use common::faults::{Fault, Faults, FaultyStore};
use common::{actor, controls, random_pan};
use std::sync::Arc;
use tokenvault::audit::Outcome;
use tokenvault::domain::operation::Operation;
use tokenvault::domain::refs::CardRef;
use tokenvault::domain::time::Timestamp;
use tokenvault::store::{Batch, SledStore, Store};
use tokenvault::vault::keys::kek::Kek;
use tokenvault::vault::token::TokenNumber;
use tokenvault::vault::{Vault, VaultConfig};

type FaultyVault = Vault<FaultyStore<SledStore>>;

/// The vault over a faulty store, the handle on its faults, and the sled
/// store underneath (a clone shares the database) for damage done around it.
async fn open_faulty(dir: &std::path::Path) -> (FaultyVault, Faults, SledStore) {
    let sled = SledStore::open(&dir.join("data")).unwrap();
    let (store, faults) = FaultyStore::new(sled.clone());
    let kek = Kek::from_dev_file(&dir.join("dev-kek.hex")).unwrap();
    let vault = Vault::open(store, kek, VaultConfig::embedded().unwrap())
        .await
        .unwrap();
    (vault, faults, sled)
}

/// The vault over the same files once the faulty one is gone.
async fn reopen(dir: &std::path::Path) -> Vault<SledStore> {
    common::open_sled_vault(dir).await.0
}

/// What the vault said yes to; each must be readable afterwards.
#[derive(Default)]
struct Acknowledged {
    cards: Vec<CardRef>,
    tokens: Vec<TokenNumber>,
    suspended: Vec<TokenNumber>,
    identities: Vec<tokenvault::domain::refs::IdentityRef>,
}

/// One writer's mix of audited writes; failures are allowed, silence is not.
async fn workload(vault: Arc<FaultyVault>, writer: u64) -> Acknowledged {
    let mut done = Acknowledged::default();
    let me = actor();
    for round in 0..3u64 {
        let seed = writer * 100 + round * 10;
        if let Ok(card) = vault.store_card(&me, &random_pan(seed)).await {
            done.cards.push(card.card_ref.clone());
            let issued = vault
                .issue_token(&me, &card.card_ref, controls(5, 10_000, 50_000), Timestamp::now())
                .await;
            if let Ok(token) = issued {
                done.tokens.push(token.number.clone());
                if round == 1
                    && vault
                        .suspend_token(&me, &token.number, Timestamp::now())
                        .await
                        .is_ok()
                {
                    done.suspended.push(token.number);
                }
            }
        }
        let bulk = [random_pan(seed + 1), random_pan(seed + 2)];
        let inputs: Vec<&str> = bulk.iter().map(String::as_str).collect();
        if let Ok(stored) = vault.store_cards(&me, &inputs).await {
            done.cards.extend(stored.into_iter().map(|c| c.card_ref));
        }
        if writer == 0 && round == 0 {
            let id_number = common::test_data::identities()
                .into_iter()
                .find(|row| row.valid)
                .unwrap()
                .id_number;
            if let Ok(identity) = vault.store_identity(&me, "张三", &id_number, "13800138000").await {
                done.identities.push(identity.identity_ref);
            }
        }
        if writer == 1 && round == 2 {
            let _ = vault.rotate_data_key(&me, "fault run").await;
        }
    }
    done
}

async fn run_writers(vault: &Arc<FaultyVault>) -> Acknowledged {
    let tasks: Vec<_> = (0..6)
        .map(|writer| tokio::spawn(workload(Arc::clone(vault), writer)))
        .collect();
    let mut all = Acknowledged::default();
    for task in tasks {
        let done = task.await.unwrap();
        all.cards.extend(done.cards);
        all.tokens.extend(done.tokens);
        all.suspended.extend(done.suspended);
        all.identities.extend(done.identities);
    }
    all
}

/// Everything acknowledged is there, and the chain verifies to its head.
async fn assert_intact<S: Store>(vault: &Vault<S>, done: &Acknowledged, context: &str) {
    let me = actor();
    let report = vault.audit_verify(&me).await.unwrap();
    assert!(
        report.intact(),
        "{context}: the chain breaks at {:?}",
        report.first_break()
    );
    for card in &done.cards {
        vault
            .card(&me, card)
            .await
            .unwrap_or_else(|e| panic!("{context}: acknowledged card {card} is gone: {e}"));
    }
    for token in &done.tokens {
        let view = vault
            .token(&me, token)
            .await
            .unwrap_or_else(|e| panic!("{context}: acknowledged token is gone: {e}"));
        if done.suspended.contains(token) {
            assert_eq!(
                view.status.as_str(),
                "suspended",
                "{context}: an acknowledged suspension is lost"
            );
        }
    }
    for identity in &done.identities {
        vault
            .identity(&me, identity)
            .await
            .unwrap_or_else(|e| panic!("{context}: acknowledged identity is gone: {e}"));
    }
}

/// The vault writes again once the fault has passed (the first write after
/// a fault is the one that re-reads and verifies the head).
async fn writes_again<S: Store>(vault: &Vault<S>, context: &str) {
    vault
        .record_admin(
            &actor(),
            Operation::KeyRotate,
            Outcome::Success,
            "after the fault",
        )
        .await
        .unwrap_or_else(|e| panic!("{context}: the vault did not recover: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_any_injected_fault_the_chain_is_whole_and_no_acknowledged_write_is_lost() {
    for fault in Fault::ALL {
        for nth in [1, 3, 7, 15] {
            let context = format!("{fault:?} at the {nth}th");
            let dir = tempfile::tempdir().unwrap();
            let done = {
                let (vault, faults, _) = open_faulty(dir.path()).await;
                let vault = Arc::new(vault);
                faults.arm(fault, nth);
                let mut done = run_writers(&vault).await;
                // Concurrent writers share commit groups, so on a busy
                // machine the run can take fewer store writes than `nth`:
                // write on, one at a time, until the fault has fired.
                for extra in 0..100 {
                    if faults.has_fired() {
                        break;
                    }
                    if let Ok(card) = vault.store_card(&actor(), &random_pan(90_000 + extra)).await {
                        done.cards.push(card.card_ref);
                    }
                }
                assert!(faults.has_fired(), "{context}: the fault never fired");
                faults.disarm();
                writes_again(&vault, &context).await;
                assert_intact(&*vault, &done, &context).await;
                done
            };
            let reopened = reopen(dir.path()).await;
            assert_intact(&reopened, &done, &format!("{context}, reopened")).await;
            writes_again(&reopened, &format!("{context}, reopened")).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_that_reads_corrupt_fails_writes_closed_until_it_reads_true() {
    let dir = tempfile::tempdir().unwrap();
    let (vault, faults, _) = open_faulty(dir.path()).await;
    writes_again(&vault, "before").await;
    // A failed write makes the committer doubt the head; the next write's
    // first read is the head, and it comes back corrupt: refused.
    faults.arm(Fault::FailApply, 1);
    assert!(vault
        .record_admin(&actor(), Operation::KeyRotate, Outcome::Success, "x")
        .await
        .is_err());
    faults.arm(Fault::CorruptRead, 1);
    let refused = vault
        .record_admin(&actor(), Operation::KeyRotate, Outcome::Success, "y")
        .await
        .expect_err("a write over a head that does not decode is refused");
    assert!(refused.to_string().contains("storage"), "{refused}");
    writes_again(&vault, "after").await;
    let report = vault.audit_verify(&actor()).await.unwrap();
    assert!(report.intact(), "{:?}", report.first_break());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hole_at_the_tail_stops_every_audited_write_and_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (vault, faults, sled) = open_faulty(dir.path()).await;
    for i in 0..3 {
        writes_again(&vault, &format!("write {i}")).await;
    }
    let head_seq = vault.audit_tally().head_seq();
    // The last record disappears under the vault (a torn write, a restore
    // from the wrong backup), and a failed write makes it look again.
    let mut hole = Batch::new();
    hole.delete(format!("audit/rec/{head_seq:020}").into_bytes());
    sled.commit(hole).await.unwrap();
    faults.arm(Fault::FailApply, 1);
    assert!(vault
        .record_admin(&actor(), Operation::KeyRotate, Outcome::Success, "x")
        .await
        .is_err());
    for attempt in 0..3 {
        let refused = vault
            .record_admin(&actor(), Operation::KeyRotate, Outcome::Success, "y")
            .await
            .expect_err("nothing is appended past a hole");
        assert!(
            refused.to_string().contains(&format!("audit record {head_seq}")),
            "attempt {attempt}: the refusal names the missing record: {refused}"
        );
    }
    assert_eq!(vault.audit_tally().head_seq(), head_seq, "the chain did not move");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_writer_cancelled_mid_commit_changes_nothing_for_the_writes_grouped_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let (vault, faults, _) = open_faulty(dir.path()).await;
    let vault = Arc::new(vault);
    writes_again(&*vault, "before").await;
    // A slow disk holds each group in flight long enough to cancel a writer
    // whose write is in it (under the old design, its group's leader).
    faults.delay_writes(Some(std::time::Duration::from_millis(200)));
    let first = {
        let vault = Arc::clone(&vault);
        tokio::spawn(async move { vault.store_card(&actor(), &random_pan(900)).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let followers: Vec<_> = (0..16)
        .map(|i| {
            let vault = Arc::clone(&vault);
            tokio::spawn(async move { vault.store_card(&actor(), &random_pan(1000 + i)).await })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    first.abort();
    let mut done = Acknowledged::default();
    for follower in followers {
        let card = follower.await.unwrap().expect("a follower's write commits");
        done.cards.push(card.card_ref);
    }
    faults.delay_writes(None);
    writes_again(&*vault, "after").await;
    assert_intact(&*vault, &done, "after a cancelled writer").await;
}

/// Issue 17, item 5 (in part): readiness follows the store's writes. After
/// a failed write `/ready`'s check makes a probe write: not ready while the
/// store refuses it, ready again once it takes it, without a restart; and
/// a storage failure is a 503 `storage-unavailable` with `Retry-After`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_stores_writes_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let (vault, faults, _) = open_faulty(dir.path()).await;
    vault.ping().await.expect("ready at start");
    // The write fails, and so does the probe write after it.
    faults.arm(Fault::FailApply, 1);
    let failed = vault
        .record_admin(&actor(), Operation::KeyRotate, Outcome::Success, "x")
        .await
        .unwrap_err();
    let code = failed.code();
    assert_eq!(code.code(), "storage-unavailable", "{failed}");
    assert!(
        code.retry_after_s.is_some(),
        "a storage failure says when to retry"
    );
    faults.arm(Fault::FailApply, 1);
    assert!(vault.ping().await.is_err(), "not ready while writes fail");
    // The store takes writes again: ready, and writes go on.
    assert!(vault.ping().await.is_ok(), "ready once the probe write lands");
    writes_again(&vault, "after").await;
    vault.ping().await.unwrap();
}

/// An audit key rotation is one write with its rotation record. Refused
/// by the store, it leaves no version behind, here or in the store, and
/// the next rotation makes version 2; applied but unacknowledged, the
/// vault takes the version from the store and writes on. The chain
/// verifies after both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_key_rotation_that_fails_leaves_the_chain_writable_and_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (vault, faults, _) = open_faulty(dir.path()).await;
    faults.arm(Fault::FailApply, 1);
    assert!(vault.rotate_audit_key(&actor()).await.is_err());
    assert_eq!(vault.key_report().await.unwrap().audit_key_version, 1);
    writes_again(&vault, "after a refused rotation").await;
    assert_eq!(vault.rotate_audit_key(&actor()).await.unwrap(), 2);

    faults.arm(Fault::FailAfterApply, 1);
    assert!(vault.rotate_audit_key(&actor()).await.is_err());
    assert_eq!(
        vault.key_report().await.unwrap().audit_key_version,
        3,
        "it applied"
    );
    writes_again(&vault, "after an unacknowledged rotation").await;
    let report = vault.audit_verify(&actor()).await.unwrap();
    assert!(report.intact(), "{:?}", report.first_break());
}
