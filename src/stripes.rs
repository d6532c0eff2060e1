//! Striped async locks: callers touching the same key queue on one of a
//! fixed set of mutexes instead of racing, without a lock per key.

use tokio::sync::{Mutex, MutexGuard};

const STRIPES: usize = 256;

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
