//! Payment passwords (支付密码): set, change and verify per platform user.
//! Weak ones are refused by the 170号 rules, checked against the user's
//! stored identity inside the vault (the caller never sends birth date, ID
//! number or phone). Stored as Argon2id with a pepper; five wrong attempts
//! lock the password for 30 minutes; every attempt is audited.

mod hash;
mod weak;

/// The pepper's versions in memory. New hashes use the newest; a hash
/// names its version in its PHC string (`keyid`), so each is checked with
/// the pepper it was made with, and moved to the newest at its next
/// successful check.
pub(crate) type Peppers = crate::versions::Versions<secrecy::SecretBox<[u8; 32]>>;

use super::audited::Audit;
use super::records::{decode, encode, PasswordRecord};
use super::{layout, Alone, Joined, Vault, VaultError};
use crate::audit::{Actor, Outcome};
use crate::domain::operation::Operation;
use crate::domain::refs::{IdentityRef, UserId};
use crate::domain::time::Timestamp;
use crate::store::{Batch, Store};
use secrecy::ExposeSecret;
use zeroize::Zeroizing;

/// Wrong attempts in a row before the lock-out.
pub const MAX_FAILURES: u32 = 5;
/// How long a lock-out lasts.
pub const LOCK_SECONDS: i64 = 30 * 60;

/// What the orchestration layer may know about a user's password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordStatus {
    pub identity_ref: IdentityRef,
    pub locked_until: Option<Timestamp>,
}

/// A password that matched: the record as it now stands, and whether the
/// check wrote (and audited) a change to it.
struct Checked {
    record: PasswordRecord,
    raw: Vec<u8>,
    audited: bool,
}

/// A check that failed; `audited` when its record went in with the new
/// failure count (a second record would count the attempt twice).
struct Refused {
    error: VaultError,
    audited: bool,
}

impl From<VaultError> for Refused {
    fn from(error: VaultError) -> Self {
        Refused {
            error,
            audited: false,
        }
    }
}

impl<S: Store> Vault<S> {
    async fn password_record(&self, user: &UserId) -> Result<Option<(PasswordRecord, Vec<u8>)>, VaultError> {
        match self.store.get(&layout::password(user)).await? {
            Some(raw) => Ok(Some((decode(&raw, "password")?, raw))),
            None => Ok(None),
        }
    }

    /// Whether `user` has a payment password (no audit record: no secret
    /// is touched).
    pub async fn password_status(&self, user: &UserId) -> Result<Option<PasswordStatus>, VaultError> {
        let now = Timestamp::now();
        Ok(self.password_record(user).await?.map(|(r, _)| PasswordStatus {
            identity_ref: r.identity_ref,
            locked_until: r.locked_until.filter(|t| *t > now),
        }))
    }

    async fn weakness(&self, identity_ref: &IdentityRef, password: &str) -> Result<(), VaultError> {
        let identity = self.open_identity(identity_ref).await?;
        let digits_only: Zeroizing<String> = Zeroizing::new(
            identity
                .id_number
                .expose()
                .chars()
                .filter(char::is_ascii_digit)
                .collect(),
        );
        let personal = weak::PersonalData {
            id_number: &digits_only,
            birth_date: identity.id_number.birth_date(),
            phone: identity.phone.expose(),
        };
        weak::check(password, &personal)?;
        Ok(())
    }

    /// Adds every pepper version the store holds and this node does not
    /// (a rotation here or on another node). Returns the newest.
    pub(in crate::vault) async fn load_new_peppers(&self) -> Result<u32, VaultError> {
        crate::vault::keys::versioned::PEPPER
            .load_into(&*self.store, &self.kek(), &self.peppers, |_, raw| Ok(raw))
            .await
    }

    /// A hash under the newest pepper (another node's rotation included).
    async fn hash(&self, password: &str) -> Result<String, VaultError> {
        self.load_new_peppers().await?;
        let (version, pepper) = self.peppers.newest();
        let pepper = Zeroizing::new(pepper.expose_secret().to_vec());
        let password = Zeroizing::new(password.to_owned());
        let salt = crate::domain::random::array::<16>()?;
        tokio::task::spawn_blocking(move || hash::hash(&pepper, version, &password, &salt))
            .await
            .map_err(|_| VaultError::Corrupt {
                what: "password hashing task",
            })?
            .map_err(|_| VaultError::Corrupt {
                what: "password hashing",
            })
    }

