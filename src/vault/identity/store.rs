//! Storing identity data: real name, resident ID number, reserved mobile,
//! each sealed under its own field binding.

use crate::audit::{Actor, Outcome};
use crate::domain::operation::Operation;
use crate::domain::refs::IdentityRef;
use crate::domain::time::Timestamp;
use crate::store::{Batch, Store};
use crate::vault::audited::Audit;
use crate::vault::crypto::aad::{Binding, RecordKind};
use crate::vault::identity::mobile::Mobile;
use crate::vault::identity::name::RealName;
use crate::vault::identity::resident_id::ResidentId;
use crate::vault::records::{decode, encode, IdentityRecord};
use crate::vault::{layout, Alone, Joined, Vault, VaultError};
use zeroize::Zeroizing;

/// What a caller learns about a stored identity: masked values only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredIdentity {
    pub identity_ref: IdentityRef,
    pub masked_name: String,
    pub masked_id_number: String,
    pub masked_phone: String,
    pub created_at: Timestamp,
}

/// The plaintext identity, for the gateway's four-element check.
pub(in crate::vault) struct OpenedIdentity {
    pub name: RealName,
    pub id_number: ResidentId,
    pub phone: Mobile,
}

fn binding<'a>(identity_ref: &'a IdentityRef, field: &'static str) -> Binding<'a> {
    Binding {
        kind: RecordKind::Identity,
        record_id: identity_ref.as_str(),
        field,
    }
}

impl StoredIdentity {
    fn from_record(r: IdentityRecord) -> Self {
        StoredIdentity {
            identity_ref: r.identity_ref,
            masked_name: r.masked_name,
            masked_id_number: r.masked_id_number,
            masked_phone: r.masked_phone,
            created_at: r.created_at,
        }
    }
}

impl<S: Store> Vault<S> {
    /// Validates all three values (the first invalid one is reported) and
    /// stores them encrypted; returns once durable and audited.
    pub async fn store_identity(
        &self,
        actor: &Actor,
        name: &str,
        id_number: &str,
        phone: &str,
    ) -> Result<StoredIdentity, VaultError> {
        self.store_identity_joined(actor, name, id_number, phone, &Alone)
            .await
    }

    /// `store_identity`, with `joined`'s writes in the same batch.
    pub async fn store_identity_joined(
        &self,
        actor: &Actor,
        name: &str,
        id_number: &str,
        phone: &str,
        joined: &impl Joined<StoredIdentity>,
    ) -> Result<StoredIdentity, VaultError> {
        let result = self
            .resealing(|| self.store_identity_inner(actor, name, id_number, phone, joined))
            .await;
        self.audited(Audit::new(actor, Operation::IdentityStore, None), result)
            .await
    }

    async fn store_identity_inner(
        &self,
        actor: &Actor,
        name: &str,
        id_number: &str,
        phone: &str,
        joined: &impl Joined<StoredIdentity>,
    ) -> Result<StoredIdentity, VaultError> {
        let now = Timestamp::now();
        let name = RealName::parse(name)?;
        let id_number = ResidentId::parse(id_number, now.date())?;
        let phone = Mobile::parse(phone)?;
        let identity_ref = IdentityRef::generate()?;
        let mut batch = Batch::new();
        let record = IdentityRecord {
            name: self
                .seal(
                    &mut batch,
                    &binding(&identity_ref, "name"),
                    name.expose().as_bytes(),
                )
                .await?,
            id_number: self
                .seal(
                    &mut batch,
                    &binding(&identity_ref, "id_number"),
                    id_number.expose().as_bytes(),
                )
                .await?,
            phone: self
                .seal(
                    &mut batch,
                    &binding(&identity_ref, "phone"),
                    phone.expose().as_bytes(),
                )
                .await?,
            masked_name: name.masked(),
            masked_id_number: id_number.masked(),
            masked_phone: phone.masked(),
            created_at: now,
            identity_ref,
        };
        let key = layout::identity(&record.identity_ref);
        batch.expect_absent(key.clone()).put(key, encode(&record)?);
        let audit = Audit::new(
            actor,
            Operation::IdentityStore,
            Some(record.identity_ref.to_string()),
        );
        let stored = StoredIdentity::from_record(record);
        let joined_expects = batch.join(crate::vault::joined::writes_of(joined, &stored)?);
        if !self.commit_once(batch, &audit).await? {
            self.joined_still_hold(&joined_expects).await?;
            return Err(VaultError::Contention);
        }
        Ok(stored)
    }

