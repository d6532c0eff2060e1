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
use crate::channel::statement::{digest, is_digest};
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

/// A statement as kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptStatement {
    pub sha256: String,
    pub chunks: u32,
    pub bytes: u64,
}

/// A file being kept as it arrives: whole chunks are sealed and written
/// `CHUNKS_PER_WRITE` at a time, so no more than that is ever held. The
/// part with the last chunk is written only by `finish`, after the file
/// checked, so a file whose last chunk is in the store was kept whole and
/// checked, and one refused or cut short by a crash is written again.
pub struct StatementKeeper<'v, S: Store> {
    vault: &'v Vault<S>,
    actor: Actor,
    file: String,
    kept: KeptStatement,
    /// Bytes received so far.
    received: u64,
    /// The start of a chunk not yet whole.
    buffer: Vec<u8>,
    /// Whole chunks not yet written, and the number of the first.
    pending: Vec<Vec<u8>>,
    first_pending: u32,
    parts_written: usize,
    /// The same file was kept before: nothing is written again.
    kept_already: bool,
}

impl<S: Store> Vault<S> {
    /// Starts keeping `channel`'s statement of `date`, of `size` bytes
    /// whose SHA-256 is to be `sha256` (the caller checks it as the bytes
    /// arrive, and abandons the keeper if it does not hold).
    pub async fn keep_statement(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        date: SettlementDate,
        sha256: &str,
        size: u64,
    ) -> Result<StatementKeeper<'_, S>, VaultError> {
        if !is_digest(sha256) {
            return Err(VaultError::Corrupt {
                what: "statement digest",
            });
        }
        let chunks = u32::try_from(size.div_ceil(CHUNK as u64)).map_err(|_| VaultError::Corrupt {
            what: "statement size",
        })?;
        let file = file_id(channel, date, sha256);
        // Parts are written in order, so the last chunk stands for the whole.
        let last = layout::statement_chunk(&file, chunks.saturating_sub(1));
        let kept_already = chunks > 0 && self.store.get(&last).await?.is_some();
        Ok(StatementKeeper {
            vault: self,
            actor: actor.clone(),
            file,
            kept: KeptStatement {
                sha256: sha256.to_owned(),
                chunks,
                bytes: size,
            },
            received: 0,
            buffer: Vec::new(),
            pending: Vec::new(),
            first_pending: 0,
            parts_written: 0,
            kept_already,
        })
    }

    async fn keep_part(
        &self,
        actor: &Actor,
        file: &str,
        first: u32,
        chunks: &[Vec<u8>],
        of: u32,
        part: usize,
    ) -> Result<(), VaultError> {
        let mut batch = Batch::new();
        for (n, text) in (first..).zip(chunks) {
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
        let audit =
            Audit::new(actor, Operation::ReconciliationRun, Some(file.to_owned())).with_detail(format!(
                "statement kept: part {part}, chunks {first}..{} of {of}",
                u64::from(first) + chunks.len() as u64
            ));
        if !self.commit_once(batch, &audit).await? {
            return Err(VaultError::Contention);
        }
        Ok(())
    }

    /// Calls `visit` with each chunk of a kept statement, in order, holding
    /// one chunk at a time. A chunk missing, moved or altered is an error.
    pub async fn read_statement(
        &self,
        channel: &ChannelId,
        date: SettlementDate,
        sha256: &str,
        mut visit: impl FnMut(&[u8]) -> Result<(), VaultError>,
    ) -> Result<(), VaultError> {
        // A page of chunks is this many MiB.
        const PAGE: usize = 2;
        let file = file_id(channel, date, sha256);
        let prefix = layout::statement_chunks(&file);
        let (mut after, mut next, mut of) = (None::<Vec<u8>>, 0u32, None::<u32>);
        loop {
            let page = self.store.scan_prefix(&prefix, after.as_deref(), PAGE).await?;
            for (_, raw) in &page {
                let chunk: StatementChunkRecord = decode(raw, "statement chunk")?;
                let whole = chunk.n == next && chunk.file == file && *of.get_or_insert(chunk.of) == chunk.of;
                if !whole {
                    return Err(VaultError::Corrupt { what: "statement" });
                }
                let record_id = chunk_record_id(&file, chunk.n);
                visit(&self.open_sealed(&chunk_binding(&record_id), &chunk.text).await?)?;
                next += 1;
            }
            match page.last() {
                Some((key, _)) if page.len() == PAGE => after = Some(key.clone()),
                _ => break,
            }
        }
        match of {
            None => Err(VaultError::NotFound { what: "statement" }),
            Some(of) if of == next => Ok(()),
            Some(_) => Err(VaultError::Corrupt { what: "statement" }),
        }
    }

    /// `channel`'s statement of `date` whose SHA-256 is `sha256`, as kept
    /// (audited as a read), checked whole against its SHA-256. `NotFound`
    /// when it was never kept.
    pub async fn open_statement(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        date: SettlementDate,
        sha256: &str,
    ) -> Result<String, VaultError> {
        let file = file_id(channel, date, sha256);
        let audit = Audit::new(actor, Operation::ReconciliationRead, Some(file));
        match self.open_statement_inner(channel, date, sha256).await {
            Ok(text) => {
                let detail = format!("statement read: {} bytes", text.len());
                self.record(&audit, Outcome::Success, Some(detail)).await?;
                Ok(text)
            }
            Err(e) => self.audited(audit, Err(e)).await,
        }
    }

    async fn open_statement_inner(
        &self,
        channel: &ChannelId,
        date: SettlementDate,
        sha256: &str,
    ) -> Result<String, VaultError> {
        let mut text = Vec::new();
        self.read_statement(channel, date, sha256, |chunk| {
            text.extend_from_slice(chunk);
            Ok(())
        })
        .await?;
        let corrupt = || VaultError::Corrupt { what: "statement" };
        let text = String::from_utf8(text).map_err(|_| corrupt())?;
        let matches: bool = subtle::ConstantTimeEq::ct_eq(digest(&text).as_bytes(), sha256.as_bytes()).into();
        if !matches {
            return Err(corrupt());
        }
        Ok(text)
    }
}