    /// Whether `password` matches `phc`, checked with the pepper version
    /// the hash names.
    async fn matches(&self, password: &str, phc: &str) -> Result<bool, VaultError> {
        let version = hash::pepper_version(phc).map_err(|_| VaultError::Corrupt { what: "password" })?;
        if !self.peppers.holds(version) {
            self.load_new_peppers().await?;
        }
        let pepper = self.peppers.get(version).ok_or(VaultError::Corrupt {
            what: "password pepper version",
        })?;
        let pepper = Zeroizing::new(pepper.expose_secret().to_vec());
        let password = Zeroizing::new(password.to_owned());
        let phc = phc.to_owned();
        tokio::task::spawn_blocking(move || hash::verify(&pepper, &password, &phc))
            .await
            .map_err(|_| VaultError::Corrupt {
                what: "password hashing task",
            })?
            .map_err(|_| VaultError::Corrupt { what: "password" })
    }

    /// Sets the first payment password of `user`, whose identity is
    /// `identity_ref`. Refused when weak (the rule is named) or already set.
    pub async fn set_password(
        &self,
        actor: &Actor,
        user: &UserId,
        identity_ref: &IdentityRef,
        password: &str,
    ) -> Result<(), VaultError> {
        self.set_password_joined(actor, user, identity_ref, password, &Alone)
            .await
    }

    /// `set_password`, with `joined`'s writes in the same batch.
    pub async fn set_password_joined(
        &self,
        actor: &Actor,
        user: &UserId,
        identity_ref: &IdentityRef,
        password: &str,
        joined: &(impl Joined<()> + ?Sized),
    ) -> Result<(), VaultError> {
        let audit = Audit::new(actor, Operation::PasswordSet, Some(user.to_string()));
        let result = async {
            let key = layout::password(user);
            let _one_writer_per_user = self.stripes.lock(&key).await;
            if self.password_record(user).await?.is_some() {
                return Err(VaultError::PasswordAlreadySet);
            }
            self.weakness(identity_ref, password).await?;
            let now = Timestamp::now();
            let record = PasswordRecord {
                user: user.clone(),
                identity_ref: identity_ref.clone(),
                phc: self.hash(password).await?,
                failures: 0,
                locked_until: None,
                updated_at: now,
            };
            // The password holds its identity from retention, on
            // condition that the identity is still there (`identity::erase`).
            let identity_key = layout::identity(identity_ref);
            let identity = self
                .store
                .get(&identity_key)
                .await?
                .ok_or(VaultError::NotFound { what: "identity" })?;
            let mut batch = Batch::new();
            batch
                .expect_absent(key.clone())
                .put(key, encode(&record)?)
                .expect_equals(identity_key.clone(), identity)
                .put(
                    layout::identity_held(identity_ref),
                    now.seconds().to_be_bytes().to_vec(),
                );
            let joined_expects = batch.join(crate::vault::joined::writes_of(joined, &())?);
            let audit = Audit::new(actor, Operation::PasswordSet, Some(user.to_string()))
                .with_detail(format!("identity={identity_ref}"));
            if !self.commit_once(batch, &audit).await? {
                self.joined_still_hold(&joined_expects).await?;
                if self.store.get(&identity_key).await?.is_none() {
                    return Err(VaultError::NotFound { what: "identity" });
                }
                return Err(VaultError::Contention);
            }
            Ok(())
        }
        .await;
        self.audited(audit, result).await
    }

    /// Checks `password` for `user`, counting failures towards the lock-out.
    pub async fn verify_password(
        &self,
        actor: &Actor,
        user: &UserId,
        password: &str,
    ) -> Result<(), VaultError> {
        let audit = Audit::new(actor, Operation::PasswordVerify, Some(user.to_string()));
        match self
            .check_password(actor, Operation::PasswordVerify, user, password)
            .await
        {
            Ok(checked) if checked.audited => Ok(()),
            Ok(_) => self.record(&audit, Outcome::Success, None).await,
            Err(refused) => self.refused(audit, refused).await,
        }
    }

    /// Replaces the password after checking the current one.
    pub async fn change_password(
        &self,
        actor: &Actor,
        user: &UserId,
        current: &str,
        new: &str,
    ) -> Result<(), VaultError> {
        self.change_password_joined(actor, user, current, new, &Alone)
            .await
    }

    /// `change_password`, with `joined`'s writes in the new password's batch.
    pub async fn change_password_joined(
        &self,
        actor: &Actor,
        user: &UserId,
        current: &str,
        new: &str,
        joined: &(impl Joined<()> + ?Sized),
    ) -> Result<(), VaultError> {
        let audit = Audit::new(actor, Operation::PasswordChange, Some(user.to_string()));
        let Checked { record, raw, .. } = match self
            .check_password(actor, Operation::PasswordChange, user, current)
            .await
        {
            Ok(checked) => checked,
            Err(refused) => return self.refused(audit, refused).await,
        };
        let result = async {
            self.weakness(&record.identity_ref, new).await?;
            let key = layout::password(user);
            let _one_writer_per_user = self.stripes.lock(&key).await;
            let changed = PasswordRecord {
                phc: self.hash(new).await?,
                failures: 0,
                locked_until: None,
                updated_at: Timestamp::now(),
                ..record
            };
            let mut batch = Batch::new();
            batch.expect_equals(key.clone(), raw).put(key, encode(&changed)?);
            let joined_expects = batch.join(crate::vault::joined::writes_of(joined, &())?);
            if !self.commit_once(batch, &audit).await? {
                self.joined_still_hold(&joined_expects).await?;
                return Err(VaultError::Contention);
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) => Ok(()),
            Err(e) => self.audited(audit, Err(e)).await,
        }
    }