    /// The masked identity (audited as a read).
    pub async fn identity(
        &self,
        actor: &Actor,
        identity_ref: &IdentityRef,
    ) -> Result<StoredIdentity, VaultError> {
        let audit = Audit::new(actor, Operation::IdentityRead, Some(identity_ref.to_string()));
        match self.identity_record(identity_ref).await {
            Ok(record) => {
                self.record(&audit, Outcome::Success, None).await?;
                Ok(StoredIdentity::from_record(record))
            }
            Err(e) => self.audited(audit, Err(e)).await,
        }
    }

    pub(in crate::vault) async fn identity_record(
        &self,
        identity_ref: &IdentityRef,
    ) -> Result<IdentityRecord, VaultError> {
        let bytes = self
            .store
            .get(&layout::identity(identity_ref))
            .await?
            .ok_or(VaultError::NotFound { what: "identity" })?;
        decode(&bytes, "identity")
    }

    pub(in crate::vault) async fn open_identity(
        &self,
        identity_ref: &IdentityRef,
    ) -> Result<OpenedIdentity, VaultError> {
        let record = self.identity_record(identity_ref).await?;
        let corrupt = || VaultError::Corrupt { what: "identity" };
        let text = |bytes: Zeroizing<Vec<u8>>| {
            String::from_utf8(bytes.to_vec())
                .map(Zeroizing::new)
                .map_err(|_| corrupt())
        };
        let name = text(
            self.open_sealed(&binding(identity_ref, "name"), &record.name)
                .await?,
        )?;
        let id = text(
            self.open_sealed(&binding(identity_ref, "id_number"), &record.id_number)
                .await?,
        )?;
        let phone = text(
            self.open_sealed(&binding(identity_ref, "phone"), &record.phone)
                .await?,
        )?;
        Ok(OpenedIdentity {
            name: RealName::parse(&name).map_err(|_| corrupt())?,
            // Re-parsed against its own birth date: it was valid when stored.
            id_number: ResidentId::parse(&id, Timestamp::now().date()).map_err(|_| corrupt())?,
            phone: Mobile::parse(&phone).map_err(|_| corrupt())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::domain::validation::{Field, Rule};
    use crate::store::SledStore;
    use crate::vault::keys::kek::Kek;
    use crate::vault::{Vault, VaultConfig, VaultError};

    #[tokio::test]
    async fn identity_round_trip_and_field_errors() {
        let dir = tempfile::tempdir().unwrap();
        let vault = Vault::open(
            SledStore::open(dir.path()).unwrap(),
            Kek::generate().unwrap(),
            VaultConfig::embedded().unwrap(),
        )
        .await
        .unwrap();
        let actor = crate::audit::Actor::local("test");
        let stored = vault
            .store_identity(&actor, " 张三 ", "11010519491231002x", "+8613800138000")
            .await
            .unwrap();
        assert_eq!(stored.masked_name, "*三");
        assert_eq!(stored.masked_phone, "138****8000");
        assert_eq!(stored.masked_id_number, "11**************2X");
        let opened = vault.open_identity(&stored.identity_ref).await.unwrap();
        assert_eq!(opened.name.expose(), "张三");
        assert_eq!(opened.id_number.expose(), "11010519491231002X");
        assert_eq!(opened.phone.expose(), "13800138000");
        match vault
            .store_identity(&actor, "张三", "110105194912310021", "13800138000")
            .await
        {
            Err(VaultError::Invalid(e)) => {
                assert_eq!((e.field, e.rule), (Field::IdNumber, Rule::CheckCharacter))
            }
            other => panic!("{other:?}"),
        }
    }
}
