//! Two nodes on one store: two `Vault`s and two orchestrators (each with
//! its own in-process locks) over the same data, as several stateless
//! nodes are. What must hold across requests holds through the store's
//! preconditions, not through one process's memory.

mod common;

use common::faults::FaultyStore;
use common::stack::{self, actor, debit_of};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokenvault::domain::time::Timestamp;
use tokenvault::orchestration::{BindingId, BindingStatus, OrchestrationError, PaymentStatus};
use tokenvault::store::Batch;
use tokenvault::vault::keys::kek::Kek;
use tokenvault::vault::{Alone, Joined, StoredCard, Vault, VaultConfig, VaultError};

const DEBITS_PER_WORKER: usize = 150;

const WRITE_DELAY: std::time::Duration = std::time::Duration::from_millis(15);

/// An unbind on one node and debits on the other: no debit reaches the
/// bank once the unbind has begun. Each debit either paid before the
/// unbind saw it (and the unbind waited: 409 payments in flight, tried
/// again), or was refused because the binding was no longer signed. None
/// is sent under an agreement the unbind cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unbind_on_one_node_excludes_debits_on_another() {
    let (w, binding, token, config) = stack::bound_then_stopped("u-two", 5_151).await;
    let store = stack::open_store(&config).await;
    let (vault_a, node_a) = stack::node(&config, store.clone()).await;
    // Node B's writes land late, so an unbind on A can run between what a
    // debit on B read and what it writes.
    let (late, faults) = FaultyStore::new(store);
    faults.delay_writes(Some(WRITE_DELAY));
    let (vault_b, node_b) = stack::node(&config, late).await;
    let binding = BindingId::parse(&binding).unwrap();
    let expires = Timestamp::now().seconds() + 3_000;

    let paid = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let (vault_b, node_b) = (Arc::new(vault_b), Arc::new(node_b));
    // Two workers debit one after another until the binding refuses them,
    // so debits are still starting while the unbind runs.
    let mut debits = tokio::task::JoinSet::new();
    for worker in 0..2 {
        let (vault, node, token) = (Arc::clone(&vault_b), Arc::clone(&node_b), token.clone());
        let (paid, refused) = (Arc::clone(&paid), Arc::clone(&refused));
        debits.spawn(async move {
            for i in 0..DEBITS_PER_WORKER {
                let debit = debit_of(&token, &format!("two-{worker}-{i}"), expires);
                match node.debit(&vault, &actor(), debit, &Alone).await {
                    Ok((view, _)) => {
                        assert_eq!(view.status, PaymentStatus::Succeeded, "{view:?}");
                        paid.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(OrchestrationError::BindingClosed(_) | OrchestrationError::TokenNotBound) => {
                        refused.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                    // 503, try again: the two nodes' audit writes raced past
                    // the retries. A payment it left in flight is the
                    // settler's to finish.
                    Err(OrchestrationError::Vault(VaultError::Contention)) => {}
                    Err(e) => panic!("debit {worker}-{i}: {e}"),
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        });
    }
    let debits = async {
        while let Some(done) = debits.join_next().await {
            done.expect("a debit task panicked");
        }
    };
    let unbind = async {
        // Let some debits start first.
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        let mut waited = 0;
        loop {
            assert!(waited < 3_000, "the unbind never got through");
            match node_a.unbind(&vault_a, &actor(), &binding, &Alone).await {
                Ok(view) => return (view, waited),
                // Payments in flight: the unbind waits for them. Contention
                // (503, try again): the debits keep the token busy.
                Err(
                    OrchestrationError::PaymentsInFlight | OrchestrationError::Vault(VaultError::Contention),
                ) => {
                    waited += 1;
                    // As a node's settler would: a payment the bank
                    // answered but whose second write failed is finished.
                    node_a.settle_open(&vault_a, &actor()).await.unwrap();
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
                Err(e) => panic!("unbind: {e}"),
            }
        }
    };
    let ((view, waited), ()) = tokio::join!(unbind, debits);
    assert_eq!(view.status, BindingStatus::Unbound);
    let paid = paid.load(Ordering::SeqCst);
    let refused = refused.load(Ordering::SeqCst);
    assert!(
        paid > 0 && refused > 0,
        "the debits raced the unbind: paid {paid}, refused {refused}"
    );
    // Every order the bank holds was paid under the live agreement.
    let orders = w.bank.orders().await;
    assert!(orders.len() >= paid, "a bank order per paid debit: {orders:?}");
    assert!(
        orders.iter().all(|o| o["status"] == "succeeded"),
        "none failed at the bank for a cancelled agreement: {orders:?}"
    );
    // After the unbind, neither node debits the token.
    let who = actor();
    let after_a = node_a.debit(&vault_a, &who, debit_of(&token, "after-a", expires), &Alone);
    assert!(after_a.await.is_err());
    let after_b = node_b.debit(&vault_b, &who, debit_of(&token, "after-b", expires), &Alone);
    assert!(after_b.await.is_err());
    eprintln!("paid {paid}, refused {refused}, unbind waited {waited} times");
}

/// Claims `key` (absent) in the operation's own write, as an idempotency
/// record does.
struct Claim(&'static [u8], &'static [u8]);

impl<V> Joined<V> for Claim {
    fn writes(&self, _done: &V) -> Result<Batch, VaultError> {
        let mut batch = Batch::new();
        batch.expect_absent(self.0).put(self.0, self.1.to_vec());
        Ok(batch)
    }
}

/// The same Idempotency-Key on two nodes at once: one store write claims
/// it with its effect; the other node's operation stops with nothing
/// written (`JoinedStale`, which the API answers by replaying the first).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_key_claimed_on_two_nodes_at_once_lands_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::backend_in(dir.path()).await;
    let kek = || Kek::from_dev_file(&dir.path().join("dev-kek.hex")).unwrap();
    let config = || VaultConfig::embedded().unwrap();
    let vault_a = Vault::open(store.clone(), kek(), config()).await.unwrap();
    let vault_b = Vault::open(store, kek(), config()).await.unwrap();
    let pans = common::valid_test_pans();
    let mut landed_twice = 0;
    for (round, pair) in pans.chunks(2).take(10).enumerate() {
        let [pan_a, pan_b] = pair else { continue };
        let key: &'static [u8] = Box::leak(
            format!("idempotency/two-nodes/{round}")
                .into_bytes()
                .into_boxed_slice(),
        );
        let (claim_a, claim_b, who) = (Claim(key, b"a"), Claim(key, b"b"), actor());
        let (a, b): (Result<StoredCard, _>, Result<StoredCard, _>) = tokio::join!(
            vault_a.store_card_joined(&who, pan_a, &claim_a),
            vault_b.store_card_joined(&who, pan_b, &claim_b),
        );
        let (winner, loser) = match (&a, &b) {
            (Ok(_), Err(VaultError::JoinedStale)) => (pan_a, pan_b),
            (Err(VaultError::JoinedStale), Ok(_)) => (pan_b, pan_a),
            (Ok(_), Ok(_)) => {
                landed_twice += 1;
                continue;
            }
            other => panic!("round {round}: {other:?}"),
        };
        // The winner's card is stored; the loser's store wrote nothing.
        assert!(vault_a.store_card(&actor(), winner).await.unwrap().already_stored);
        assert!(!vault_b.store_card(&actor(), loser).await.unwrap().already_stored);
    }
    assert_eq!(landed_twice, 0, "a key claimed twice");
}

/// A vault node's configuration under its own name (its own audit chain).
fn named(node: &str) -> VaultConfig {
    let mut config = VaultConfig::embedded().unwrap();
    config.node = Some(tokenvault::domain::node::NodeName::parse(node).unwrap());
    config
}

/// The data-key version each stored card was sealed under, by version.
async fn records_per_version<S: tokenvault::store::Store>(
    vault: &Vault<S>,
) -> std::collections::BTreeMap<u32, u64> {
    let report = vault.key_report().await.unwrap();
    report.data_keys.iter().map(|k| (k.version, k.records)).collect()
}

/// Node A rotates the data key; node B, which has not heard of it, stores
/// a card: its first write, sealed under the old version, is fenced out
/// (it conflicts on the current-version record), B loads the new version
/// and seals again, so the card lands under A's new version.
#[tokio::test]
async fn a_rotation_on_one_node_makes_the_other_seal_under_the_new_version() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::backend_in(dir.path()).await;
    let kek = || Kek::from_dev_file(&dir.path().join("dev-kek.hex")).unwrap();
    let vault_a = Vault::open(store.clone(), kek(), named("a")).await.unwrap();
    let vault_b = Vault::open(store, kek(), named("b")).await.unwrap();
    let pans = common::valid_test_pans();
    vault_b.store_card(&actor(), &pans[0]).await.unwrap();
    assert_eq!(vault_a.rotate_data_key(&actor(), "test").await.unwrap(), 2);
    let card = vault_b.store_card(&actor(), &pans[1]).await.unwrap();
    assert!(!card.already_stored);
    assert_eq!(
        records_per_version(&vault_b).await.get(&2),
        Some(&1),
        "B sealed under A's version"
    );
    assert_eq!(records_per_version(&vault_b).await.get(&1), Some(&1));
    // Both read both.
    for vault in [&vault_a, &vault_b] {
        vault.card(&actor(), &card.card_ref).await.unwrap();
    }
    // B rotating now builds on the store's version, not its own stale one.
    assert_eq!(vault_b.rotate_data_key(&actor(), "test").await.unwrap(), 3);
}

/// Node B stores cards without pause while node A rotates, rewraps every
/// record and retires the old version. Every one of B's writes succeeds,
/// nothing is left under the retired version (a write sealed under it
/// after the rotation cannot commit), and every card opens on both nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retiring_on_one_node_while_the_other_writes_strands_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::backend_in(dir.path()).await;
    let kek = || Kek::from_dev_file(&dir.path().join("dev-kek.hex")).unwrap();
    let vault_a = Arc::new(Vault::open(store.clone(), kek(), named("a")).await.unwrap());
    let vault_b = Arc::new(Vault::open(store, kek(), named("b")).await.unwrap());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (vault_b, stop) = (Arc::clone(&vault_b), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut cards = Vec::new();
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let pan = common::random_pan(7_000 + n);
                n += 1;
                let card = vault_b.store_card(&actor(), &pan).await.expect("B's write");
                cards.push((pan, card.card_ref));
            }
            cards
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let me = actor();
    vault_a.rotate_data_key(&me, "test").await.unwrap();
    vault_a.start_rewrap(&me).await.unwrap();
    while let Some(p) = vault_a.rewrap_step(&me, 64).await.unwrap() {
        if p.finished_at.is_some() {
            break;
        }
    }
    vault_a.retire_data_key(&me, 1).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    stop.store(true, Ordering::SeqCst);
    let cards = writer.await.unwrap();
    assert!(cards.len() > 10, "B kept writing: {}", cards.len());
    let per_version = records_per_version(&vault_a).await;
    assert_eq!(per_version.get(&1).copied().unwrap_or(0), 0, "{per_version:?}");
    for (pan, card_ref) in &cards {
        for vault in [&vault_a, &vault_b] {
            let card = vault.card(&me, card_ref).await.unwrap();
            assert_eq!(card.masked.as_str()[..6], pan[..6]);
        }
    }
}

