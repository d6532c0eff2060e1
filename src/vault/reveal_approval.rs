//! Dual control of break-glass reveals: a reveal needs a request by the
//! break-glass identity, with its reason, and an approval by a different
//! identity granted `reveal.approve`, within `reveal_approval_window` of the
//! request; the reveal then follows within as long of the approval. The
//! request is a store record, so any node sees it, and the reveal deletes
//! it in the same write as its audit record: one approval opens one PAN
//! once. Every request, approval and refusal is audited.

use super::audited::{now_ms, Audit};
use super::records::{decode, encode};
use super::retry::Retry;
use super::reveal::reason_is_acceptable;
use super::{layout, Vault, VaultError};
use crate::audit::Outcome;
use crate::domain::operation::Operation;
use crate::domain::refs::{CardRef, RevealRequestId};
use crate::domain::time::Timestamp;
use crate::policy::{ApprovalGrant, RevealGrant};
use crate::store::{keyspace, Batch, Store};
use serde::{Deserialize, Serialize};

/// Why a reveal under dual control was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RevealApprovalError {
    #[error("dual control: a reveal needs a request approved by another identity (request_id)")]
    Required,
    #[error("the approver must be another identity than the one that asked")]
    SelfApproval,
    #[error("the reveal request has not been approved yet")]
    NotApproved,
    #[error("another identity approved this reveal request already")]
    AlreadyApproved,
    #[error("the reveal request has expired")]
    Expired,
    #[error("the reveal request is another identity's")]
    OtherRequester,
    #[error("the reveal request is for another card")]
    OtherCard,
}

impl RevealApprovalError {
    /// The rule a problem document and the audit record name.
    pub fn rule(self) -> &'static str {
        match self {
            RevealApprovalError::Required => "required",
            RevealApprovalError::SelfApproval => "self_approval",
            RevealApprovalError::NotApproved => "not_approved",
            RevealApprovalError::AlreadyApproved => "already_approved",
            RevealApprovalError::Expired => "expired",
            RevealApprovalError::OtherRequester => "other_requester",
            RevealApprovalError::OtherCard => "other_card",
        }
    }
}

/// A requested reveal as stored.
#[derive(Clone, Serialize, Deserialize)]
pub(super) struct RevealRequestRecord {
    pub card_ref: CardRef,
    pub requested_by: String,
    pub reason: String,
    pub requested_at_ms: i64,
    pub approved_by: Option<String>,
    pub approved_at_ms: Option<i64>,
}

/// What callers see of a reveal request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevealRequestView {
    pub id: RevealRequestId,
    pub card_ref: CardRef,
    pub requested_by: String,
    pub approved_by: Option<String>,
    /// Until when it may be approved, or (approved) used.
    pub expires_at: Timestamp,
}

pub(super) fn request_key(id: &RevealRequestId) -> Vec<u8> {
    keyspace::REVEAL_REQUEST.key(id)
}

impl RevealRequestRecord {
    /// When the request stops counting: `window` after the request while it
    /// waits, `window` after the approval once approved.
    fn expires_at_ms(&self, window_ms: i64) -> i64 {
        self.approved_at_ms
            .unwrap_or(self.requested_at_ms)
            .saturating_add(window_ms)
    }

    fn view(&self, id: &RevealRequestId, window_ms: i64) -> RevealRequestView {
        RevealRequestView {
            id: id.clone(),
            card_ref: self.card_ref.clone(),
            requested_by: self.requested_by.clone(),
            approved_by: self.approved_by.clone(),
            expires_at: Timestamp(self.expires_at_ms(window_ms) / 1000),
        }
    }
}

impl<S: Store> Vault<S> {
    /// How long a request waits for its approval, and an approval for its
    /// reveal.
    fn approval_window_ms(&self) -> i64 {
        i64::try_from(self.config.reveal_approval_window.as_millis()).unwrap_or(i64::MAX)
    }

