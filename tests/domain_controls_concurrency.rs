//! Invariant 5: domain controls hold under any concurrency, checked on the
//! stored counters, within one vault and across two vault instances sharing
//! one store (where only the store's preconditions keep them honest).

mod common;

use common::{controls, open_vault, use_of};
use std::sync::Arc;
use tokenvault::domain::time::Timestamp;
use tokenvault::store::Backend;
use tokenvault::vault::token::{ControlRefusal, TokenNumber};
use tokenvault::vault::{Vault, VaultError};

/// Runs `attempts` concurrent reserve-then-commit calls spread over `vaults`;
/// returns (committed, refused by use count, refused by cumulative amount).
async fn race(
    vaults: &[Arc<Vault<Backend>>],
    token: &tokenvault::vault::token::TokenNumber,
    attempts: usize,
    amount: u64,
) -> (usize, usize, usize) {
    let barrier = Arc::new(tokio::sync::Barrier::new(attempts));
    let mut tasks = Vec::new();
    for i in 0..attempts {
        let vault = Arc::clone(&vaults[i % vaults.len()]);
        let token = token.clone();
        let barrier = Arc::clone(&barrier);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let now = Timestamp::now();
            match vault
                .reserve(&common::actor(), &token, &use_of(amount), now)
                .await
            {
                Ok(r) => {
                    vault
                        .commit_reservation(&common::actor(), &r.id, now)
                        .await
                        .expect("commit");
                    Ok(())
                }
                Err(e) => Err(e),
            }
        }));
    }
    let (mut ok, mut uses, mut cumulative) = (0, 0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(VaultError::Refused(ControlRefusal::UseCount)) => uses += 1,
            Err(VaultError::Refused(ControlRefusal::CumulativeAmount)) => cumulative += 1,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    (ok, uses, cumulative)
}

/// A vault with one stored card `pan`, on which each round issues a fresh
/// token; the temporary directory lives as long as it does.
struct OneCard {
    _dir: tempfile::TempDir,
    vault: Arc<Vault<Backend>>,
    card: tokenvault::domain::refs::CardRef,
}

impl OneCard {
    async fn open(pan: &str) -> OneCard {
        let tv = open_vault().await;
        let vault = Arc::new(tv.vault);
        let card = vault.store_card(&common::actor(), pan).await.unwrap().card_ref;
        OneCard {
            _dir: tv.dir,
            vault,
            card,
        }
    }

