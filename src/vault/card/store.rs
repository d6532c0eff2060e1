//! Storing a card: parse, fingerprint for duplicates, seal, write.

use crate::audit::{Actor, Outcome};
use crate::domain::operation::Operation;
use crate::domain::refs::CardRef;
use crate::domain::time::Timestamp;
use crate::store::{Batch, Store};
use crate::vault::audited::Audit;
use crate::vault::card::pan::Pan;
use crate::vault::card::{CardType, MaskedPan, Network};
use crate::vault::crypto::aad::{Binding, RecordKind};
use crate::vault::records::{decode, encode, CardRecord};
use crate::vault::retry::Retry;
use crate::vault::{layout, Alone, Joined, Vault, VaultError};
use zeroize::Zeroizing;

/// Fingerprint purpose for PANs; token numbers are checked against the same
/// index, so a token can never equal a stored PAN.
pub(crate) const PAN_FINGERPRINT: &str = "pan";

/// What a caller learns about a stored card: never the PAN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCard {
    pub card_ref: CardRef,
    pub masked: MaskedPan,
    pub network: Network,
    pub issuer: String,
    pub card_type: CardType,
    pub created_at: Timestamp,
    /// The same PAN was stored before (keyed fingerprint match); `card_ref`
    /// is then the existing card's reference and nothing new was written.
    pub already_stored: bool,
}

impl StoredCard {
    pub(in crate::vault) fn from_record(record: CardRecord, already_stored: bool) -> Self {
        StoredCard {
            card_ref: record.card_ref,
            masked: record.masked,
            network: record.network,
            issuer: record.issuer,
            card_type: record.card_type,
            created_at: record.created_at,
            already_stored,
        }
    }
}

fn pan_binding(card_ref: &CardRef) -> Binding<'_> {
    Binding {
        kind: RecordKind::Card,
        record_id: card_ref.as_str(),
        field: "pan",
    }
}

impl<S: Store> Vault<S> {
    /// Validates and stores a card number; returns once the record and its
    /// audit record are durable. A PAN stored before returns its existing
    /// reference (and writes only an audit record).
    pub async fn store_card(&self, actor: &Actor, input: &str) -> Result<StoredCard, VaultError> {
        self.store_card_joined(actor, input, &Alone).await
    }

    /// `store_card`, with `joined`'s writes in the same batch (also when
    /// the PAN was stored before and only an audit record is written).
    pub async fn store_card_joined(
        &self,
        actor: &Actor,
        input: &str,
        joined: &impl Joined<StoredCard>,
    ) -> Result<StoredCard, VaultError> {
        let result = self
            .resealing(|| self.store_card_inner(actor, input, joined))
            .await;
        self.audited(Audit::new(actor, Operation::CardStore, None), result)
            .await
    }

    async fn store_card_inner(
        &self,
        actor: &Actor,
        input: &str,
        joined: &impl Joined<StoredCard>,
    ) -> Result<StoredCard, VaultError> {
        let pan = self.parse_for_storage(input)?;
        let index_keys = self.fingerprint_index_keys(pan.expose_digits());
        // Stores of one PAN queue here (keyed by its current-version entry);
        // across nodes the conditional writes below keep them apart.
        let _same_pan_queues_here = self.stripes.lock(&index_keys[0].1).await;
        let mut retry = Retry::new();
        let mut index_keys = index_keys;
        loop {
            if let Some((index_key, existing)) = self.indexed(&index_keys).await? {
                let card_ref = indexed_card_ref(&existing)?;
                let record = self.card_record(&card_ref).await?;
                let audit = Audit::new(actor, Operation::CardStore, Some(card_ref.to_string()))
                    .with_detail("already_stored");
                let stored = StoredCard::from_record(record, true);
                let mut batch = crate::vault::joined::writes_of(joined, &stored)?;
                let joined_expects = batch.expectations.clone();
                batch.expect_equals(index_key, existing);
                if self.try_commit(batch, &audit, &mut retry).await? {
                    return Ok(stored);
                }
                self.joined_still_hold(&joined_expects).await?;
                continue;
            }
            let mut batch = Batch::new();
            let record = self.new_card(&pan, &index_keys, &mut batch).await?;
            let audit = Audit::new(actor, Operation::CardStore, Some(record.card_ref.to_string()));
            let stored = StoredCard::from_record(record, false);
            let joined_expects = batch.join(crate::vault::joined::writes_of(joined, &stored)?);
            if self.try_commit(batch, &audit, &mut retry).await? {
                return Ok(stored);
            }
            self.joined_still_hold(&joined_expects).await?;
            // Another node may have rotated the fingerprint key (the fence
            // refused the write): look again under every version it knows.
            self.refresh_fingerprints().await?;
            index_keys = self.fingerprint_index_keys(pan.expose_digits());
        }
    }

    /// The first of `index_keys` that holds an entry, with the entry.
    pub(in crate::vault) async fn indexed(
        &self,
        index_keys: &[(u32, Vec<u8>)],
    ) -> Result<Option<(Vec<u8>, Vec<u8>)>, VaultError> {
        for (_, key) in index_keys {
            if let Some(entry) = self.store.get(key).await? {
                return Ok(Some((key.clone(), entry)));
            }
        }
        Ok(None)
    }

    /// A PAN parsed for storage (never one in the token range).
    pub(in crate::vault) fn parse_for_storage(&self, input: &str) -> Result<Pan, VaultError> {
        let pan = Pan::parse(input, &self.config.card_rules)?;
        if self.config.token_range.contains(pan.expose_digits()) {
            return Err(VaultError::PanInTokenRange);
        }
        Ok(pan)
    }

