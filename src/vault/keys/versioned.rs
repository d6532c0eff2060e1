//! Secrets that rotate by version: the audit key, the payment-password
//! pepper, the PAN fingerprint key and the audit anchors' signing key. Each version is wrapped by the KEK under `<prefix><version>`
//! (zero-padded); version 1 is made on first use, later ones by a
//! rotation, and none is ever deleted: each still checks what it wrote
//! (audit records, password hashes).

use super::data_keys::{load_or_create_secret, random_key, secret_binding, SECRET_VERSION};
use super::kek::Kek;
use crate::audit::{AuditKey, AuditKeys};
use crate::domain::time::Timestamp;
use crate::store::{Batch, Store};
use crate::vault::crypto::aad::RecordKind;
use crate::vault::records::{decode, encode, FingerprintKeyRecord};
use crate::vault::{layout, VaultError};
use crate::versions::Versions;
use secrecy::SecretBox;

/// Versions read per store page.
const PAGE: usize = 64;

pub(in crate::vault) struct Versioned {
    prefix: &'static [u8],
    kind: RecordKind,
    what: &'static str,
}

pub(in crate::vault) const AUDIT_KEY: Versioned = Versioned {
    prefix: layout::AUDIT_KEY_PREFIX,
    kind: RecordKind::AuditKey,
    what: "audit key",
};

pub(in crate::vault) const PEPPER: Versioned = Versioned {
    prefix: layout::PEPPER_KEY_PREFIX,
    kind: RecordKind::PepperKey,
    what: "pepper",
};

pub(in crate::vault) const FINGERPRINT: Versioned = Versioned {
    prefix: layout::FINGERPRINT_KEY_PREFIX,
    kind: RecordKind::FingerprintKey,
    what: "fingerprint key",
};

pub(in crate::vault) const ANCHOR: Versioned = Versioned {
    prefix: layout::ANCHOR_KEY_PREFIX,
    kind: RecordKind::AnchorKey,
    what: "anchor key",
};

/// Every versioned secret, for the KEK rotation that rewraps them all.
pub(in crate::vault) const ALL: [&Versioned; 4] = [&AUDIT_KEY, &PEPPER, &FINGERPRINT, &ANCHOR];

impl Versioned {
    pub(in crate::vault) fn prefix(&self) -> &'static [u8] {
        self.prefix
    }

    pub(in crate::vault) fn kind(&self) -> RecordKind {
        self.kind
    }

    fn key(&self, version: u32) -> Vec<u8> {
        let mut key = self.prefix.to_vec();
        key.extend_from_slice(format!("{version:010}").as_bytes());
        key
    }

    /// Version 1, made on first use (where the single version always was).
    pub(in crate::vault) async fn first<S: Store>(
        &self,
        store: &S,
        kek: &Kek,
    ) -> Result<SecretBox<[u8; 32]>, VaultError> {
        load_or_create_secret(store, kek, &self.key(SECRET_VERSION), self.kind).await
    }

    /// Every stored version for which `held` is false, unwrapped.
    async fn load_missing<S: Store>(
        &self,
        store: &S,
        kek: &Kek,
        held: impl Fn(u32) -> bool,
    ) -> Result<Vec<(u32, SecretBox<[u8; 32]>)>, VaultError> {
        let mut out = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = store.scan_prefix(self.prefix, after.as_deref(), PAGE).await?;
            for (_, value) in &page {
                let record: FingerprintKeyRecord = decode(value, self.what)?;
                if !held(record.version) {
                    let id = record.version.to_string();
                    let raw = kek.unwrap(&secret_binding(self.kind, &id), &record.wrapped)?;
                    out.push((record.version, raw));
                }
            }
            match page.last() {
                Some((key, _)) if page.len() == PAGE => after = Some(key.clone()),
                _ => return Ok(out),
            }
        }
    }

    /// Version 1 and every later version in the store, each made into a
    /// `T` by `make` (version, secret).
    pub(in crate::vault) async fn load<S: Store, T>(
        &self,
        store: &S,
        kek: &Kek,
        make: impl Fn(u32, SecretBox<[u8; 32]>) -> Result<T, VaultError>,
    ) -> Result<Versions<T>, VaultError> {
        let held = Versions::new(make(SECRET_VERSION, self.first(store, kek).await?)?);
        self.load_into(store, kek, &held, make).await?;
        Ok(held)
    }

    /// Adds to `held` every version in the store it lacks (made by a
    /// rotation here or on another node). Returns the newest.
    pub(in crate::vault) async fn load_into<S: Store, T>(
        &self,
        store: &S,
        kek: &Kek,
        held: &Versions<T>,
        make: impl Fn(u32, SecretBox<[u8; 32]>) -> Result<T, VaultError>,
    ) -> Result<u32, VaultError> {
        for (version, raw) in self.load_missing(store, kek, |v| held.holds(v)).await? {
            held.add(version, make(version, raw)?);
        }
        Ok(held.newest().0)
    }

    /// A new version `version`: the raw secret, and the batch that stores
    /// it wrapped on condition that no other rotation made that version
    /// first (the caller commits it with its audit record).
    pub(in crate::vault) fn new_version(
        &self,
        kek: &Kek,
        version: u32,
    ) -> Result<(Batch, SecretBox<[u8; 32]>), VaultError> {
        let raw = random_key()?;
        let id = version.to_string();
        let record = FingerprintKeyRecord {
            version,
            kek_version: kek.version(),
            wrapped: kek.wrap(&secret_binding(self.kind, &id), &raw)?,
            created_at: Timestamp::now(),
        };
        let key = self.key(version);
        let mut batch = Batch::new();
        batch.expect_absent(key.clone()).put(key, encode(&record)?);
        Ok((batch, raw))
    }
}

/// One kind of versioned secret's rotation (`Vault::add_version`): what
/// each version's secret becomes (`make`), what its audit record says
/// (`describe`), and what else its write must hold or change (`fence`).
pub(in crate::vault) struct Rotation<'a, M, D, F> {
    pub which: &'a Versioned,
    pub operation: crate::domain::operation::Operation,
    pub make: M,
    pub describe: D,
    pub fence: F,
}

/// Every audit key version in the store, version 1 made on first use.
pub(in crate::vault) async fn load_audit_keys<S: Store>(
    store: &S,
    kek: &Kek,
) -> Result<AuditKeys, VaultError> {
    let keys = AuditKeys::new(AuditKey::new(AUDIT_KEY.first(store, kek).await?));
    AUDIT_KEY.load_into(store, kek, keys.held(), audit_key).await?;
    Ok(keys)
}

/// An audit key from its secret.
pub(in crate::vault) fn audit_key(_version: u32, raw: SecretBox<[u8; 32]>) -> Result<AuditKey, VaultError> {
    Ok(AuditKey::new(raw))
}
