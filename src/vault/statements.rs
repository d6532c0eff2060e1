//! Channels' statement files (对账单), kept as fetched: sealed under the
//! data key in chunks of `CHUNK` bytes like any other sealed record, so the
//! key rewrap moves them to the newest version and retirement counts them.
//!
//! A file is known by its channel, date and SHA-256 (computed here, not
//! taken from the caller); the same file kept twice is kept once. Each
//! chunk's ciphertext is bound to the file and its number, so chunks
//! cannot be swapped or moved between files, and the whole is checked
//! against its SHA-256 when read back, so a missing chunk is an error,
//! never a shorter file.

use super::audited::Audit;
use super::crypto::aad::{Binding, RecordKind};
use super::records::{decode, encode, StatementChunkRecord};
use super::{layout, Vault, VaultError};
use crate::audit::{Actor, Outcome};
use crate::channel::statement::digest;
use crate::domain::date::SettlementDate;
use crate::domain::ids::ChannelId;
use crate::domain::operation::Operation;
use crate::store::{Batch, Store};

/// Plaintext bytes per sealed chunk.
const CHUNK: usize = 1 << 20;
/// Chunks per write: a million-line day (some 100 MiB) is a dozen writes
/// of 8 MiB, not one write the store must hold whole.
const CHUNKS_PER_WRITE: usize = 8;

/// The id a file's chunks are kept under.
fn file_id(channel: &ChannelId, date: SettlementDate, sha256: &str) -> String {
    format!("{}/{date}/{sha256}", channel.as_str())
}

fn chunk_binding(record_id: &str) -> Binding<'_> {
    Binding {
        kind: RecordKind::Statement,
        record_id,
        field: "text",
    }
}

/// The id a chunk's ciphertext is bound to: its file and its number.
pub(in crate::vault) fn chunk_record_id(file: &str, n: u32) -> String {
    format!("{file}/{n}")
}

/// Where a statement is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptStatement {
    pub sha256: String,
    pub chunks: u32,
    pub bytes: u64,
}

impl<S: Store> Vault<S> {
    /// Keeps `text`, `channel`'s statement of `date`, sealed in chunks,
    /// unless the same file is kept already. Each write of up to
    /// `CHUNKS_PER_WRITE` chunks carries its own audit record.
    pub async fn keep_statement(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        date: SettlementDate,
        text: &str,
    ) -> Result<KeptStatement, VaultError> {
        let sha256 = digest(text);
        let file = file_id(channel, date, &sha256);
        let chunks: Vec<&[u8]> = text.as_bytes().chunks(CHUNK).collect();
        // A statement is read within 512 MiB (`gateway::channel`): at most
        // 512 chunks, so every count and number fits a u32.
        let of = chunks.len() as u32;
        let kept = KeptStatement {
            sha256,
            chunks: of,
            bytes: text.len() as u64,
        };
        // Parts are written in order, so the last chunk stands for the whole.
        let last = layout::statement_chunk(&file, of.saturating_sub(1));
        if of == 0 || self.store.get(&last).await?.is_some() {
            return Ok(kept);
        }
        for (part, first) in (0..chunks.len()).step_by(CHUNKS_PER_WRITE).enumerate() {
            let these = &chunks[first..chunks.len().min(first + CHUNKS_PER_WRITE)];
            let write = self.resealing(|| self.keep_part(actor, &file, first, these, of, part));
            let result = write.await;
            let object = Some(channel.as_str().to_owned());
            self.audited(Audit::new(actor, Operation::ReconciliationRun, object), result)
                .await?;
        }
        Ok(kept)
    }

    async fn keep_part(
        &self,
        actor: &Actor,
        file: &str,
        first: usize,
        chunks: &[&[u8]],
        of: u32,
        part: usize,
    ) -> Result<(), VaultError> {
        let mut batch = Batch::new();
        for (i, text) in chunks.iter().enumerate() {
            let n = (first + i) as u32;
            let record_id = chunk_record_id(file, n);
            let sealed = self.seal(&mut batch, &chunk_binding(&record_id), text).await?;
            let record = StatementChunkRecord {
                file: file.to_owned(),
                n,
                of,
                text: sealed,
            };
            batch.put(layout::statement_chunk(file, n), encode(&record)?);
        }
        let audit = Audit::new(actor, Operation::ReconciliationRun, Some(file.to_owned())).with_detail(format!(
            "statement kept: part {part}, chunks {first}..{} of {of}",
            first + chunks.len()
        ));
        if !self.commit_once(batch, &audit).await? {
            return Err(VaultError::Contention);
        }
        Ok(())
    }

    /// `channel`'s statement of `date` whose SHA-256 is `sha256`, as kept
    /// (audited as a read). `NotFound` when it was never kept.
    pub async fn open_statement(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        date: SettlementDate,
        sha256: &str,
    ) -> Result<String, VaultError> {
        let file = file_id(channel, date, sha256);
        let audit = Audit::new(actor, Operation::ReconciliationRead, Some(file.clone()));
        match self.open_statement_inner(&file, sha256).await {
            Ok(text) => {
                let detail = format!("statement read: {} bytes", text.len());
                self.record(&audit, Outcome::Success, Some(detail)).await?;
                Ok(text)
            }
            Err(e) => self.audited(audit, Err(e)).await,
        }
    }

