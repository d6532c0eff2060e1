//! Erasing a card (PCI DSS 3.2.1 disposal, PIPL deletion): its record, its
//! fingerprint index entry and every token of it go in one audited write.
//! Each token number is kept as a tombstone only, so it is never drawn
//! again. What the store's files still hold of the deleted bytes (sled's
//! old segments, PostgreSQL's WAL and dead rows) stays sealed under the
//! data-key version it was written with; it becomes unrecoverable to the
//! vault once that version is rotated away, rewrapped and retired
//! (SECURITY.md, "Erasure").

use crate::audit::Actor;
use crate::domain::operation::Operation;
use crate::domain::refs::CardRef;
use crate::domain::time::Timestamp;
use crate::store::{Batch, Store};
use crate::vault::audited::Audit;
use crate::vault::records::{decode, CardRecord};
use crate::vault::retry::Retry;
use crate::vault::{layout, Vault, VaultError};

/// Cards read per page by the retention sweep.
const RETENTION_PAGE: usize = 256;

/// What an erasure removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErasedCard {
    pub card_ref: CardRef,
    pub tokens_deleted: usize,
}

impl<S: Store> Vault<S> {
    /// Erases `card_ref` and its tokens. Refused (`CardInUse`) while any
    /// of its tokens holds a reservation (a payment in flight).
    pub async fn erase_card(&self, actor: &Actor, card_ref: &CardRef) -> Result<ErasedCard, VaultError> {
        let audit = Audit::new(actor, Operation::CardErase, Some(card_ref.to_string()));
        let result = self.erase_card_inner(actor, card_ref).await;
        self.audited(audit, result).await
    }

