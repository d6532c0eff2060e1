//! Reserving against a token's domain controls, then committing or releasing.
//! Each step is one store transaction whose preconditions are the exact bytes
//! read, so no interleaving of concurrent callers (threads, tasks or vault
//! nodes sharing a store) can take more than the controls allow.

use super::audited::Audit;
use super::joined::{Opening, Recorded};
use super::records::{decode, encode, ReservationRecord, ReservationState, TokenRecord};
use super::retry::Retry;
use super::token::{controls, TokenNumber, UseRequest};
use super::{layout, Alone, Joined, JoinedRecord, Vault, VaultError};
use crate::audit::{Actor, Outcome};
use crate::domain::operation::Operation;
use crate::domain::refs::ReservationId;
use crate::domain::time::Timestamp;
use crate::store::{Batch, Store};

/// A reservation as callers see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    pub id: ReservationId,
    pub token: TokenNumber,
    pub amount: u64,
    pub state: ReservationState,
    pub created_at: Timestamp,
    pub settled_at: Option<Timestamp>,
}

impl From<ReservationRecord> for Reservation {
    fn from(r: ReservationRecord) -> Self {
        Reservation {
            id: r.id,
            token: r.token,
            amount: r.amount,
            state: r.state,
            created_at: r.created_at,
            settled_at: r.settled_at,
        }
    }
}

impl<S: Store> Vault<S> {
    /// Checks status, validity window, channel, merchant, currency,
    /// per-transaction amount, remaining uses and remaining amount, and holds
    /// one use and the amount, atomically. A refusal names the control.
    pub async fn reserve(
        &self,
        actor: &Actor,
        token: &TokenNumber,
        request: &UseRequest,
        now: Timestamp,
    ) -> Result<Reservation, VaultError> {
        let nothing_opened: Option<super::gateway::PayOpening> = None;
        let (reservation, _) = self
            .reserve_joined(actor, token, request, now, &Alone, nothing_opened)
            .await?;
        Ok(reservation)
    }

    /// `reserve`, with `joined`'s writes and records (the payment the
    /// reservation is for) and the audit record of `opening` (the gateway
    /// sending the debit) in the same durable write. The opening comes back
    /// `Recorded`, which is what the gateway needs to send it.
    pub async fn reserve_joined<O: Opening>(
        &self,
        actor: &Actor,
        token: &TokenNumber,
        request: &UseRequest,
        now: Timestamp,
        joined: &(impl Joined<Reservation> + ?Sized),
        opening: Option<O>,
    ) -> Result<(Reservation, Option<Recorded<O>>), VaultError> {
        let result = self
            .reserve_inner(
                actor,
                token,
                request,
                now,
                joined,
                opening.as_ref().map(|o| o as &dyn Opening),
            )
            .await;
        let audit = Audit::new(actor, Operation::TokenReserve, Some(token.to_string()));
        let reservation = self.audited(audit, result).await?;
        Ok((reservation, opening.map(Recorded::new)))
    }

    async fn reserve_inner(
        &self,
        actor: &Actor,
        token: &TokenNumber,
        request: &UseRequest,
        now: Timestamp,
        joined: &(impl Joined<Reservation> + ?Sized),
        opening: Option<&dyn Opening>,
    ) -> Result<Reservation, VaultError> {
        let token_key = layout::token(token);
        let _token_writers_queue_here = self.stripes.lock(&token_key).await;
        let mut retry = Retry::new();
        loop {
            let (mut record, raw) = self.token_record(token).await?;
            controls::reserve(record.status, &record.controls, &mut record.usage, request, now)?;
            record.updated_at = now;
            let reservation = ReservationRecord {
                id: ReservationId::generate()?,
                token: token.clone(),
                amount: request.amount,
                currency: request.currency,
                channel: request.channel.clone(),
                merchant: request.merchant.clone(),
                state: ReservationState::Held,
                created_at: now,
                settled_at: None,
            };
            let res_key = layout::reservation(&reservation.id);
            let mut batch = Batch::new();
            batch
                .expect_equals(token_key.clone(), raw)
                .expect_absent(res_key.clone())
                .put(token_key.clone(), encode(&record)?)
                .put(res_key, encode(&reservation)?);
            let audit = Audit::new(actor, Operation::TokenReserve, Some(token.to_string())).with_detail(
                format!("reservation={} amount={}", reservation.id, reservation.amount),
            );
            let view = Reservation::from(reservation);
            let joined_expects = batch.join(crate::vault::joined::writes_of(joined, &view)?);
            let mut entries = vec![audit.entry(Outcome::Success, None)];
            entries.extend(joined.records(&view).into_iter().map(JoinedRecord::entry));
            entries.extend(opening.map(|o| o.record().entry()));
            if self.apply_with_records(batch, actor, entries).await? {
                return Ok(view);
            }
            self.joined_still_hold(&joined_expects).await?;
            retry.after_conflict().await?;
        }
    }

    /// The use happened: the held use and amount become committed. Committing
    /// twice is harmless; committing a released reservation is refused.
    pub async fn commit_reservation(
        &self,
        actor: &Actor,
        id: &ReservationId,
        now: Timestamp,
    ) -> Result<Reservation, VaultError> {
        self.commit_reservation_joined(actor, id, now, &Alone).await
    }

