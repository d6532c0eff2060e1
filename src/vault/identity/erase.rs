//! Erasing identities: by hand (PIPL deletion), and by retention when one
//! was stored long ago and never held by a payment password.
//!
//! "Held": a payment password was set against it. Binding a card needs the
//! user's password to name the identity, so an identity no password holds
//! cannot be in any binding's future. A password set writes the identity's
//! held marker in its own batch, on condition that the identity is still
//! there; a retention erasure deletes the identity on condition that no
//! marker exists. So a password set racing the sweep either lands first
//! (and the erasure conflicts, keeping the identity) or finds it gone.

use crate::audit::Actor;
use crate::domain::operation::Operation;
use crate::domain::refs::IdentityRef;
use crate::domain::time::Timestamp;
use crate::store::{Batch, Store};
use crate::vault::audited::Audit;
use crate::vault::records::{decode, IdentityRecord, PasswordRecord};
use crate::vault::retry::Retry;
use crate::vault::{layout, Vault, VaultError};
use std::collections::HashSet;

/// Whether an erasure may go ahead while a password holds the identity.
#[derive(Clone, Copy, PartialEq, Eq)]
enum WhenHeld {
    /// By hand: the person asked, so it goes whatever holds it.
    Erase,
    /// Retention: a held identity is in use, so it stays.
    Keep,
}

impl<S: Store> Vault<S> {
    /// Erases an identity's record (PIPL deletion), audited. Whatever names
    /// it afterwards (a binding to start, a payment password to change
    /// against the weak-password rules) finds it gone.
    pub async fn erase_identity(&self, actor: &Actor, identity_ref: &IdentityRef) -> Result<(), VaultError> {
        let audit = Audit::new(actor, Operation::IdentityErase, Some(identity_ref.to_string()));
        let result = self
            .erase_identity_inner(&audit, identity_ref, WhenHeld::Erase)
            .await;
        self.audited(audit, result.map(|_| ())).await
    }

    /// `Ok(false)`: kept, because a password holds it (`WhenHeld::Keep` only).
    async fn erase_identity_inner(
        &self,
        audit: &Audit<'_>,
        identity_ref: &IdentityRef,
        when_held: WhenHeld,
    ) -> Result<bool, VaultError> {
        let key = layout::identity(identity_ref);
        let held = layout::identity_held(identity_ref);
        let _one_writer_per_identity = self.stripes.lock(&key).await;
        let mut retry = Retry::new();
        loop {
            let raw = self
                .store
                .get(&key)
                .await?
                .ok_or(VaultError::NotFound { what: "identity" })?;
            let mut batch = Batch::new();
            batch.expect_equals(key.clone(), raw).delete(key.clone());
            match when_held {
                WhenHeld::Erase => {
                    batch.delete(held.clone());
                }
                WhenHeld::Keep => {
                    if self.store.get(&held).await?.is_some() {
                        return Ok(false);
                    }
                    batch.expect_absent(held.clone());
                }
            }
            if self.try_commit(batch, audit, &mut retry).await? {
                return Ok(true);
            }
        }
    }

    /// Retention: erases (as `actor`) every identity stored before
    /// `cutoff` that no payment password holds, each audited like one by
    /// hand. Returns how many.
    pub async fn erase_identities_unheld_since(
        &self,
        actor: &Actor,
        cutoff: Timestamp,
    ) -> Result<usize, VaultError> {
        // Passwords set before held markers existed name their identity
        // only in the password record.
        let mut named = HashSet::new();
        self.for_each_under(layout::PASSWORD_PREFIX, |_, value| {
            let record: PasswordRecord = decode(value, "password")?;
            named.insert(record.identity_ref);
            Ok(())
        })
        .await?;
        let mut candidates = Vec::new();
        self.for_each_under(layout::IDENTITY_PREFIX, |_, value| {
            let record: IdentityRecord = decode(value, "identity")?;
            if record.created_at < cutoff && !named.contains(&record.identity_ref) {
                candidates.push(record.identity_ref);
            }
            Ok(())
        })
        .await?;
        let mut erased = 0;
        for identity_ref in candidates {
            let audit = Audit::new(actor, Operation::IdentityErase, Some(identity_ref.to_string()))
                .with_detail("retention");
            match self
                .erase_identity_inner(&audit, &identity_ref, WhenHeld::Keep)
                .await
            {
                Ok(true) => erased += 1,
                // Held, or erased meanwhile: kept, or gone already.
                Ok(false) | Err(VaultError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(erased)
    }
}

#[cfg(test)]
mod tests {
    use crate::audit::Actor;
    use crate::domain::refs::UserId;
    use crate::domain::time::Timestamp;
    use crate::vault::VaultError;

    const ID_NUMBER: &str = "11010519491231002x";

    #[tokio::test]
    async fn retention_erases_only_identities_no_password_holds() {
        let (_dir, vault) = crate::vault::test_vault::fresh().await;
        let me = Actor::local("test");
        let mut refs = Vec::new();
        for _ in 0..3 {
            let stored = vault
                .store_identity(&me, "张三", ID_NUMBER, "13800138000")
                .await
                .unwrap();
            refs.push(stored.identity_ref);
        }
        let user = UserId::parse("held-user").unwrap();
        vault.set_password(&me, &user, &refs[0], "580317").await.unwrap();

        // Stored after the cut-off: kept whatever holds it.
        let past = Timestamp(Timestamp::now().seconds() - 60);
        assert_eq!(vault.erase_identities_unheld_since(&me, past).await.unwrap(), 0);

        let later = Timestamp(Timestamp::now().seconds() + 60);
        assert_eq!(vault.erase_identities_unheld_since(&me, later).await.unwrap(), 2);
        vault.identity(&me, &refs[0]).await.unwrap();
        for gone in &refs[1..] {
            assert!(matches!(
                vault.identity(&me, gone).await,
                Err(VaultError::NotFound { what: "identity" })
            ));
        }
        // A password set against an identity retention took finds it gone.
        let late = UserId::parse("late-user").unwrap();
        assert!(matches!(
            vault.set_password(&me, &late, &refs[1], "580317").await,
            Err(VaultError::NotFound { what: "identity" })
        ));
        // The held one goes only when its person asks.
        vault.erase_identity(&me, &refs[0]).await.unwrap();
        assert!(vault.identity(&me, &refs[0]).await.is_err());
    }

    /// The held marker alone keeps an identity (a password set that landed
    /// after the sweep listed the passwords).
    #[tokio::test]
    async fn a_held_marker_keeps_an_identity_the_sweep_listed() {
        let (_dir, vault) = crate::vault::test_vault::fresh().await;
        let me = Actor::local("test");
        let identity = vault
            .store_identity(&me, "张三", ID_NUMBER, "13800138000")
            .await
            .unwrap()
            .identity_ref;
        let mut batch = crate::store::Batch::new();
        batch.put(crate::vault::layout::identity_held(&identity), vec![0; 8]);
        use crate::store::Store;
        vault.store.commit(batch).await.unwrap();
        let later = Timestamp(Timestamp::now().seconds() + 60);
        assert_eq!(vault.erase_identities_unheld_since(&me, later).await.unwrap(), 0);
        vault.identity(&me, &identity).await.unwrap();
    }
}