/// Node B stores new cards and stores again ones stored before, without
/// pause, while node A rotates the PAN fingerprint key and rewraps every
/// card to it. No write fails; every PAN stored again, on either node and
/// under either version, is found as the card it already is (B learns of
/// the rotation only when its first write under version 1 is fenced out);
/// afterwards every card is indexed under version 2, only version 2 is
/// looked up, and an erased card's entry goes with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fingerprint_rotation_under_traffic_keeps_every_duplicate_found() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::backend_in(dir.path()).await;
    let kek = || Kek::from_dev_file(&dir.path().join("dev-kek.hex")).unwrap();
    let vault_a = Arc::new(Vault::open(store.clone(), kek(), named("a")).await.unwrap());
    let vault_b = Arc::new(Vault::open(store, kek(), named("b")).await.unwrap());
    let me = actor();
    let mut before = Vec::new();
    for n in 0..20 {
        let pan = common::random_pan(9_000 + n);
        before.push((pan.clone(), vault_a.store_card(&me, &pan).await.unwrap().card_ref));
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (vault_b, stop, before) = (Arc::clone(&vault_b), Arc::clone(&stop), before.clone());
        tokio::spawn(async move {
            let mut cards = Vec::new();
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let pan = common::random_pan(9_100 + n);
                let card = vault_b.store_card(&actor(), &pan).await.expect("B's write");
                assert!(!card.already_stored, "a new PAN found as stored");
                let (old_pan, old_ref) = &before[n as usize % before.len()];
                let again = vault_b.store_card(&actor(), old_pan).await.expect("B's write");
                assert!(again.already_stored, "a stored PAN stored again");
                assert_eq!(&again.card_ref, old_ref);
                cards.push((pan, card.card_ref));
                n += 1;
            }
            cards
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(vault_a.rotate_fingerprint_key(&me).await.unwrap(), 2);
    // A card A stores now is indexed under version 2 only; B finds it.
    let late_pan = common::random_pan(9_999);
    let late = vault_a.store_card(&me, &late_pan).await.unwrap();
    let again = vault_b.store_card(&me, &late_pan).await.unwrap();
    assert!(again.already_stored && again.card_ref == late.card_ref);
    vault_a.start_rewrap(&me).await.unwrap();
    while let Some(p) = vault_a.rewrap_step(&me, 16).await.unwrap() {
        if p.finished_at.is_some() {
            break;
        }
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    stop.store(true, Ordering::SeqCst);
    let cards = writer.await.unwrap();
    assert!(cards.len() > 10, "B kept writing: {}", cards.len());

    let report = vault_a.key_report().await.unwrap();
    let total = (before.len() + cards.len() + 1) as u64;
    assert_eq!(report.fingerprint_version, 2);
    assert_eq!(report.fingerprint_floor, 2, "the rewrap raised the floor");
    assert_eq!(
        report.cards_per_fingerprint,
        [(2, total)].into(),
        "each PAN stored once, all under version 2"
    );
    let trail = vault_a.audit_export(&me).await.unwrap();
    assert!(
        trail.iter().any(|r| r.operation == "keys.rotate_fingerprint"),
        "the rotation is audited"
    );
    for (pan, card_ref) in before.iter().chain(&cards) {
        for vault in [&vault_a, &vault_b] {
            let again = vault.store_card(&me, pan).await.unwrap();
            assert!(again.already_stored && &again.card_ref == card_ref, "{pan}");
        }
    }
    // Erasing a card moved to version 2 takes its entry: the PAN is new again.
    let (pan, card_ref) = &before[0];
    vault_b.erase_card(&me, card_ref).await.unwrap();
    assert!(!vault_a.store_card(&me, pan).await.unwrap().already_stored);
}
