//! Optimistic concurrency: read, decide, commit with preconditions, and on a
//! conflict read again. Within one process, writers to the same record first
//! queue on a striped lock so they rarely conflict at all; the store's
//! preconditions still make it correct across processes or vault nodes.

use super::VaultError;
use std::time::Duration;
use tokio::sync::{Mutex, MutexGuard};

const STRIPES: usize = 256;
const MAX_CONFLICTS: u32 = 200;

pub(crate) struct Stripes(Vec<Mutex<()>>);

impl Stripes {
    pub(crate) fn new() -> Self {
        Stripes((0..STRIPES).map(|_| Mutex::new(())).collect())
    }

    /// The lock for `key`'s stripe (FNV-1a over the key).
    pub(crate) async fn lock(&self, key: &[u8]) -> MutexGuard<'_, ()> {
        let hash = key.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
        });
        self.0[(hash % STRIPES as u64) as usize].lock().await
    }
}

pub(crate) struct Retry {
    conflicts: u32,
}

impl Retry {
    pub(crate) fn new() -> Self {
        Retry { conflicts: 0 }
    }

    /// Backs off after a conflict; gives up with `Contention` after many.
    pub(crate) async fn after_conflict(&mut self) -> Result<(), VaultError> {
        self.conflicts += 1;
        if self.conflicts > MAX_CONFLICTS {
            return Err(VaultError::Contention);
        }
        if self.conflicts <= 3 {
            tokio::task::yield_now().await;
        } else {
            let jitter = super::crypto::random::below(u64::from(self.conflicts.min(20)) * 250)?;
            tokio::time::sleep(Duration::from_micros(100 + jitter)).await;
        }
        Ok(())
    }
}