impl<S: Store> StatementKeeper<'_, S> {
    /// Takes the next bytes of the file.
    pub async fn push(&mut self, mut bytes: &[u8]) -> Result<(), VaultError> {
        self.received = self.received.saturating_add(bytes.len() as u64);
        if self.kept_already {
            return Ok(());
        }
        while !bytes.is_empty() {
            let take = (CHUNK - self.buffer.len()).min(bytes.len());
            self.buffer.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.buffer.len() == CHUNK {
                self.pending.push(std::mem::take(&mut self.buffer));
                // The last chunk waits for `finish`, once the file checked:
                // its presence is what says the file was kept whole.
                let holds_last =
                    u64::from(self.first_pending) + self.pending.len() as u64 >= u64::from(self.kept.chunks);
                if self.pending.len() >= CHUNKS_PER_WRITE && !holds_last {
                    self.write_pending().await?;
                }
            }
        }
        Ok(())
    }

    async fn write_pending(&mut self) -> Result<(), VaultError> {
        let chunks = std::mem::take(&mut self.pending);
        let first = self.first_pending;
        let (vault, actor, file, of, part) = (
            self.vault,
            &self.actor,
            &self.file,
            self.kept.chunks,
            self.parts_written,
        );
        let result = vault
            .resealing(|| vault.keep_part(actor, file, first, &chunks, of, part))
            .await;
        vault
            .audited(
                Audit::new(actor, Operation::ReconciliationRun, Some(file.clone())),
                result,
            )
            .await?;
        // At most `of` chunks, which fits a u32.
        self.first_pending = first.saturating_add(chunks.len() as u32);
        self.parts_written += 1;
        Ok(())
    }

    /// Writes what is left, once the whole file has arrived and checked.
    pub async fn finish(mut self) -> Result<KeptStatement, VaultError> {
        if self.received != self.kept.bytes {
            return Err(VaultError::Corrupt {
                what: "statement size",
            });
        }
        if !self.kept_already {
            if !self.buffer.is_empty() {
                self.pending.push(std::mem::take(&mut self.buffer));
            }
            if !self.pending.is_empty() {
                self.write_pending().await?;
            }
        }
        Ok(self.kept)
    }

    /// Drops what this keeper wrote of a file that did not check.
    pub async fn abandon(self) -> Result<(), VaultError> {
        if self.kept_already || self.first_pending == 0 {
            return Ok(());
        }
        let mut batch = Batch::new();
        for n in 0..self.first_pending {
            batch.delete(layout::statement_chunk(&self.file, n));
        }
        let audit = Audit::new(&self.actor, Operation::ReconciliationRun, Some(self.file.clone()))
            .with_detail(format!(
                "statement refused: {} chunks kept of it dropped",
                self.first_pending
            ));
        self.vault.commit_once(batch, &audit).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::test_vault::fresh;

    /// Keeps `text` as a run does, arriving in pieces of 300 KiB.
    async fn keep_whole(
        vault: &Vault<crate::store::SledStore>,
        channel: &ChannelId,
        text: &str,
    ) -> KeptStatement {
        let me = Actor::local("test");
        let mut keeper = vault
            .keep_statement(&me, channel, day(), &digest(text), text.len() as u64)
            .await
            .unwrap();
        for piece in text.as_bytes().chunks(300 << 10) {
            keeper.push(piece).await.unwrap();
        }
        keeper.finish().await.unwrap()
    }

    fn day() -> SettlementDate {
        SettlementDate::parse("2026-12-01").unwrap()
    }

    /// Some 2.5 chunks of statement-like text.
    fn long_file() -> String {
        let mut text =
            String::from("trade_time,channel_txn_no,order_id,refund_id,type,status,amount,currency,fee\n");
        let mut n = 0u64;
        while text.len() < CHUNK * 5 / 2 {
            text.push_str(&format!(
                "2026-12-01 10:00:00,T{n:012},pay_{n:032x},,payment,success,100,CNY,0\n"
            ));
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
        let kept = keep_whole(&vault, &channel, &text).await;
        assert_eq!((kept.chunks, kept.bytes), (3, text.len() as u64));
        let again = keep_whole(&vault, &channel, &text).await;
        assert_eq!(again, kept);
        let per_version = vault.records_per_version().await.unwrap();
        assert_eq!(per_version.get(&1), Some(&3), "each chunk is a sealed record");
        let read = vault
            .open_statement(&me, &channel, day(), &kept.sha256)
            .await
            .unwrap();
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
        // A file that did not check is dropped, parts written and all.
        let other = long_file().replace("pay_", "pax_").repeat(4);
        let mut keeper = vault
            .keep_statement(&me, &channel, day(), &digest(&other), other.len() as u64)
            .await
            .unwrap();
        keeper.push(other.as_bytes()).await.unwrap();
        keeper.abandon().await.unwrap();
        assert!(matches!(
            vault.open_statement(&me, &channel, day(), &digest(&other)).await,
            Err(VaultError::NotFound { .. })
        ));
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
        let kept = keep_whole(&vault, &channel, &long_file()).await;
        let file = file_id(&channel, day(), &kept.sha256);
        let store = &vault.store;
        let first = store
            .get(&layout::statement_chunk(&file, 0))
            .await
            .unwrap()
            .unwrap();
        // Chunk 0's bytes under chunk 1's key: its binding names chunk 0.
        let mut batch = Batch::new();
        batch.put(layout::statement_chunk(&file, 1), first);
        store.commit(batch).await.unwrap();
        assert!(vault
            .open_statement(&me, &channel, day(), &kept.sha256)
            .await
            .is_err());
        let mut batch = Batch::new();
        batch.delete(layout::statement_chunk(&file, 1));
        store.commit(batch).await.unwrap();
        assert!(matches!(
            vault.open_statement(&me, &channel, day(), &kept.sha256).await,
            Err(VaultError::Corrupt { .. })
        ));
    }

    #[tokio::test]
    async fn a_file_cut_short_before_its_check_is_kept_again_not_taken_as_whole() {
        let (_dir, vault) = fresh().await;
        let me = Actor::local("test");
        let channel = ChannelId::parse("bank-a").unwrap();
        // Eight whole chunks: one write's worth, the last chunk among them.
        let text = "x".repeat(CHUNKS_PER_WRITE * CHUNK);
        let lie = "y".repeat(text.len());
        // A bank sends other bytes under the file's digest, and the run
        // stops (a crash) before its check: nothing of it may stand.
        let mut keeper = vault
            .keep_statement(&me, &channel, day(), &digest(&text), text.len() as u64)
            .await
            .unwrap();
        keeper.push(lie.as_bytes()).await.unwrap();
        drop(keeper);
        let kept = keep_whole(&vault, &channel, &text).await;
        assert_eq!(kept.chunks, 8);
        let read = vault
            .open_statement(&me, &channel, day(), &kept.sha256)
            .await
            .unwrap();
        assert!(read == text, "the file as sent and checked, not the lie");
    }

    #[tokio::test]
    async fn kept_files_are_rewrapped_so_their_old_key_retires() {
        let (_dir, vault) = fresh().await;
        let me = Actor::local("test");
        let channel = ChannelId::parse("bank-a").unwrap();
        let text = long_file();
        let kept = keep_whole(&vault, &channel, &text).await;
        vault.rotate_data_key(&me, "test").await.unwrap();
        assert!(matches!(
            vault.retire_data_key(&me, 1).await,
            Err(VaultError::KeyVersionInUse {
                version: 1,
                records: 3
            })
        ));
        vault.start_rewrap(&me).await.unwrap();
        while let Some(step) = vault.rewrap_step(&me, 2).await.unwrap() {
            if step.finished_at.is_some() {
                assert_eq!(step.rewrapped, 3);
                break;
            }
        }
        vault.retire_data_key(&me, 1).await.unwrap();
        let read = vault
            .open_statement(&me, &channel, day(), &kept.sha256)
            .await
            .unwrap();
        assert_eq!(read, text);
    }
}
