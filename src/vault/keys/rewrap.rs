//! Re-encrypting stored records under the newest data-key version (and
//! moving cards' index entries to the newest fingerprint version), so old
//! versions can be retired: one resumable job whose cursor lives in the
//! store, advanced a page at a time by the server's key-maintenance task.
//!
//! Each record is rewritten with a compare-and-set on its old bytes, so a
//! concurrent writer is never overwritten; fields already under the newest
//! version are left alone, so redoing a page after a crash is harmless.

use crate::audit::{Actor, Outcome};
use crate::domain::operation::Operation;
use crate::domain::time::Timestamp;
use crate::store::{Batch, CommitError, Store};
use crate::vault::crypto::aad::{Binding, RecordKind};
use crate::vault::crypto::envelope::Header;
use crate::vault::records::{
    decode, encode, AgreementRecord, CardRecord, IdentityRecord, RewrapJobRecord, StatementChunkRecord,
};
use crate::vault::retry::Retry;
use crate::vault::{layout, Vault, VaultError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// A stored record kind that holds fields sealed under a data key.
trait SealedRecord: Serialize + DeserializeOwned {
    const WHAT: &'static str;
    const KIND: RecordKind;
    fn record_id(&self) -> String;
    fn sealed_fields(&mut self) -> Vec<(&'static str, &mut Vec<u8>)>;
}

impl SealedRecord for CardRecord {
    const WHAT: &'static str = "card";
    const KIND: RecordKind = RecordKind::Card;
    fn record_id(&self) -> String {
        self.card_ref.as_str().to_owned()
    }
    fn sealed_fields(&mut self) -> Vec<(&'static str, &mut Vec<u8>)> {
        vec![("pan", &mut self.pan)]
    }
}

impl SealedRecord for IdentityRecord {
    const WHAT: &'static str = "identity";
    const KIND: RecordKind = RecordKind::Identity;
    fn record_id(&self) -> String {
        self.identity_ref.as_str().to_owned()
    }
    fn sealed_fields(&mut self) -> Vec<(&'static str, &mut Vec<u8>)> {
        vec![
            ("name", &mut self.name),
            ("id_number", &mut self.id_number),
            ("phone", &mut self.phone),
        ]
    }
}

impl SealedRecord for AgreementRecord {
    const WHAT: &'static str = "agreement";
    const KIND: RecordKind = RecordKind::Agreement;
    fn record_id(&self) -> String {
        self.agreement_ref.as_str().to_owned()
    }
    fn sealed_fields(&mut self) -> Vec<(&'static str, &mut Vec<u8>)> {
        vec![("agreement_no", &mut self.agreement_no)]
    }
}

impl SealedRecord for StatementChunkRecord {
    const WHAT: &'static str = "statement chunk";
    const KIND: RecordKind = RecordKind::Statement;
    fn record_id(&self) -> String {
        crate::vault::statements::chunk_record_id(&self.file, self.n)
    }
    fn sealed_fields(&mut self) -> Vec<(&'static str, &mut Vec<u8>)> {
        vec![("text", &mut self.text)]
    }
}

/// Statement chunks are 1 MiB each: a page of them is kept this short.
const STATEMENT_PAGE: usize = 4;

/// How many records of kind `kind` a page may hold, where `limit` is asked.
fn page_of(kind: usize, limit: usize) -> usize {
    if PREFIXES.get(kind) == Some(&layout::STATEMENT_PREFIX) {
        limit.clamp(1, STATEMENT_PAGE)
    } else {
        limit.max(1)
    }
}

/// The kinds the job walks, in this order (the cursor stores the index,
/// so a kind added later goes at the end).
const PREFIXES: [&[u8]; 4] = [
    layout::AGREEMENT_PREFIX,
    layout::CARD_PREFIX,
    layout::IDENTITY_PREFIX,
    layout::STATEMENT_PREFIX,
];

fn versions_of<R: SealedRecord>(bytes: &[u8]) -> Result<BTreeSet<u32>, VaultError> {
    let mut record: R = decode(bytes, R::WHAT)?;
    record
        .sealed_fields()
        .into_iter()
        .map(|(_, sealed)| Ok(Header::parse(sealed)?.key_version))
        .collect()
}

fn versions_in(kind: usize, bytes: &[u8]) -> Result<BTreeSet<u32>, VaultError> {
    match kind {
        0 => versions_of::<AgreementRecord>(bytes),
        1 => versions_of::<CardRecord>(bytes),
        2 => versions_of::<IdentityRecord>(bytes),
        _ => versions_of::<StatementChunkRecord>(bytes),
    }
}

/// Rewrap progress as `keys status` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RewrapProgress {
    pub started_at: Timestamp,
    pub started_by: String,
    /// Records looked at so far, of `total` counted when the job started.
    pub scanned: u64,
    pub rewrapped: u64,
    pub total: u64,
    pub finished_at: Option<Timestamp>,
}

impl From<&RewrapJobRecord> for RewrapProgress {
    fn from(job: &RewrapJobRecord) -> Self {
        RewrapProgress {
            started_at: job.started_at,
            started_by: job.started_by.clone(),
            scanned: job.scanned,
            rewrapped: job.rewrapped,
            total: job.total,
            finished_at: job.finished_at,
        }
    }
}

impl<S: Store> Vault<S> {
    /// Calls `visit(kind, value)` for every stored record with sealed
    /// fields, a page at a time.
    async fn walk_sealed(
        &self,
        mut visit: impl FnMut(usize, &[u8]) -> Result<(), VaultError>,
    ) -> Result<(), VaultError> {
        for (kind, prefix) in PREFIXES.iter().enumerate() {
            let page = page_of(kind, 512);
            self.for_each_under_by(prefix, page, |_, value| visit(kind, value))
                .await?;
        }
        Ok(())
    }

    /// How many stored records use each data-key version (a record with
    /// fields under two versions counts for both). A full scan: O(records).
    pub async fn records_per_version(&self) -> Result<BTreeMap<u32, u64>, VaultError> {
        let mut counts = BTreeMap::new();
        self.walk_sealed(|kind, value| {
            for version in versions_in(kind, value)? {
                *counts.entry(version).or_insert(0) += 1;
            }
            Ok(())
        })
        .await?;
        Ok(counts)
    }

    async fn count_sealed_records(&self) -> Result<u64, VaultError> {
        let mut total = 0u64;
        self.walk_sealed(|_, _| {
            total += 1;
            Ok(())
        })
        .await?;
        Ok(total)
    }

    /// Re-seals every field of one record that is not under the newest
    /// version. `Ok(false)` when nothing needed doing or the record is gone.
    async fn rewrap_record<R: SealedRecord>(&self, key: &[u8], bytes: Vec<u8>) -> Result<bool, VaultError> {
        let mut retry = Retry::new();
        let mut bytes = bytes;
        loop {
            let newest = self.current_key_version()?;
            let mut record: R = decode(&bytes, R::WHAT)?;
            let id = record.record_id();
            let mut changed = false;
            let mut batch = Batch::new();
            for (field, sealed) in record.sealed_fields() {
                if Header::parse(sealed)?.key_version == newest {
                    continue;
                }
                let binding = Binding {
                    kind: R::KIND,
                    record_id: &id,
                    field,
                };
                let plain = self.open_sealed(&binding, sealed).await?;
                *sealed = self.seal(&mut batch, &binding, &plain).await?;
                changed = true;
            }
            if !changed {
                return Ok(false);
            }
            let fenced = super::fence::fenced_on(&batch);
            batch
                .expect_equals(key.to_vec(), bytes.clone())
                .put(key.to_vec(), encode(&record)?);
            match self.store.commit(batch).await {
                Ok(()) => return Ok(true),
                Err(CommitError::Conflict) => {
                    // A rotation elsewhere: the next round seals under it.
                    match self.after_conflict(fenced).await {
                        Ok(()) | Err(VaultError::KeySuperseded) => {}
                        Err(e) => return Err(e),
                    }
                    retry.after_conflict().await?;
                    match self.store.get(key).await? {
                        Some(now) => bytes = now,
                        None => return Ok(false),
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn rewrap_entry(&self, kind: usize, key: &[u8], bytes: Vec<u8>) -> Result<bool, VaultError> {
        match kind {
            0 => self.rewrap_record::<AgreementRecord>(key, bytes).await,
            1 => {
                let current = self.keyring.fingerprints().current().version();
                let stale_index = decode::<CardRecord>(&bytes, "card")?.fingerprint_version < current;
                let resealed = self.rewrap_record::<CardRecord>(key, bytes).await?;
                // Then its index entry, from the card as it now stands.
                let moved = if stale_index {
                    match self.store.get(key).await? {
                        Some(now) => self.refingerprint_card(key, now).await?,
                        None => false,
                    }
                } else {
                    false
                };
                Ok(resealed || moved)
            }
            2 => self.rewrap_record::<IdentityRecord>(key, bytes).await,
            _ => self.rewrap_record::<StatementChunkRecord>(key, bytes).await,
        }
    }

    async fn rewrap_job(&self) -> Result<Option<(Vec<u8>, RewrapJobRecord)>, VaultError> {
        match self.store.get(layout::REWRAP_JOB).await? {
            Some(bytes) => {
                let job = decode(&bytes, "rewrap job")?;
                Ok(Some((bytes, job)))
            }
            None => Ok(None),
        }
    }

    /// The current (or last) rewrap job's progress.
    pub async fn rewrap_progress(&self) -> Result<Option<RewrapProgress>, VaultError> {
        Ok(self
            .rewrap_job()
            .await?
            .map(|(_, job)| RewrapProgress::from(&job)))
    }

    /// Starts a rewrap job, or returns the one already running (starting is
    /// idempotent). The key-maintenance task does the work.
    pub async fn start_rewrap(&self, actor: &Actor) -> Result<RewrapProgress, VaultError> {
        let existing = self.rewrap_job().await?;
        if let Some((_, job)) = &existing {
            if job.finished_at.is_none() {
                return Ok(RewrapProgress::from(job));
            }
        }
        let job = RewrapJobRecord {
            started_at: Timestamp::now(),
            started_by: actor.identity.clone(),
            kind: 0,
            after: None,
            scanned: 0,
            rewrapped: 0,
            total: self.count_sealed_records().await?,
            finished_at: None,
        };
        let mut batch = Batch::new();
        match existing {
            Some((bytes, _)) => batch.expect_equals(layout::REWRAP_JOB, bytes),
            None => batch.expect_absent(layout::REWRAP_JOB),
        };
        batch.put(layout::REWRAP_JOB, encode(&job)?);
        let detail = format!(
            "rewrap started towards data key version {}: {} records",
            self.current_key_version()?,
            job.total
        );
        if !self
            .commit_with_audit(
                batch,
                actor,
                Operation::KeyRewrap,
                None,
                Outcome::Success,
                Some(detail),
            )
            .await?
        {
            return Err(VaultError::Contention);
        }
        Ok(RewrapProgress::from(&job))
    }

    /// Advances the running job by up to `limit` records and saves the
    /// cursor. `None` when no job is running.
    pub async fn rewrap_step(
        &self,
        actor: &Actor,
        limit: usize,
    ) -> Result<Option<RewrapProgress>, VaultError> {
        let Some((stored, mut job)) = self.rewrap_job().await? else {
            return Ok(None);
        };
        if job.finished_at.is_some() {
            return Ok(None);
        }
        let kind = usize::from(job.kind);
        let Some(prefix) = PREFIXES.get(kind) else {
            return Err(VaultError::Corrupt { what: "rewrap job" });
        };
        let size = page_of(kind, limit);
        let page = self.store.scan_prefix(prefix, job.after.as_deref(), size).await?;
        let full_page = page.len() == size;
        let last = page.last().map(|(k, _)| k.clone());
        // A fingerprint rotation on another node is taken up page by page.
        self.refresh_fingerprints().await?;
        for (key, value) in page {
            if self.rewrap_entry(kind, &key, value).await? {
                job.rewrapped += 1;
            }
            job.scanned += 1;
        }
        if full_page {
            job.after = last;
        } else {
            job.kind += 1;
            job.after = None;
            if usize::from(job.kind) == PREFIXES.len() {
                job.finished_at = Some(Timestamp::now());
            }
        }
        let mut batch = Batch::new();
        batch
            .expect_equals(layout::REWRAP_JOB, stored)
            .put(layout::REWRAP_JOB, encode(&job)?);
        if job.finished_at.is_some() {
            let floor = self.settle_fingerprint_floor().await?;
            let detail = format!(
                "rewrap finished: {} records scanned, {} rewrapped to data key version {} and fingerprint version {}; fingerprints looked up from version {floor}",
                job.scanned,
                job.rewrapped,
                self.current_key_version()?,
                self.keyring.fingerprints().current().version(),
            );
            if !self
                .commit_with_audit(
                    batch,
                    actor,
                    Operation::KeyRewrap,
                    None,
                    Outcome::Success,
                    Some(detail),
                )
                .await?
            {
                return Err(VaultError::Contention);
            }
        } else {
            self.store.commit(batch).await?;
        }
        Ok(Some(RewrapProgress::from(&job)))
    }
}
