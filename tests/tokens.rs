//! Payment tokens through the vault: number properties for every test
//! card, lifecycle, and validation of the controls they carry.

mod common;

use tokenvault::domain::time::Timestamp;
use tokenvault::domain::validation::{Field, Rule};
use tokenvault::vault::token::{ControlRefusal, TokenBinRange, TokenStatus};
use tokenvault::vault::VaultError;

fn luhn_ok(s: &str) -> bool {
    tokenvault::vault::card::luhn::is_valid(s.as_bytes())
}

#[tokio::test]
async fn tokens_look_like_their_card_but_never_equal_a_pan() {
    let tv = common::open_vault().await;
    let range = TokenBinRange::default();
    let pans = common::valid_test_pans();
    let mut stored = Vec::new();
    for pan in &pans {
        stored.push((
            pan.clone(),
            tv.vault.store_card(&common::actor(), pan).await.unwrap(),
        ));
    }
    for (pan, card) in &stored {
        for _ in 0..20 {
            let t = tv
                .vault
                .issue_token(
                    &common::actor(),
                    &card.card_ref,
                    common::controls(1, 1, 1),
                    Timestamp::now(),
                )
                .await
                .unwrap();
            let n = t.number.as_str();
            assert_eq!(n.len(), pan.len(), "same length as the PAN");
            assert!(luhn_ok(n));
            assert!(range.contains(n));
            assert!(!pans.iter().any(|p| p == n), "never equal to a stored PAN");
            assert_eq!(t.masked_card, card.masked);
        }
        let tokens = tv
            .vault
            .tokens_of_card(&common::actor(), &card.card_ref)
            .await
            .unwrap();
        assert_eq!(tokens.len(), 20, "one card, many tokens, all distinct");
    }
}

#[tokio::test]
async fn duplicate_pans_are_found_by_fingerprint() {
    let tv = common::open_vault().await;
    let first = tv
        .vault
        .store_card(&common::actor(), "6200 0000 0000 0005")
        .await
        .unwrap();
    let again = tv
        .vault
        .store_card(&common::actor(), "6200-0000-0000-0005")
        .await
        .unwrap();
    assert!(!first.already_stored);
    assert!(again.already_stored);
    assert_eq!(first.card_ref, again.card_ref);
    assert_eq!(first.masked.as_str(), "620000******0005");
    let icbc = tv
        .vault
        .store_card(&common::actor(), &common_icbc())
        .await
        .unwrap();
    assert_eq!(icbc.issuer, "中国工商银行");
    assert_eq!(icbc.card_type.as_str(), "debit");
    assert_eq!(first.issuer, "unknown");
}

fn common_icbc() -> String {
    common::with_check_digit("622202000012345")
}

#[tokio::test]
async fn invalid_cards_are_refused_with_field_and_rule_and_store_nothing() {
    let tv = common::open_vault().await;
    for (pan, valid) in common::test_cards() {
        if valid {
            continue;
        }
        match tv.vault.store_card(&common::actor(), &pan).await {
            Err(VaultError::Invalid(e)) => {
                assert_eq!(e.field, Field::Pan);
                assert!(!e.to_string().contains(&pan));
            }
            other => panic!("{pan:?} should be refused, got {other:?}"),
        }
    }
    use tokenvault::store::Store;
    assert!(tv.store.scan_prefix(b"card", None, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn lifecycle_follows_emvco() {
    let tv = common::open_vault().await;
    let card = tv
        .vault
        .store_card(&common::actor(), "378282246310005")
        .await
        .unwrap();
    let now = Timestamp::now();
    let t = tv
        .vault
        .issue_token(
            &common::actor(),
            &card.card_ref,
            common::controls(5, 100, 500),
            now,
        )
        .await
        .unwrap();
    assert_eq!(t.status, TokenStatus::Active);
    assert_eq!(
        tv.vault
            .suspend_token(&common::actor(), &t.number, now)
            .await
            .unwrap()
            .status,
        TokenStatus::Suspended
    );
    assert!(matches!(
        tv.vault
            .reserve(&common::actor(), &t.number, &common::use_of(10), now)
            .await,
        Err(VaultError::Refused(ControlRefusal::Status(
            TokenStatus::Suspended
        )))
    ));
    assert!(matches!(
        tv.vault.suspend_token(&common::actor(), &t.number, now).await,
        Err(VaultError::Lifecycle(_))
    ));
    assert_eq!(
        tv.vault
            .resume_token(&common::actor(), &t.number, now)
            .await
            .unwrap()
            .status,
        TokenStatus::Active
    );
    assert_eq!(
        tv.vault
            .delete_token(&common::actor(), &t.number, now)
            .await
            .unwrap()
            .status,
        TokenStatus::Deleted
    );
    for result in [
        tv.vault.resume_token(&common::actor(), &t.number, now).await,
        tv.vault.suspend_token(&common::actor(), &t.number, now).await,
        tv.vault.delete_token(&common::actor(), &t.number, now).await,
    ] {
        assert!(
            matches!(result, Err(VaultError::Lifecycle(_))),
            "deleted is final"
        );
    }
    assert!(matches!(
        tv.vault
            .reserve(&common::actor(), &t.number, &common::use_of(10), now)
            .await,
        Err(VaultError::Refused(ControlRefusal::Status(TokenStatus::Deleted)))
    ));
}

#[tokio::test]
async fn expired_window_is_refused_at_issue_and_at_use() {
    let tv = common::open_vault().await;
    let card = tv
        .vault
        .store_card(&common::actor(), "36227206271667")
        .await
        .unwrap();
    let controls = common::controls(5, 100, 500);
    let later = Timestamp(controls.spec().valid_until.seconds() + 1);
    match tv
        .vault
        .issue_token(&common::actor(), &card.card_ref, controls.clone(), later)
        .await
    {
        Err(VaultError::Invalid(e)) => {
            assert_eq!((e.field, e.rule), (Field::TokenControls, Rule::OutOfRange))
        }
        other => panic!("{other:?}"),
    }
    let t = tv
        .vault
        .issue_token(&common::actor(), &card.card_ref, controls, Timestamp::now())
        .await
        .unwrap();
    assert!(matches!(
        tv.vault
            .reserve(&common::actor(), &t.number, &common::use_of(10), later)
            .await,
        Err(VaultError::Refused(ControlRefusal::Expired))
    ));
    let unknown = tokenvault::domain::refs::CardRef::parse("crd_00000000000000000000000000000000").unwrap();
    assert!(matches!(
        tv.vault
            .issue_token(
                &common::actor(),
                &unknown,
                common::controls(1, 1, 1),
                Timestamp::now()
            )
            .await,
        Err(VaultError::NotFound { what: "card" })
    ));
}