    /// Retention: erases (as `actor`) every card stored before `cutoff`
    /// whose tokens were all last changed before it and hold no payment.
    /// Each erasure is audited like one by hand. Returns how many.
    pub async fn erase_cards_idle_since(
        &self,
        actor: &Actor,
        cutoff: Timestamp,
    ) -> Result<usize, VaultError> {
        let mut erased = 0;
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = self
                .store
                .scan_prefix(layout::CARD_PREFIX, after.as_deref(), RETENTION_PAGE)
                .await?;
            for (_, value) in &page {
                let card: CardRecord = decode(value, "card")?;
                if card.created_at < cutoff && self.tokens_idle_since(&card.card_ref, cutoff).await? {
                    match self.erase_card(actor, &card.card_ref).await {
                        Ok(_) => erased += 1,
                        // Used or erased meanwhile: kept, or gone already.
                        Err(VaultError::CardInUse { .. } | VaultError::NotFound { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            match page.last() {
                Some((key, _)) if page.len() == RETENTION_PAGE => after = Some(key.clone()),
                _ => return Ok(erased),
            }
        }
    }

    /// Whether every token of `card_ref` was last changed before `cutoff`
    /// and holds no reservation.
    async fn tokens_idle_since(&self, card_ref: &CardRef, cutoff: Timestamp) -> Result<bool, VaultError> {
        for number in self.scan_card_tokens(card_ref).await? {
            let (token, _) = self.token_record(&number).await?;
            if token.updated_at >= cutoff || token.usage.uses_reserved > 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn erase_card_inner(&self, actor: &Actor, card_ref: &CardRef) -> Result<ErasedCard, VaultError> {
        let card_key = layout::card(card_ref);
        let _one_writer_per_card = self.stripes.lock(&card_key).await;
        let mut retry = Retry::new();
        loop {
            let raw = self
                .store
                .get(&card_key)
                .await?
                .ok_or(VaultError::NotFound { what: "card" })?;
            let record: CardRecord = decode(&raw, "card")?;
            let pan = self.open_pan_of(&record).await?;
            let index_key = self
                .fingerprint_index_key(pan.expose_digits(), record.fingerprint_version)
                .await?;
            drop(pan);
            let mut batch = Batch::new();
            batch
                .expect_equals(card_key.clone(), raw)
                .delete(card_key.clone())
                .expect_equals(index_key.clone(), card_ref.as_str())
                .delete(index_key);
            let tokens = self.scan_card_tokens(card_ref).await?;
            let mut in_flight = 0;
            for number in &tokens {
                let (record, raw) = self.token_record(number).await?;
                if record.usage.uses_reserved > 0 {
                    in_flight += 1;
                }
                batch
                    .expect_equals(layout::token(number), raw)
                    .delete(layout::token(number))
                    .delete(layout::card_token(card_ref, number))
                    // The tombstone links to nothing: the number only.
                    .put(layout::erased_token(number), Vec::new());
            }
            if in_flight > 0 {
                return Err(VaultError::CardInUse { tokens: in_flight });
            }
            let audit = Audit::new(actor, Operation::CardErase, Some(card_ref.to_string()))
                .with_detail(format!("tokens_deleted={}", tokens.len()));
            if self.try_commit(batch, &audit, &mut retry).await? {
                return Ok(ErasedCard {
                    card_ref: card_ref.clone(),
                    tokens_deleted: tokens.len(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::{ChannelId, Currency, MerchantId};
    use crate::vault::crypto::aad::{Binding, RecordKind};
    use crate::vault::test_vault::{controls, fresh};
    use crate::vault::token::UseRequest;

    /// A card with a token: erasure is refused while the token holds a
    /// reservation, then takes the card, its index entry and its token in
    /// one write (the same PAN stores anew, the token number is a
    /// tombstone). A copy of the card's sealed PAN taken before still
    /// opens under version 1 until that version is rotated, rewrapped and
    /// retired; after that no key the vault holds opens it.
    #[tokio::test]
    async fn an_erased_card_is_gone_and_its_copied_ciphertext_dies_with_its_key_version() {
        let (_dir, vault) = fresh().await;
        let me = Actor::local("test");
        let card = vault.store_card(&me, "4242424242424242").await.unwrap().card_ref;
        let other = vault.store_card(&me, "5555555555554444").await.unwrap().card_ref;
        let token = vault
            .issue_token(&me, &card, controls(5), Timestamp::now())
            .await
            .unwrap()
            .number;
        let copied: CardRecord = decode(
            &vault.store.get(&layout::card(&card)).await.unwrap().unwrap(),
            "card",
        )
        .unwrap();

        let request = UseRequest {
            amount: 50,
            currency: Currency::parse("CNY").unwrap(),
            channel: ChannelId::parse("bank-a").unwrap(),
            merchant: MerchantId::parse("M001").unwrap(),
        };
        let reservation = vault
            .reserve(&me, &token, &request, Timestamp::now())
            .await
            .unwrap();
        assert!(matches!(
            vault.erase_card(&me, &card).await,
            Err(VaultError::CardInUse { tokens: 1 })
        ));
        vault
            .release_reservation(&me, &reservation.id, Timestamp::now())
            .await
            .unwrap();

        let erased = vault.erase_card(&me, &card).await.unwrap();
        assert_eq!(erased.tokens_deleted, 1);
        assert!(matches!(
            vault.card(&me, &card).await,
            Err(VaultError::NotFound { what: "card" })
        ));
        assert!(matches!(
            vault.token(&me, &token).await,
            Err(VaultError::NotFound { what: "token" })
        ));
        assert!(vault
            .store
            .get(&layout::erased_token(&token))
            .await
            .unwrap()
            .is_some());
        assert!(matches!(
            vault.erase_card(&me, &card).await,
            Err(VaultError::NotFound { .. })
        ));
        let again = vault.store_card(&me, "4242424242424242").await.unwrap();
        assert!(!again.already_stored && again.card_ref != card);

        let binding = Binding {
            kind: RecordKind::Card,
            record_id: card.as_str(),
            field: "pan",
        };
        assert!(
            vault.keyring.open(&binding, &copied.pan).is_ok(),
            "still version 1's"
        );
        vault.rotate_data_key(&me, "test").await.unwrap();
        vault.start_rewrap(&me).await.unwrap();
        while vault.rewrap_step(&me, 100).await.unwrap().is_some() {}
        vault.retire_data_key(&me, 1).await.unwrap();
        assert!(
            vault.keyring.open(&binding, &copied.pan).is_err(),
            "no key the vault holds opens it"
        );
        assert_eq!(
            vault.open_pan(&other).await.unwrap().expose_digits(),
            "5555555555554444"
        );
    }

    /// Retention erases a card stored before the cut-off whose tokens are
    /// idle since; it keeps a card stored after it and a card whose token
    /// changed after it. Each erasure is audited by the sweep's actor.
    #[tokio::test]
    async fn retention_erases_only_cards_idle_since_the_cut_off() {
        let (_dir, vault) = fresh().await;
        let me = Actor::local("test");
        let idle = vault.store_card(&me, "4242424242424242").await.unwrap().card_ref;
        let used = vault.store_card(&me, "5555555555554444").await.unwrap().card_ref;
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let cutoff = Timestamp::now();
        vault.issue_token(&me, &used, controls(5), cutoff).await.unwrap();
        let fresh = vault.store_card(&me, "4000056655665556").await.unwrap().card_ref;

        let sweep = Actor::local("retention");
        assert_eq!(vault.erase_cards_idle_since(&sweep, cutoff).await.unwrap(), 1);
        assert!(matches!(
            vault.card(&me, &idle).await,
            Err(VaultError::NotFound { .. })
        ));
        assert!(vault.card(&me, &used).await.is_ok());
        assert!(vault.card(&me, &fresh).await.is_ok());
        let trail = vault.audit_export(&me).await.unwrap();
        let erasures: Vec<_> = trail.iter().filter(|r| r.operation == "card.erase").collect();
        assert_eq!(erasures.len(), 1);
        assert_eq!(erasures[0].identity, "local:retention");
        assert_eq!(erasures[0].object.as_deref(), Some(idle.as_str()));
    }
}