    async fn token(&self, controls: tokenvault::vault::token::DomainControls) -> TokenNumber {
        self.vault
            .issue_token(&common::actor(), &self.card, controls, Timestamp::now())
            .await
            .unwrap()
            .number
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn exactly_max_uses_commit_under_contention_repeatedly() {
    let one = OneCard::open("6205500000000000004").await;
    let vault = &one.vault;
    for round in 0..15 {
        let token = one.token(controls(10, 1_000, 1_000_000)).await;
        let (ok, refused, _) = race(&[Arc::clone(vault)], &token, 64, 100).await;
        assert_eq!((ok, refused), (10, 54), "round {round}");
        let stored = vault.token(&common::actor(), &token).await.unwrap().usage;
        assert_eq!(stored.uses_committed, 10, "round {round}");
        assert_eq!(stored.amount_committed, 1_000);
        assert_eq!((stored.uses_reserved, stored.amount_reserved), (0, 0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn cumulative_cap_is_never_exceeded_repeatedly() {
    let one = OneCard::open("4242424242424242").await;
    let vault = &one.vault;
    for round in 0..15 {
        // Ten uses allowed, but the cap admits only five payments of 100.
        let token = one.token(controls(10, 100, 550)).await;
        let (ok, _, capped) = race(&[Arc::clone(vault)], &token, 64, 100).await;
        assert_eq!((ok, capped), (5, 59), "round {round}");
        let stored = vault.token(&common::actor(), &token).await.unwrap().usage;
        assert_eq!(stored.uses_committed, 5);
        assert_eq!(stored.amount_committed, 500);
    }
}

/// Issue 17, item 1: the campaign's wrap, raced at the bound. Concurrent
/// reservations of just over half of 10^12 on a token allowing 10^12: one
/// commits, every other is refused by the cumulative cap (never a wrapped
/// counter, never a corrupt one), and the stored counters are exact. Then
/// the same with the whole bound in one use.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn reservations_racing_at_the_amount_bound_never_wrap() {
    use tokenvault::domain::amount::MAX_MINOR_UNITS;
    let one = OneCard::open("4242424242424242").await;
    let vault = &one.vault;
    for amount in [MAX_MINOR_UNITS / 2 + 1, MAX_MINOR_UNITS] {
        let token = one.token(controls(100, MAX_MINOR_UNITS, MAX_MINOR_UNITS)).await;
        let (ok, uses, capped) = race(&[Arc::clone(vault)], &token, 32, amount).await;
        assert_eq!((ok, uses, capped), (1, 0, 31), "amount {amount}");
        let stored = vault.token(&common::actor(), &token).await.unwrap().usage;
        assert_eq!(
            (
                stored.uses_committed,
                stored.amount_committed,
                stored.amount_reserved
            ),
            (1, amount, 0),
            "amount {amount}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn two_vault_nodes_on_one_store_cannot_overspend() {
    let tv = open_vault().await;
    let store = tv.store.clone();
    // A second vault over the same data, as a second node would be: its own
    // in-process locks, so only store preconditions serialise the two.
    let kek = tokenvault::vault::keys::kek::Kek::from_dev_file(&tv.dir.path().join("dev-kek.hex")).unwrap();
    let second = Vault::open(store, kek, tokenvault::vault::VaultConfig::embedded().unwrap())
        .await
        .unwrap();
    let vaults = [Arc::new(tv.vault), Arc::new(second)];
    let card = vaults[0]
        .store_card(&common::actor(), "5555555555554444")
        .await
        .unwrap();
    for round in 0..10 {
        let token = vaults[0]
            .issue_token(
                &common::actor(),
                &card.card_ref,
                controls(10, 1_000, 1_000_000),
                Timestamp::now(),
            )
            .await
            .unwrap();
        let (ok, refused, _) = race(&vaults, &token.number, 64, 7).await;
        assert_eq!((ok, refused), (10, 54), "round {round}");
        for v in &vaults {
            let usage = v.token(&common::actor(), &token.number).await.unwrap().usage;
            assert_eq!((usage.uses_committed, usage.amount_committed), (10, 70));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn released_reservations_give_their_use_and_amount_back() {
    let tv = open_vault().await;
    let vault = &tv.vault;
    let card = vault
        .store_card(&common::actor(), "3566002020360505")
        .await
        .unwrap();
    let token = vault
        .issue_token(
            &common::actor(),
            &card.card_ref,
            controls(2, 500, 600),
            Timestamp::now(),
        )
        .await
        .unwrap();
    let now = Timestamp::now();
    let a = vault
        .reserve(&common::actor(), &token.number, &use_of(500), now)
        .await
        .unwrap();
    assert!(matches!(
        vault
            .reserve(&common::actor(), &token.number, &use_of(200), now)
            .await,
        Err(VaultError::Refused(ControlRefusal::CumulativeAmount))
    ));
    vault
        .release_reservation(&common::actor(), &a.id, now)
        .await
        .unwrap();
    // Releasing twice is harmless and gives nothing back twice.
    vault
        .release_reservation(&common::actor(), &a.id, now)
        .await
        .unwrap();
    assert!(matches!(
        vault.commit_reservation(&common::actor(), &a.id, now).await,
        Err(VaultError::ReservationSettled(_))
    ));
    let usage = vault.token(&common::actor(), &token.number).await.unwrap().usage;
    assert_eq!(
        (usage.uses_reserved, usage.amount_reserved, usage.uses_committed),
        (0, 0, 0)
    );
    let b = vault
        .reserve(&common::actor(), &token.number, &use_of(300), now)
        .await
        .unwrap();
    let c = vault
        .reserve(&common::actor(), &token.number, &use_of(300), now)
        .await
        .unwrap();
    vault
        .commit_reservation(&common::actor(), &b.id, now)
        .await
        .unwrap();
    vault
        .commit_reservation(&common::actor(), &b.id, now)
        .await
        .unwrap();
    vault
        .commit_reservation(&common::actor(), &c.id, now)
        .await
        .unwrap();
    assert!(matches!(
        vault
            .reserve(&common::actor(), &token.number, &use_of(1), now)
            .await,
        Err(VaultError::Refused(ControlRefusal::UseCount))
    ));
    let usage = vault.token(&common::actor(), &token.number).await.unwrap().usage;
    assert_eq!((usage.uses_committed, usage.amount_committed), (2, 600));
}
