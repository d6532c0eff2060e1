//! Striped async locks: callers touching the same key queue on one of a
//! fixed set of mutexes instead of racing, without a lock per key.

//! A task holds at most one stripe of one set at a time, or takes sets in
//! one fixed order: two keys may share a stripe, so nesting two locks of
//! the same set could wait on itself.

use tokio::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

const STRIPES: usize = 256;

fn stripe(key: &[u8]) -> usize {
    let hash = key.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    });
    (hash % STRIPES as u64) as usize
}

pub(crate) struct Stripes(Vec<Mutex<()>>);

impl Stripes {
    pub(crate) fn new() -> Self {
        Stripes((0..STRIPES).map(|_| Mutex::new(())).collect())
    }

    /// The lock for `key`'s stripe (FNV-1a over the key).
    pub(crate) async fn lock(&self, key: &[u8]) -> MutexGuard<'_, ()> {
        self.0[stripe(key)].lock().await
    }
}

/// Striped read-write locks: many readers of a key at once (debits on one
/// binding), or one writer (unbinding it).
pub(crate) struct RwStripes(Vec<RwLock<()>>);

impl RwStripes {
    pub(crate) fn new() -> Self {
        RwStripes((0..STRIPES).map(|_| RwLock::new(())).collect())
    }

    pub(crate) async fn read(&self, key: &[u8]) -> RwLockReadGuard<'_, ()> {
        self.0[stripe(key)].read().await
    }

    pub(crate) async fn write(&self, key: &[u8]) -> RwLockWriteGuard<'_, ()> {
        self.0[stripe(key)].write().await
    }
}
