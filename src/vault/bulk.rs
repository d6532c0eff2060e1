//! Storing many cards at once (migrations, the scale benchmark): the same
//! validation, fingerprinting and sealing as one card, committed as one
//! durable atomic write with one audit record per card.

use super::audited::Audit;
use super::card::store::indexed_card_ref;
use super::card::StoredCard;
use super::retry::Retry;
use super::{Vault, VaultError};
use crate::audit::{Actor, Outcome};
use crate::domain::operation::Operation;
use crate::store::{Batch, Store};
use std::collections::HashMap;

/// The most cards one bulk call takes: bounds the transaction and the time
/// the chain head is held.
pub const MAX_BULK_CARDS: usize = 500;

/// Why a bulk store was refused; nothing was stored.
#[derive(Debug, thiserror::Error)]
#[error("card {index} of the batch: {error}")]
pub struct BulkRefusal {
    /// Position of the first offending card in the request.
    pub index: usize,
    pub error: VaultError,
}

impl<S: Store> Vault<S> {
    /// Validates every card first: one invalid card refuses the whole batch
    /// (audited, nothing written). Then stores the new ones and returns, in
    /// request order, each card's reference; a PAN stored before (or twice
    /// in the batch) gets its existing reference with `already_stored`.
    pub async fn store_cards(&self, actor: &Actor, inputs: &[&str]) -> Result<Vec<StoredCard>, BulkRefusal> {
        let refusal = match self.store_cards_inner(actor, inputs).await {
            Ok(cards) => return Ok(cards),
            Err(refusal) => refusal,
        };
        let (outcome, detail) = refusal.error.audit_outcome();
        let audit = Audit::new(actor, Operation::CardStore, None);
        let detail = format!("bulk item {}: {}", refusal.index, detail.unwrap_or_default());
        match self.record(&audit, outcome, Some(detail)).await {
            // A refusal that cannot be audited is reported as the audit failure.
            Err(audit_error) if outcome != Outcome::Error => Err(BulkRefusal {
                index: refusal.index,
                error: audit_error,
            }),
            _ => Err(refusal),
        }
    }

    async fn store_cards_inner(
        &self,
        actor: &Actor,
        inputs: &[&str],
    ) -> Result<Vec<StoredCard>, BulkRefusal> {
        let refuse = |index: usize| move |error: VaultError| BulkRefusal { index, error };
        if inputs.len() > MAX_BULK_CARDS || inputs.is_empty() {
            return Err(BulkRefusal {
                index: inputs.len().min(MAX_BULK_CARDS),
                error: VaultError::BulkSize { max: MAX_BULK_CARDS },
            });
        }
        let mut pans = Vec::with_capacity(inputs.len());
        for (index, input) in inputs.iter().enumerate() {
            pans.push(self.parse_for_storage(input).map_err(refuse(index))?);
        }
        let mut retry = Retry::new();
        loop {
            let mut batch = Batch::new();
            let mut entries = Vec::with_capacity(pans.len());
            let mut out: Vec<StoredCard> = Vec::with_capacity(pans.len());
            // Current-version index key -> position in `out` of the first
            // card with that PAN.
            let mut first_seen: HashMap<Vec<u8>, usize> = HashMap::new();
            for (index, pan) in pans.iter().enumerate() {
                let fail = refuse(index);
                let index_keys = self.fingerprint_index_keys(pan.expose_digits());
                let current_key = index_keys[0].1.clone();
                if let Some(&earlier) = first_seen.get(&current_key) {
                    let mut again: StoredCard = out[earlier].clone();
                    again.already_stored = true;
                    let audit = Audit::new(actor, Operation::CardStore, Some(again.card_ref.to_string()));
                    entries.push(audit.entry(Outcome::Success, Some("bulk repeated_in_batch".to_owned())));
                    out.push(again);
                    continue;
                }
                first_seen.insert(current_key, out.len());
                let existing = self.indexed(&index_keys).await.map_err(&fail)?;
                let card = match existing {
                    Some((index_key, existing)) => {
                        let card_ref = indexed_card_ref(&existing).map_err(&fail)?;
                        batch.expect(index_key, Some(&existing));
                        let record = self.card_record(&card_ref).await.map_err(&fail)?;
                        StoredCard::from_record(record, true)
                    }
                    None => {
                        let record = self.new_card(pan, &index_keys, &mut batch).await.map_err(&fail)?;
                        StoredCard::from_record(record, false)
                    }
                };
                let detail = card.already_stored.then(|| "bulk already_stored".to_owned());
                let audit = Audit::new(actor, Operation::CardStore, Some(card.card_ref.to_string()));
                entries.push(audit.entry(Outcome::Success, detail.or_else(|| Some("bulk".to_owned()))));
                out.push(card);
            }
            let committed = match self.apply_with_records(batch, actor, entries).await {
                // Another node rotated the data key: seal again under it.
                Err(VaultError::KeySuperseded) => false,
                other => other.map_err(refuse(0))?,
            };
            if committed {
                return Ok(out);
            }
            // Someone stored one of these PANs meanwhile, or another node
            // rotated the fingerprint key: read again under every version.
            retry.after_conflict().await.map_err(refuse(0))?;
            self.refresh_fingerprints().await.map_err(refuse(0))?;
        }
    }
}