    /// Whether `phc` was made with an older pepper than the newest held.
    fn pepper_is_old(&self, phc: &str) -> bool {
        hash::pepper_version(phc).is_ok_and(|v| v < self.peppers.newest().0)
    }

    /// How many stored passwords each pepper version holds, by version.
    pub(in crate::vault) async fn passwords_per_pepper(
        &self,
    ) -> Result<std::collections::BTreeMap<u32, u64>, VaultError> {
        let mut counts = std::collections::BTreeMap::new();
        self.for_each_under(layout::PASSWORD_PREFIX, |_, value| {
            let record: PasswordRecord = decode(value, "password")?;
            let version =
                hash::pepper_version(&record.phc).map_err(|_| VaultError::Corrupt { what: "password" })?;
            *counts.entry(version).or_insert(0) += 1;
            Ok(())
        })
        .await?;
        Ok(counts)
    }

    /// A refused check, audited unless its record went in with the failure
    /// count already.
    async fn refused(&self, audit: Audit<'_>, refused: Refused) -> Result<(), VaultError> {
        if refused.audited {
            Err(refused.error)
        } else {
            self.audited(audit, Err(refused.error)).await
        }
    }

    /// Verifies against the stored hash. A wrong password is counted (and
    /// may lock) in one audited write before the refusal is returned; a
    /// right one clears the count. Returns the record as it now stands.
    async fn check_password(
        &self,
        actor: &Actor,
        operation: Operation,
        user: &UserId,
        password: &str,
    ) -> Result<Checked, Refused> {
        let key = layout::password(user);
        let _one_attempt_at_a_time = self.stripes.lock(&key).await;
        let (record, raw) = self
            .password_record(user)
            .await?
            .ok_or(VaultError::PasswordNotSet)?;
        let now = Timestamp::now();
        if let Some(until) = record.locked_until.filter(|t| *t > now) {
            return Err(VaultError::PasswordLocked { until }.into());
        }
        let right = self.matches(password, &record.phc).await?;
        // A right password under an older pepper moves to the newest now.
        let rehashed = if right && self.pepper_is_old(&record.phc) {
            Some(self.hash(password).await?)
        } else {
            None
        };
        if right && rehashed.is_none() && record.failures == 0 && record.locked_until.is_none() {
            return Ok(Checked {
                record,
                raw,
                audited: false,
            });
        }
        let mut next = record.clone();
        next.locked_until = None;
        next.failures = if right { 0 } else { record.failures + 1 };
        if let Some(phc) = &rehashed {
            next.phc = phc.clone();
        }
        let error = if right {
            None
        } else if next.failures >= MAX_FAILURES {
            let until = Timestamp(now.seconds() + LOCK_SECONDS);
            next.failures = 0;
            next.locked_until = Some(until);
            Some(VaultError::PasswordLocked { until })
        } else {
            Some(VaultError::PasswordMismatch {
                remaining: MAX_FAILURES - next.failures,
            })
        };
        let encoded = encode(&next)?;
        let mut batch = Batch::new();
        batch.expect_equals(key.clone(), raw).put(key, encoded.clone());
        let (outcome, detail) = match &error {
            None if rehashed.is_some() => (
                Outcome::Success,
                Some(format!(
                    "rehashed under pepper version {}",
                    self.peppers.newest().0
                )),
            ),
            None => (Outcome::Success, Some("failures cleared".to_owned())),
            Some(VaultError::PasswordLocked { .. }) => {
                (Outcome::Refused, Some("password.locked_out".to_owned()))
            }
            Some(_) => (
                Outcome::Refused,
                Some(format!("password.mismatch failures={}", next.failures)),
            ),
        };
        let audit = Audit::new(actor, operation, Some(user.to_string()));
        if !self.apply_audited(batch, &audit, outcome, detail).await? {
            return Err(VaultError::Contention.into());
        }
        match error {
            None => Ok(Checked {
                record: next,
                raw: encoded,
                audited: true,
            }),
            Some(error) => Err(Refused { error, audited: true }),
        }
    }
}