    async fn open_statement_inner(&self, file: &str, sha256: &str) -> Result<String, VaultError> {
        let corrupt = VaultError::Corrupt { what: "statement" };
        let mut sealed: Vec<StatementChunkRecord> = Vec::new();
        self.for_each_under(&layout::statement_chunks(file), |_, raw| {
            sealed.push(decode(raw, "statement chunk")?);
            Ok(())
        })
        .await?;
        let Some(of) = sealed.first().map(|c| c.of) else {
            return Err(VaultError::NotFound { what: "statement" });
        };
        let whole = sealed.len() == of as usize
            && sealed
                .iter()
                .enumerate()
                .all(|(i, c)| c.n as usize == i && c.of == of && c.file == file);
        if !whole {
            return Err(corrupt);
        }
        let mut text = Vec::new();
        for chunk in sealed {
            let record_id = chunk_record_id(file, chunk.n);
            text.extend_from_slice(&self.open_sealed(&chunk_binding(&record_id), &chunk.text).await?);
        }
        let text = String::from_utf8(text).map_err(|_| VaultError::Corrupt { what: "statement" })?;
        let matches: bool = subtle::ConstantTimeEq::ct_eq(digest(&text).as_bytes(), sha256.as_bytes()).into();
        if !matches {
            return Err(corrupt);
        }
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::test_vault::fresh;

    fn day() -> SettlementDate {
        SettlementDate::parse("2026-12-01").unwrap()
    }

    /// Some 2.5 chunks of statement-like text.
    fn long_file() -> String {
        let mut text = String::from("trade_time,channel_txn_no,order_id,refund_id,type,status,amount,currency,fee\n");
        let mut n = 0u64;
        while text.len() < CHUNK * 5 / 2 {
            text.push_str(&format!("2026-12-01 10:00:00,T{n:012},pay_{n:032x},,payment,success,100,CNY,0\n"));
            n += 1;
        }
        text
    }

    #[tokio::test]
    async fn a_file_is_kept_in_sealed_chunks_once_and_reads_back_whole() {
        let (_dir, vault) = fresh().await;
        let me = Actor::local("test");
        let channel = ChannelId::parse("bank-a").unwrap();
        let text = long_file();
        let kept = vault.keep_statement(&me, &channel, day(), &text).await.unwrap();
        assert_eq!((kept.chunks, kept.bytes), (3, text.len() as u64));
        let again = vault.keep_statement(&me, &channel, day(), &text).await.unwrap();
        assert_eq!(again, kept);
        let per_version = vault.records_per_version().await.unwrap();
        assert_eq!(per_version.get(&1), Some(&3), "each chunk is a sealed record");
        let read = vault.open_statement(&me, &channel, day(), &kept.sha256).await.unwrap();
        assert_eq!(read, text);
        // Nothing of it lies in the store as plaintext.
        let mut plain = false;
        vault
            .for_each_under(layout::STATEMENT_PREFIX, |_, raw| {
                plain |= raw.windows(20).any(|w| w == &text.as_bytes()[100..120]);
                Ok(())
            })
            .await
            .unwrap();
        assert!(!plain);
        let other_day = SettlementDate::parse("2026-12-02").unwrap();
        assert!(matches!(
            vault.open_statement(&me, &channel, other_day, &kept.sha256).await,
            Err(VaultError::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn a_missing_or_moved_chunk_is_an_error_not_a_shorter_file() {
        let (_dir, vault) = fresh().await;
        let me = Actor::local("test");
        let channel = ChannelId::parse("bank-a").unwrap();
        let kept = vault.keep_statement(&me, &channel, day(), &long_file()).await.unwrap();
        let file = file_id(&channel, day(), &kept.sha256);
        let store = &vault.store;
        let first = store.get(&layout::statement_chunk(&file, 0)).await.unwrap().unwrap();
        // Chunk 0's bytes under chunk 1's key: its binding names chunk 0.
        let mut batch = Batch::new();
        batch.put(layout::statement_chunk(&file, 1), first);
        store.commit(batch).await.unwrap();
        assert!(vault.open_statement(&me, &channel, day(), &kept.sha256).await.is_err());
        let mut batch = Batch::new();
        batch.delete(layout::statement_chunk(&file, 1));
        store.commit(batch).await.unwrap();
        assert!(matches!(
            vault.open_statement(&me, &channel, day(), &kept.sha256).await,
            Err(VaultError::Corrupt { .. })
        ));
    }

    #[tokio::test]
    async fn kept_files_are_rewrapped_so_their_old_key_retires() {
        let (_dir, vault) = fresh().await;
        let me = Actor::local("test");
        let channel = ChannelId::parse("bank-a").unwrap();
        let text = long_file();
        let kept = vault.keep_statement(&me, &channel, day(), &text).await.unwrap();
        vault.rotate_data_key(&me, "test").await.unwrap();
        assert!(matches!(
            vault.retire_data_key(&me, 1).await,
            Err(VaultError::KeyVersionInUse { version: 1, records: 3 })
        ));
        vault.start_rewrap(&me).await.unwrap();
        while let Some(step) = vault.rewrap_step(&me, 2).await.unwrap() {
            if step.finished_at.is_some() {
                assert_eq!(step.rewrapped, 3);
                break;
            }
        }
        vault.retire_data_key(&me, 1).await.unwrap();
        let read = vault.open_statement(&me, &channel, day(), &kept.sha256).await.unwrap();
        assert_eq!(read, text);
    }
}
