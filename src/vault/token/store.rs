//! Issuing payment tokens for stored cards, reading them, and moving them
//! through their lifecycle.

use crate::audit::{Actor, Outcome};
use crate::domain::operation::Operation;
use crate::domain::refs::CardRef;
use crate::domain::time::Timestamp;
use crate::domain::validation::{Field, Rule, ValidationError};
use crate::store::{Batch, Store};
use crate::vault::audited::Audit;
use crate::vault::card::MaskedPan;
use crate::vault::records::{decode, encode, TokenRecord};
use crate::vault::retry::Retry;
use crate::vault::token::{ControlsSpec, DomainControls, TokenNumber, TokenStatus, Usage};
use crate::vault::{layout, Alone, Joined, Vault, VaultError};

/// How many fresh numbers to draw before concluding the range is full. With
/// even a 13-digit token there are millions of numbers per BIN; repeated
/// collisions mean the range is exhausted or misconfigured.
const MAX_DRAWS: u32 = 32;

/// A token as callers see it: controls, usage and the masked card, never a PAN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenView {
    pub number: TokenNumber,
    pub card_ref: CardRef,
    pub masked_card: MaskedPan,
    pub status: TokenStatus,
    pub controls: ControlsSpec,
    pub usage: Usage,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl<S: Store> Vault<S> {
    /// Issues a new token for a stored card. The number is random, in the
    /// configured token BIN range, as long as the card's PAN, and guaranteed
    /// (by store preconditions) to equal no existing token and no stored PAN.
    pub async fn issue_token(
        &self,
        actor: &Actor,
        card_ref: &CardRef,
        controls: DomainControls,
        now: Timestamp,
    ) -> Result<TokenView, VaultError> {
        self.issue_token_joined(actor, card_ref, controls, now, &Alone)
            .await
    }

    /// `issue_token`, with `joined`'s writes in the token's own batch.
    pub async fn issue_token_joined(
        &self,
        actor: &Actor,
        card_ref: &CardRef,
        controls: DomainControls,
        now: Timestamp,
        joined: &impl Joined<TokenView>,
    ) -> Result<TokenView, VaultError> {
        let result = self
            .issue_token_inner(actor, card_ref, controls, now, joined)
            .await;
        let audit = Audit::new(actor, Operation::TokenIssue, None).with_detail(format!("card={card_ref}"));
        self.audited(audit, result).await
    }

    async fn issue_token_inner(
        &self,
        actor: &Actor,
        card_ref: &CardRef,
        controls: DomainControls,
        now: Timestamp,
        joined: &impl Joined<TokenView>,
    ) -> Result<TokenView, VaultError> {
        let audit = |number: &TokenNumber| {
            Audit::new(actor, Operation::TokenIssue, Some(number.to_string()))
                .with_detail(format!("card={card_ref}"))
        };
        self.issue_token_with(card_ref, controls, now, audit, |view| {
            crate::vault::joined::writes_of(joined, view)
        })
        .await
    }

    /// Draws a token number and commits the token, whatever `extra` adds for
    /// the token about to be stored, and the audit record `audit` describes, in one batch.
    pub(in crate::vault) async fn issue_token_with<'a>(
        &self,
        card_ref: &CardRef,
        controls: DomainControls,
        now: Timestamp,
        audit: impl Fn(&TokenNumber) -> Audit<'a>,
        extra: impl Fn(&TokenView) -> Result<Batch, VaultError>,
    ) -> Result<TokenView, VaultError> {
        if controls.spec().valid_until <= now {
            return Err(ValidationError::new(
                Field::TokenControls,
                Rule::OutOfRange,
                "valid_until is already in the past",
            )
            .into());
        }
        let mut card = self.card_record(card_ref).await?;
        for _ in 0..MAX_DRAWS {
            let number = self.config.token_range.generate(usize::from(card.pan_length))?;
            // Belt and braces (no PAN in the token range is ever stored):
            // under every fingerprint version in use, unfenced.
            let as_pan = self.fingerprint_index_keys(number.as_str());
            let record = TokenRecord {
                number: number.clone(),
                card_ref: card_ref.clone(),
                status: TokenStatus::Active,
                controls: controls.clone(),
                usage: Usage::default(),
                created_at: now,
                updated_at: now,
            };
            let mut batch = Batch::new();
            batch
                .expect_absent(layout::token(&number))
                .expect_absent(layout::erased_token(&number))
                .expect_equals(layout::card(card_ref), encode(&card)?)
                .put(layout::token(&number), encode(&record)?)
                .put(layout::card_token(card_ref, &number), Vec::new());
            for (_, key) in as_pan {
                batch.expect_absent(key);
            }
            let view = self.view(record, card.masked.clone());
            let joined_expects = batch.join(extra(&view)?);
            if self.commit_once(batch, &audit(&number)).await? {
                return Ok(view);
            }
            // Unless what the caller joined went stale, or the card was
            // erased meanwhile, the drawn number was taken or the card
            // record rewritten (a rewrap): draw again against it as it is.
            self.joined_still_hold(&joined_expects).await?;
            card = self.card_record(card_ref).await?;
        }
        Err(VaultError::TokenSpaceExhausted)
    }

    /// A token's status, controls, usage and masked card (audited as a read).
    pub async fn token(&self, actor: &Actor, number: &TokenNumber) -> Result<TokenView, VaultError> {
        let audit = Audit::new(actor, Operation::TokenRead, Some(number.to_string()));
        let result = async {
            let (record, _) = self.token_record(number).await?;
            let card = self.card_record(&record.card_ref).await?;
            Ok(self.view(record, card.masked))
        }
        .await;
        match result {
            Ok(view) => {
                self.record(&audit, Outcome::Success, None).await?;
                Ok(view)
            }
            Err(e) => self.audited(audit, Err(e)).await,
        }
    }

    /// Calls `visit` with every token's number and usage, in number order:
    /// what the ledger check compares with the payments. The caller's
    /// check is the audited operation; this reads no card.
    pub async fn for_each_token_usage(
        &self,
        mut visit: impl FnMut(&TokenNumber, &Usage),
    ) -> Result<(), VaultError> {
        self.for_each_under(crate::store::keyspace::TOKEN.as_bytes(), |_, raw| {
            let record: TokenRecord = decode(raw, "token")?;
            visit(&record.number, &record.usage);
            Ok(())
        })
        .await
    }

    /// Every token issued for a card, in number order (audited as a read).
    pub async fn tokens_of_card(
        &self,
        actor: &Actor,
        card_ref: &CardRef,
    ) -> Result<Vec<TokenNumber>, VaultError> {
        let audit = Audit::new(actor, Operation::TokenList, Some(card_ref.to_string()));
        let result = self.scan_card_tokens(card_ref).await;
        match result {
            Ok(list) => {
                self.record(&audit, Outcome::Success, Some(format!("count={}", list.len())))
                    .await?;
                Ok(list)
            }
            Err(e) => self.audited(audit, Err(e)).await,
        }
    }

    pub(in crate::vault) async fn scan_card_tokens(
        &self,
        card_ref: &CardRef,
    ) -> Result<Vec<TokenNumber>, VaultError> {
        self.card_record(card_ref).await?;
        let prefix = layout::card_tokens_prefix(card_ref);
        let mut out = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = self.store.scan_prefix(&prefix, after.as_deref(), 512).await?;
            for (key, _) in &page {
                let number = std::str::from_utf8(&key[prefix.len()..])
                    .ok()
                    .and_then(|s| TokenNumber::parse(s).ok())
                    .ok_or(VaultError::Corrupt {
                        what: "card token index",
                    })?;
                out.push(number);
            }
            match page.last() {
                Some((key, _)) if page.len() == 512 => after = Some(key.clone()),
                _ => return Ok(out),
            }
        }
    }

    pub async fn suspend_token(
        &self,
        actor: &Actor,
        number: &TokenNumber,
        now: Timestamp,
    ) -> Result<TokenView, VaultError> {
        self.move_token(actor, number, TokenStatus::Suspended, now, &Alone)
            .await
    }

    pub async fn resume_token(
        &self,
        actor: &Actor,
        number: &TokenNumber,
        now: Timestamp,
    ) -> Result<TokenView, VaultError> {
        self.move_token(actor, number, TokenStatus::Active, now, &Alone)
            .await
    }

    /// Deleting is final: the token can never be used or resumed again.
    pub async fn delete_token(
        &self,
        actor: &Actor,
        number: &TokenNumber,
        now: Timestamp,
    ) -> Result<TokenView, VaultError> {
        self.move_token(actor, number, TokenStatus::Deleted, now, &Alone)
            .await
    }

    /// Moves a token to `to` (suspend, resume or delete, audited as that
    /// operation), with `joined`'s writes in the same batch.
    pub async fn move_token(
        &self,
        actor: &Actor,
        number: &TokenNumber,
        to: TokenStatus,
        now: Timestamp,
        joined: &impl Joined<TokenView>,
    ) -> Result<TokenView, VaultError> {
        let operation = match to {
            TokenStatus::Active => Operation::TokenResume,
            TokenStatus::Suspended => Operation::TokenSuspend,
            TokenStatus::Deleted => Operation::TokenDelete,
        };
        let audit = Audit::new(actor, operation, Some(number.to_string()));
        let result = async {
            let key = layout::token(number);
            let _token_writers_queue_here = self.stripes.lock(&key).await;
            let mut retry = Retry::new();
            loop {
                let (mut record, raw) = self.token_record(number).await?;
                record.status = record.status.transition(to)?;
                record.updated_at = now;
                let card = self.card_record(&record.card_ref).await?;
                let mut batch = Batch::new();
                batch
                    .expect_equals(key.clone(), raw)
                    .put(key.clone(), encode(&record)?);
                let view = self.view(record, card.masked);
                let joined_expects = batch.join(crate::vault::joined::writes_of(joined, &view)?);
                if self.try_commit(batch, &audit, &mut retry).await? {
                    return Ok(view);
                }
                self.joined_still_hold(&joined_expects).await?;
            }
        }
        .await;
        self.audited(Audit::new(actor, operation, Some(number.to_string())), result)
            .await
    }

    /// The decoded record and the exact stored bytes (for preconditions).
    pub(in crate::vault) async fn token_record(
        &self,
        number: &TokenNumber,
    ) -> Result<(TokenRecord, Vec<u8>), VaultError> {
        let raw = self
            .store
            .get(&layout::token(number))
            .await?
            .ok_or(VaultError::NotFound { what: "token" })?;
        Ok((decode(&raw, "token")?, raw))
    }

    fn view(&self, record: TokenRecord, masked_card: MaskedPan) -> TokenView {
        TokenView {
            number: record.number,
            card_ref: record.card_ref,
            masked_card,
            status: record.status,
            controls: record.controls.spec().clone(),
            usage: record.usage,
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}