    /// The first half of dual control: the break-glass identity asks to
    /// reveal `card_ref`, for `reason` (the reveal's own rules: no card
    /// number in it). Audited with the reason.
    pub async fn request_reveal(
        &self,
        grant: &RevealGrant,
        card_ref: &CardRef,
        reason: &str,
    ) -> Result<RevealRequestView, VaultError> {
        let actor = grant.actor();
        let reason = reason.trim();
        let acceptable = reason_is_acceptable(reason);
        let id = RevealRequestId::generate()?;
        let audit = Audit::new(actor, Operation::CardRevealRequest, Some(card_ref.to_string())).with_detail(
            if acceptable {
                format!("request={id} reason: {reason}")
            } else {
                "reason refused".to_owned()
            },
        );
        if !acceptable {
            return self.audited(audit, Err(VaultError::RevealReason)).await;
        }
        let record = RevealRequestRecord {
            card_ref: card_ref.clone(),
            requested_by: actor.identity.clone(),
            reason: reason.to_owned(),
            requested_at_ms: now_ms(),
            approved_by: None,
            approved_at_ms: None,
        };
        let mut retry = Retry::new();
        loop {
            // The card must still be there, as read, when the request lands.
            let Some(card) = self.store.get(&layout::card(card_ref)).await? else {
                return self
                    .audited(audit, Err(VaultError::NotFound { what: "card" }))
                    .await;
            };
            let mut batch = Batch::new();
            batch
                .expect_equals(layout::card(card_ref), card)
                .expect_absent(request_key(&id))
                .put(request_key(&id), encode(&record)?);
            if self.try_commit(batch, &audit, &mut retry).await? {
                return Ok(record.view(&id, self.approval_window_ms()));
            }
        }
    }

    /// The second half: a different identity, granted `reveal.approve`,
    /// approves request `id` within the window. Approving again as the same
    /// approver answers the same approval.
    pub async fn approve_reveal(
        &self,
        grant: &ApprovalGrant,
        id: &RevealRequestId,
    ) -> Result<RevealRequestView, VaultError> {
        let actor = grant.actor();
        let window_ms = self.approval_window_ms();
        let mut audit = Audit::new(actor, Operation::RevealApprove, Some(id.to_string()));
        let mut retry = Retry::new();
        loop {
            let Some(raw) = self.store.get(&request_key(id)).await? else {
                return self
                    .audited(
                        audit,
                        Err(VaultError::NotFound {
                            what: "reveal request",
                        }),
                    )
                    .await;
            };
            let mut record: RevealRequestRecord = decode(&raw, "reveal request")?;
            audit.detail = Some(format!(
                "card={} requested_by={} reason: {}",
                record.card_ref, record.requested_by, record.reason
            ));
            let refusal = if record.requested_by == actor.identity {
                Some(RevealApprovalError::SelfApproval)
            } else if let Some(approver) = &record.approved_by {
                if *approver == actor.identity {
                    audit.detail = audit.detail.map(|d| format!("{d} (approved already)"));
                    self.record(&audit, Outcome::Success, None).await?;
                    return Ok(record.view(id, window_ms));
                }
                Some(RevealApprovalError::AlreadyApproved)
            } else if now_ms() > record.expires_at_ms(window_ms) {
                Some(RevealApprovalError::Expired)
            } else {
                None
            };
            if let Some(refusal) = refusal {
                return self
                    .audited(audit, Err(VaultError::RevealApproval(refusal)))
                    .await;
            }
            record.approved_by = Some(actor.identity.clone());
            record.approved_at_ms = Some(now_ms());
            let mut batch = Batch::new();
            batch
                .expect_equals(request_key(id), raw)
                .put(request_key(id), encode(&record)?);
            if self.try_commit(batch, &audit, &mut retry).await? {
                return Ok(record.view(id, window_ms));
            }
        }
    }