    /// `commit_reservation`, with `joined`'s writes and records (the
    /// payment's new status, the caller's answer) in the same write, also
    /// when the reservation was committed already.
    pub async fn commit_reservation_joined(
        &self,
        actor: &Actor,
        id: &ReservationId,
        now: Timestamp,
        joined: &(impl Joined<Reservation> + ?Sized),
    ) -> Result<Reservation, VaultError> {
        let to = ReservationState::Committed;
        self.settle_audited(actor, Operation::ReservationCommit, id, to, now, joined)
            .await
    }

    /// The use did not happen: the held use and amount are given back.
    /// Releasing twice is harmless; releasing a committed one is refused.
    pub async fn release_reservation(
        &self,
        actor: &Actor,
        id: &ReservationId,
        now: Timestamp,
    ) -> Result<Reservation, VaultError> {
        self.release_reservation_joined(actor, id, now, &Alone).await
    }

    /// `release_reservation`, with `joined`'s writes and records in the
    /// same write, also when the reservation was released already.
    pub async fn release_reservation_joined(
        &self,
        actor: &Actor,
        id: &ReservationId,
        now: Timestamp,
        joined: &(impl Joined<Reservation> + ?Sized),
    ) -> Result<Reservation, VaultError> {
        let to = ReservationState::Released;
        self.settle_audited(actor, Operation::ReservationRelease, id, to, now, joined)
            .await
    }

    async fn settle_audited(
        &self,
        actor: &Actor,
        operation: Operation,
        id: &ReservationId,
        to: ReservationState,
        now: Timestamp,
        joined: &(impl Joined<Reservation> + ?Sized),
    ) -> Result<Reservation, VaultError> {
        let result = self.settle(actor, operation, id, to, now, joined).await;
        self.audited(Audit::new(actor, operation, Some(id.to_string())), result)
            .await
    }

    /// A reservation's state (audited as a read).
    pub async fn reservation(&self, actor: &Actor, id: &ReservationId) -> Result<Reservation, VaultError> {
        let audit = Audit::new(actor, Operation::ReservationRead, Some(id.to_string()));
        match self.reservation_record(id).await {
            Ok((record, _)) => {
                self.record(&audit, Outcome::Success, None).await?;
                Ok(record.into())
            }
            Err(e) => self.audited(audit, Err(e)).await,
        }
    }

    async fn reservation_record(
        &self,
        id: &ReservationId,
    ) -> Result<(ReservationRecord, Vec<u8>), VaultError> {
        let raw = self
            .store
            .get(&layout::reservation(id))
            .await?
            .ok_or(VaultError::NotFound { what: "reservation" })?;
        Ok((decode(&raw, "reservation")?, raw))
    }

    async fn settle(
        &self,
        actor: &Actor,
        operation: Operation,
        id: &ReservationId,
        to: ReservationState,
        now: Timestamp,
        joined: &(impl Joined<Reservation> + ?Sized),
    ) -> Result<Reservation, VaultError> {
        let token = self.reservation_record(id).await?.0.token;
        let token_key = layout::token(&token);
        let _token_writers_queue_here = self.stripes.lock(&token_key).await;
        let mut retry = Retry::new();
        loop {
            let (mut reservation, res_raw) = self.reservation_record(id).await?;
            let (mut batch, audit, view) = match reservation.state {
                ReservationState::Held => {
                    let (mut record, token_raw) = self.token_record(&token).await?;
                    settle_usage(&mut record, reservation.amount, to)?;
                    record.updated_at = now;
                    reservation.state = to;
                    reservation.settled_at = Some(now);
                    let res_key = layout::reservation(id);
                    let mut batch = Batch::new();
                    batch
                        .expect_equals(token_key.clone(), token_raw)
                        .expect_equals(res_key.clone(), res_raw)
                        .put(token_key.clone(), encode(&record)?)
                        .put(res_key, encode(&reservation)?);
                    let audit = Audit::new(actor, operation, Some(id.to_string()))
                        .with_detail(format!("token={token} amount={}", reservation.amount));
                    (batch, audit, Reservation::from(reservation))
                }
                state if state == to => {
                    // Settling twice is harmless, and still audited; what
                    // is joined is written all the same.
                    let mut batch = Batch::new();
                    batch.expect_equals(layout::reservation(id), res_raw);
                    let audit =
                        Audit::new(actor, operation, Some(id.to_string())).with_detail("already_settled");
                    (batch, audit, Reservation::from(reservation))
                }
                state => return Err(VaultError::ReservationSettled(state)),
            };
            let joined_expects = batch.join(crate::vault::joined::writes_of(joined, &view)?);
            let mut entries = vec![audit.entry(Outcome::Success, None)];
            entries.extend(joined.records(&view).into_iter().map(JoinedRecord::entry));
            if self.apply_with_records(batch, actor, entries).await? {
                return Ok(view);
            }
            self.joined_still_hold(&joined_expects).await?;
            retry.after_conflict().await?;
        }
    }
}

/// Moves one held use and its amount to committed, or gives them back.
fn settle_usage(record: &mut TokenRecord, amount: u64, to: ReservationState) -> Result<(), VaultError> {
    let corrupt = || VaultError::Corrupt { what: "token usage" };
    let u = &mut record.usage;
    u.uses_reserved = u.uses_reserved.checked_sub(1).ok_or_else(corrupt)?;
    u.amount_reserved = u.amount_reserved.checked_sub(amount).ok_or_else(corrupt)?;
    if to == ReservationState::Committed {
        u.uses_committed = u.uses_committed.checked_add(1).ok_or_else(corrupt)?;
        u.amount_committed =
            crate::domain::amount::checked_sum(u.amount_committed, amount).ok_or_else(corrupt)?;
    }
    Ok(())
}