    /// Seals a new card record and adds it and its index entry (under the
    /// current fingerprint version, the first of `index_keys`) to `batch`,
    /// on condition that no entry exists under any version in use, the card
    /// does not exist, and that version is still current.
    pub(in crate::vault) async fn new_card(
        &self,
        pan: &Pan,
        index_keys: &[(u32, Vec<u8>)],
        batch: &mut Batch,
    ) -> Result<CardRecord, VaultError> {
        let card_ref = CardRef::generate()?;
        let (version, index_key) = index_keys.first().ok_or(VaultError::Corrupt {
            what: "card fingerprint version",
        })?;
        let record = self.seal_card(batch, pan, card_ref.clone(), *version).await?;
        let card_key = layout::card(&card_ref);
        crate::vault::keys::fingerprints::fence(batch, *version);
        for (_, key) in index_keys {
            batch.expect_absent(key.clone());
        }
        batch
            .expect_absent(card_key.clone())
            .put(card_key, encode(&record)?)
            .put(index_key.clone(), card_ref.as_str());
        Ok(record)
    }

    async fn seal_card(
        &self,
        batch: &mut Batch,
        pan: &Pan,
        card_ref: CardRef,
        fingerprint_version: u32,
    ) -> Result<CardRecord, VaultError> {
        let sealed = self
            .seal(batch, &pan_binding(&card_ref), pan.expose_digits().as_bytes())
            .await?;
        let info = self.config.bin_table.lookup(pan.expose_digits());
        Ok(CardRecord {
            card_ref,
            pan: sealed,
            fingerprint_version,
            // A PAN has at most 19 digits.
            pan_length: pan.len() as u8,
            masked: pan.masked(),
            network: pan.network(),
            issuer: info.issuer,
            card_type: info.card_type,
            created_at: Timestamp::now(),
        })
    }

    /// The masked facts about a stored card (audited as a read).
    pub async fn card(&self, actor: &Actor, card_ref: &CardRef) -> Result<StoredCard, VaultError> {
        let audit = Audit::new(actor, Operation::CardRead, Some(card_ref.to_string()));
        match self.card_record(card_ref).await {
            Ok(record) => {
                self.record(&audit, Outcome::Success, None).await?;
                Ok(StoredCard::from_record(record, true))
            }
            Err(e) => self.audited(audit, Err(e)).await,
        }
    }

    pub(in crate::vault) async fn card_record(&self, card_ref: &CardRef) -> Result<CardRecord, VaultError> {
        let bytes = self
            .store
            .get(&layout::card(card_ref))
            .await?
            .ok_or(VaultError::NotFound { what: "card" })?;
        decode(&bytes, "card")
    }

    /// Decrypts a stored PAN. Only the vault (its gateway) may call this.
    pub(in crate::vault) async fn open_pan(&self, card_ref: &CardRef) -> Result<Pan, VaultError> {
        self.open_pan_of(&self.card_record(card_ref).await?).await
    }

    /// `open_pan` of a card record already read.
    pub(in crate::vault) async fn open_pan_of(&self, record: &CardRecord) -> Result<Pan, VaultError> {
        let plain = self
            .open_sealed(&pan_binding(&record.card_ref), &record.pan)
            .await?;
        let text = Zeroizing::new(
            String::from_utf8(plain.to_vec()).map_err(|_| VaultError::Corrupt { what: "card" })?,
        );
        Pan::parse(&text, &self.config.card_rules).map_err(|_| VaultError::Corrupt { what: "card" })
    }
}

/// The card reference a fingerprint index entry points at.
pub(in crate::vault) fn indexed_card_ref(entry: &[u8]) -> Result<CardRef, VaultError> {
    std::str::from_utf8(entry)
        .ok()
        .and_then(|s| CardRef::parse(s).ok())
        .ok_or(VaultError::Corrupt {
            what: "card fingerprint index",
        })
}

#[cfg(test)]
mod tests {

    #[tokio::test]
    async fn stored_pan_opens_only_for_its_own_record() {
        let (_dir, vault) = crate::vault::test_vault::fresh().await;
        let actor = crate::audit::Actor::local("test");
        let visa = vault.store_card(&actor, "4242-4242-4242-4242").await.unwrap();
        let up = vault.store_card(&actor, "6205500000000000004").await.unwrap();
        assert_eq!(
            vault.open_pan(&visa.card_ref).await.unwrap().expose_digits(),
            "4242424242424242"
        );
        assert_eq!(
            vault.open_pan(&up.card_ref).await.unwrap().expose_digits(),
            "6205500000000000004"
        );

        // Swap the two ciphertexts between records: neither opens any more.
        use crate::store::{Batch, Store};
        use crate::vault::{layout, records};
        let mut rec_a: records::CardRecord = records::decode(
            &vault
                .store
                .get(&layout::card(&visa.card_ref))
                .await
                .unwrap()
                .unwrap(),
            "card",
        )
        .unwrap();
        let mut rec_b: records::CardRecord = records::decode(
            &vault
                .store
                .get(&layout::card(&up.card_ref))
                .await
                .unwrap()
                .unwrap(),
            "card",
        )
        .unwrap();
        std::mem::swap(&mut rec_a.pan, &mut rec_b.pan);
        let mut batch = Batch::new();
        batch.put(layout::card(&visa.card_ref), records::encode(&rec_a).unwrap());
        batch.put(layout::card(&up.card_ref), records::encode(&rec_b).unwrap());
        vault.store.commit(batch).await.unwrap();
        assert!(vault.open_pan(&visa.card_ref).await.is_err());
        assert!(vault.open_pan(&up.card_ref).await.is_err());
    }
}