    /// The approved request `id` for `requester` to reveal `card_ref` now:
    /// the record (its reason goes in the reveal's audit record) and its
    /// bytes as read, which the reveal's write deletes on condition.
    pub(super) async fn approved_request(
        &self,
        id: &RevealRequestId,
        requester: &str,
        card_ref: &CardRef,
    ) -> Result<(RevealRequestRecord, Vec<u8>), VaultError> {
        let raw = self
            .store
            .get(&request_key(id))
            .await?
            .ok_or(VaultError::NotFound {
                what: "reveal request",
            })?;
        let record: RevealRequestRecord = decode(&raw, "reveal request")?;
        let refusal = if record.requested_by != requester {
            Some(RevealApprovalError::OtherRequester)
        } else if record.card_ref != *card_ref {
            Some(RevealApprovalError::OtherCard)
        } else if record.approved_by.is_none() {
            Some(RevealApprovalError::NotApproved)
        } else if now_ms() > record.expires_at_ms(self.approval_window_ms()) {
            Some(RevealApprovalError::Expired)
        } else {
            None
        };
        match refusal {
            Some(refusal) => Err(VaultError::RevealApproval(refusal)),
            None => Ok((record, raw)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Actor;
    use crate::policy::PolicySet;
    use crate::tls::Identity;
    use crate::vault::test_vault::fresh;
    use crate::vault::RevealBasis;

    fn policies() -> PolicySet {
        PolicySet::load_dir(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/policies"
        )))
        .unwrap()
    }

    fn actor(role: &str) -> (Identity, Actor) {
        let uri = format!("spiffe://tokenvault/{role}");
        let actor = Actor {
            identity: uri.clone(),
            origin: "127.0.0.1".into(),
            request_id: String::new(),
        };
        (Identity::parse(&uri).unwrap(), actor)
    }

    fn refusal(e: VaultError) -> Option<RevealApprovalError> {
        match e {
            VaultError::RevealApproval(r) => Some(r),
            _ => None,
        }
    }

    /// A reason alone reveals nothing; the requester cannot approve; once a
    /// different identity approves, the requester (and no one else, for
    /// this card only) reveals once, and the approval is used up.
    #[tokio::test]
    async fn a_reveal_needs_another_identitys_approval_and_uses_it_once() {
        let (_dir, vault) = fresh().await;
        let policies = policies();
        let (glass_id, glass) = actor("break-glass");
        let (approver_id, approver) = actor("reveal-approver");
        let reveal = policies.grant_reveal(&glass_id, &glass).unwrap();
        let approve = policies.grant_approval(&approver_id, &approver).unwrap();
        assert!(
            policies.grant_approval(&glass_id, &glass).is_none(),
            "the requester cannot approve"
        );
        assert!(
            policies.grant_reveal(&approver_id, &approver).is_none(),
            "the approver cannot reveal"
        );
        let me = Actor::local("test");
        let card = vault.store_card(&me, "4242424242424242").await.unwrap().card_ref;
        let other = vault.store_card(&me, "5555555555554444").await.unwrap().card_ref;

        let alone = vault
            .reveal_pan(&reveal, &card, RevealBasis::Reason("dispute CB-7 review"))
            .await;
        assert_eq!(alone.err().and_then(refusal), Some(RevealApprovalError::Required));

        let request = vault
            .request_reveal(&reveal, &card, "dispute CB-7 review")
            .await
            .unwrap();
        assert_eq!(
            (request.requested_by.as_str(), request.approved_by.as_deref()),
            (glass.identity.as_str(), None)
        );
        let early = vault
            .reveal_pan(&reveal, &card, RevealBasis::Approved(&request.id))
            .await;
        assert_eq!(
            early.err().and_then(refusal),
            Some(RevealApprovalError::NotApproved)
        );

        let approved = vault.approve_reveal(&approve, &request.id).await.unwrap();
        assert_eq!(approved.approved_by.as_deref(), Some(approver.identity.as_str()));
        assert_eq!(
            vault.approve_reveal(&approve, &request.id).await.unwrap(),
            approved,
            "the same approver again"
        );

        let wrong_card = vault
            .reveal_pan(&reveal, &other, RevealBasis::Approved(&request.id))
            .await;
        assert_eq!(
            wrong_card.err().and_then(refusal),
            Some(RevealApprovalError::OtherCard)
        );
        let pan = vault
            .reveal_pan(&reveal, &card, RevealBasis::Approved(&request.id))
            .await
            .unwrap();
        assert_eq!(pan.digits(), "4242424242424242");
        let again = vault
            .reveal_pan(&reveal, &card, RevealBasis::Approved(&request.id))
            .await;
        assert!(
            matches!(
                again,
                Err(VaultError::NotFound {
                    what: "reveal request"
                })
            ),
            "used once"
        );

        let records = vault.audit_export(&me).await.unwrap();
        let mine: Vec<(&str, &str, &str)> = records
            .iter()
            .filter(|r| r.operation.starts_with("card.reveal") || r.operation == "reveal.approve")
            .map(|r| (r.operation.as_str(), r.identity.as_str(), r.outcome.as_str()))
            .collect();
        assert_eq!(mine.len(), 8, "{mine:?}");
        let success = records
            .iter()
            .find(|r| r.operation == "card.reveal" && r.outcome == "success")
            .unwrap();
        let detail = success.detail.as_deref().unwrap();
        assert!(
            detail.contains(&format!("approved_by={}", approver.identity)) && detail.contains("dispute CB-7"),
            "{detail}"
        );
    }

    /// A break-glass identity approving its own request is refused; a
    /// request past its window cannot be approved.
    #[tokio::test]
    async fn self_approval_and_late_approval_are_refused() {
        let (_dir, vault) = fresh().await;
        let approvers = PolicySet::parse_for_test(
            r#"identity = "spiffe://tokenvault/ops"
description = "an approver that is also asked to approve its own"
allow = ["reveal.approve"]"#,
        );
        let (ops_id, ops) = actor("ops");
        let approve_as_ops = approvers.grant_approval(&ops_id, &ops).unwrap();
        let glass_policies = policies_with_glass_as("ops");
        let reveal_as_ops = glass_policies.grant_reveal(&ops_id, &ops).unwrap();
        let me = Actor::local("test");
        let card = vault.store_card(&me, "4242424242424242").await.unwrap().card_ref;
        let request = vault
            .request_reveal(&reveal_as_ops, &card, "dispute CB-8 review")
            .await
            .unwrap();
        let own = vault.approve_reveal(&approve_as_ops, &request.id).await;
        assert_eq!(
            own.err().and_then(refusal),
            Some(RevealApprovalError::SelfApproval)
        );

        // Aged past the window: rewritten as if requested 901 s ago.
        let key = request_key(&request.id);
        let mut record: RevealRequestRecord =
            decode(&vault.store.get(&key).await.unwrap().unwrap(), "r").unwrap();
        record.requested_at_ms -= 901_000;
        let mut batch = Batch::new();
        batch.put(key, encode(&record).unwrap());
        vault.store.commit(batch).await.unwrap();
        let (approver_id, approver) = actor("reveal-approver");
        let approve = policies().grant_approval(&approver_id, &approver).unwrap();
        let late = vault.approve_reveal(&approve, &request.id).await;
        assert_eq!(late.err().and_then(refusal), Some(RevealApprovalError::Expired));
    }

    /// With dual control turned off (`limits.reveal_dual_control = false`)
    /// a reason alone reveals, and an approved request still works.
    #[tokio::test]
    async fn without_dual_control_a_reason_reveals() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::SledStore::open(dir.path()).unwrap();
        let mut config = crate::vault::VaultConfig::embedded().unwrap();
        config.reveal_dual_control = false;
        let vault =
            crate::vault::Vault::open(store, crate::vault::keys::kek::Kek::generate().unwrap(), config)
                .await
                .unwrap();
        let (glass_id, glass) = actor("break-glass");
        let reveal = policies().grant_reveal(&glass_id, &glass).unwrap();
        let card = vault
            .store_card(&Actor::local("test"), "4242424242424242")
            .await
            .unwrap()
            .card_ref;
        let pan = vault
            .reveal_pan(&reveal, &card, RevealBasis::Reason("dispute CB-9 review"))
            .await
            .unwrap();
        assert_eq!(pan.digits(), "4242424242424242");
        let refused = vault
            .reveal_pan(&reveal, &card, RevealBasis::Reason("short"))
            .await;
        assert!(matches!(refused, Err(VaultError::RevealReason)));
    }

    /// A policy set where `identity` holds the break-glass grant.
    fn policies_with_glass_as(name: &str) -> PolicySet {
        PolicySet::parse_for_test(&format!(
            r#"identity = "spiffe://tokenvault/{name}"
description = "x"
break_glass = true
allow = ["card.reveal", "card.reveal_request"]"#
        ))
    }
}
