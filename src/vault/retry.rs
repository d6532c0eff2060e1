//! Optimistic concurrency: read, decide, commit with preconditions, and on a
//! conflict back off and read again. Within one process, writers to the same
//! record first queue on a striped lock (`crate::stripes`) so they rarely
//! conflict at all; the store's preconditions still make it correct across
//! processes or vault nodes.

use super::VaultError;
use std::time::Duration;

const MAX_CONFLICTS: u32 = 200;

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
            let jitter = crate::domain::random::below(u64::from(self.conflicts.min(20)) * 250)?;
            tokio::time::sleep(Duration::from_micros(100 + jitter)).await;
        }
        Ok(())
    }
}
