//! The audit sink: a copy of this node's chain that the vault can only
//! append to, as a file of JSON lines (the lines an export has), written
//! as records commit, for auditors to ship where the vault cannot rewrite
//! it (as Vault's audit devices do). The sink follows the stored chain
//! rather than the commit path, so it is equal to the export by
//! construction, picks up where it stopped after a restart or a failed
//! write, and never slows a request.

use super::chain::ChainName;
use super::read::{self, ReadError};
use super::record::ChainRecord;
use crate::store::Store;
use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// Records copied per store read.
const PAGE: usize = 512;

/// How much of the file's end is read at start to find its last line: far
/// above one record's line.
const TAIL_BYTES: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    #[error("audit sink {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("audit sink {path}: its last line is not an audit record of {chain}: {why}")]
    ForeignFile {
        path: String,
        chain: String,
        why: String,
    },
    #[error(
        "audit sink {path} holds record {written}, but {chain} ends at {head}: the stored chain was rewound"
    )]
    Rewound {
        path: String,
        chain: String,
        written: u64,
        head: u64,
    },
    #[error("audit sink {path}: record {seq} of {chain} is missing from the store")]
    Gap { path: String, chain: String, seq: u64 },
    #[error(transparent)]
    Read(#[from] ReadError),
}

pub struct Sink {
    path: PathBuf,
    file: tokio::fs::File,
    chain: ChainName,
    /// The last sequence number in the file.
    written: u64,
    /// The file's length after its last complete line.
    len: u64,
}

impl Sink {
    /// Opens (or creates) the file and finds the last record it holds. A
    /// line cut short by a crash mid-write is cut off: its record is
    /// written again.
    pub async fn open(path: &Path, chain: ChainName) -> Result<Self, SinkError> {
        let io = |source| SinkError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut file = tokio::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .await
            .map_err(io)?;
        let len = file.metadata().await.map_err(io)?.len();
        let start = len.saturating_sub(TAIL_BYTES);
        file.seek(SeekFrom::Start(start)).await.map_err(io)?;
        let mut tail = Vec::new();
        file.read_to_end(&mut tail).await.map_err(io)?;
        let complete = tail.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let complete_len = start + complete as u64;
        if complete_len < len {
            file.set_len(complete_len).await.map_err(io)?;
        }
        let last_line = tail[..complete]
            .split(|b| *b == b'\n')
            .rfind(|line| !line.is_empty());
        let mut sink = Sink {
            path: path.to_path_buf(),
            file,
            chain,
            written: 0,
            len: complete_len,
        };
        if let Some(line) = last_line {
            sink.written = sink.last_seq(line)?;
        }
        Ok(sink)
    }

    /// The sequence number of `line`, which must be a record of this chain.
    fn last_seq(&self, line: &[u8]) -> Result<u64, SinkError> {
        let foreign = |why: String| SinkError::ForeignFile {
            path: self.path.display().to_string(),
            chain: self.chain.to_string(),
            why,
        };
        let value: serde_json::Value = serde_json::from_slice(line).map_err(|e| foreign(e.to_string()))?;
        let node = value.get("node").and_then(serde_json::Value::as_str);
        if node != self.chain.node().map(|n| n.as_str()) {
            return Err(foreign(format!("it is of node {node:?}")));
        }
        value
            .get("seq")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| foreign("it has no seq".into()))
    }

    /// The last sequence number the file holds.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Appends every stored record after the file's last, flushed to disk
    /// page by page. Returns the last sequence number written.
    pub async fn catch_up<S: Store>(&mut self, store: &S) -> Result<u64, SinkError> {
        loop {
            let records = read::page(store, &self.chain, self.written, PAGE).await?;
            let Some(first) = records.first() else {
                let head = read::head(store, &self.chain).await?;
                if head.seq < self.written {
                    return Err(SinkError::Rewound {
                        path: self.path.display().to_string(),
                        chain: self.chain.to_string(),
                        written: self.written,
                        head: head.seq,
                    });
                }
                return Ok(self.written);
            };
            if first.seq != self.written + 1 {
                return Err(SinkError::Gap {
                    path: self.path.display().to_string(),
                    chain: self.chain.to_string(),
                    seq: self.written + 1,
                });
            }
            let mut lines = Vec::new();
            let mut last = self.written;
            for record in records {
                last = record.seq;
                let line = ChainRecord {
                    chain: self.chain.clone(),
                    record,
                };
                serde_json::to_writer(&mut lines, &line.export_line()).map_err(|e| SinkError::Io {
                    path: self.path.display().to_string(),
                    source: e.into(),
                })?;
                lines.push(b'\n');
            }
            self.append(&lines).await?;
            self.written = last;
        }
    }

    /// A failed write is cut off again, so the file never holds half a
    /// line before the retry's whole ones.
    async fn append(&mut self, lines: &[u8]) -> Result<(), SinkError> {
        let written = match self.file.write_all(lines).await {
            Ok(()) => self.file.sync_data().await,
            Err(e) => Err(e),
        };
        match written {
            Ok(()) => {
                self.len += lines.len() as u64;
                Ok(())
            }
            Err(source) => {
                if let Err(e) = self.file.set_len(self.len).await {
                    tracing::error!(error = %e, path = %self.path.display(), "could not cut a failed audit sink write off");
                }
                Err(SinkError::Io {
                    path: self.path.display().to_string(),
                    source,
                })
            }
        }
    }
}
