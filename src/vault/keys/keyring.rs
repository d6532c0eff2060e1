//! The data keys in memory: every version that can still open records, the
//! current one for new writes, and each version's encryption budget.
//!
//! Random 96-bit nonces are safe for about 2^32 encryptions under one key
//! (NIST SP 800-38D, 8.3). Each version gets a budget far below that, counted
//! against durable reservations: the store records how far each version's
//! counter may go before the first encryption of a block, so a crash can only
//! waste budget, never reuse it.

use crate::domain::time::Timestamp;
use crate::vault::crypto::aad::Binding;
use crate::vault::crypto::envelope::{Header, SealingKey};
use crate::vault::crypto::fingerprint::FingerprintKey;
use crate::vault::crypto::CryptoError;
use crate::vault::keys::fingerprints::FingerprintKeys;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use zeroize::Zeroizing;

/// How many encryptions one data key version may perform, and how many are
/// reserved in the store at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyBudget {
    pub encryptions_per_key: u64,
    pub reservation_block: u64,
}

impl Default for KeyBudget {
    /// 2^30 per version: with random nonces the chance of any nonce repeating
    /// is then below 2^-37. One store write reserves 2^16 encryptions.
    fn default() -> Self {
        KeyBudget {
            encryptions_per_key: 1 << 30,
            reservation_block: 1 << 16,
        }
    }
}

pub(crate) struct DataKey {
    sealer: SealingKey,
    used: AtomicU64,
    reserved_through: AtomicU64,
    created_at: Timestamp,
}

impl DataKey {
    /// `reserved_through` comes from the store; everything below it may have
    /// been used before a restart, so counting starts there.
    pub(crate) fn new(sealer: SealingKey, reserved_through: u64, created_at: Timestamp) -> Self {
        DataKey {
            sealer,
            used: AtomicU64::new(reserved_through),
            reserved_through: AtomicU64::new(reserved_through),
            created_at,
        }
    }

    pub(crate) fn created_at(&self) -> Timestamp {
        self.created_at
    }

    pub(crate) fn version(&self) -> u32 {
        self.sealer.version()
    }

    pub(crate) fn encryptions(&self) -> u64 {
        self.used
            .load(Ordering::Relaxed)
            .min(self.reserved_through.load(Ordering::Relaxed))
    }

    /// Counts one encryption if the reserved block has room. A compare-and-swap
    /// loop, so a refused attempt never touches the count.
    fn take_one(&self) -> bool {
        let mut used = self.used.load(Ordering::Acquire);
        loop {
            if used >= self.reserved_through.load(Ordering::Acquire) {
                return false;
            }
            match self
                .used
                .compare_exchange_weak(used, used + 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(actual) => used = actual,
            }
        }
    }

    pub(crate) fn has_room(&self) -> bool {
        self.used.load(Ordering::Acquire) < self.reserved_through.load(Ordering::Acquire)
    }

    /// This node now owns encryptions `start..end` of the version's budget
    /// (reserved durably in the store). Other nodes own the blocks before.
    pub(crate) fn begin_block(&self, start: u64, end: u64) {
        self.used.fetch_max(start, Ordering::AcqRel);
        self.reserved_through.fetch_max(end, Ordering::AcqRel);
    }
}

pub(crate) enum SealOutcome {
    Sealed {
        sealed: Vec<u8>,
        version: u32,
    },
    /// The current version's reserved block is used up: reserve more (or
    /// rotate) in the store, then try again.
    NeedsBudget {
        version: u32,
    },
}

pub(crate) struct Keyring {
    keys: RwLock<BTreeMap<u32, Arc<DataKey>>>,
    fingerprints: FingerprintKeys,
}

impl Keyring {
    pub(crate) fn new(keys: Vec<DataKey>, fingerprints: FingerprintKeys) -> Self {
        let keys = keys.into_iter().map(|k| (k.version(), Arc::new(k))).collect();
        Keyring {
            keys: RwLock::new(keys),
            fingerprints,
        }
    }

    /// The newest version: all new writes use it.
    pub(crate) fn current(&self) -> Option<Arc<DataKey>> {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        keys.values().next_back().cloned()
    }

    pub(crate) fn get(&self, version: u32) -> Option<Arc<DataKey>> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&version)
            .cloned()
    }

    pub(crate) fn versions(&self) -> Vec<Arc<DataKey>> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    pub(crate) fn add(&self, key: DataKey) {
        self.keys
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.version(), Arc::new(key));
    }

    /// Forgets a retired version: nothing in this process can seal or open
    /// with it afterwards.
    pub(crate) fn remove(&self, version: u32) {
        self.keys
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&version);
    }

    pub(crate) fn fingerprints(&self) -> &FingerprintKeys {
        &self.fingerprints
    }

    /// Keys request digests (idempotency, one-time codes, audit objects):
    /// the fingerprint key's version 1, under purposes of its own, so a
    /// fingerprint rotation changes none of them.
    pub(crate) fn request_key(&self) -> Arc<FingerprintKey> {
        self.fingerprints.first()
    }

    pub(crate) fn try_seal(
        &self,
        binding: &Binding<'_>,
        plaintext: &[u8],
    ) -> Result<SealOutcome, CryptoError> {
        let key = self.current().ok_or(CryptoError::UnknownKeyVersion(0))?;
        if !key.take_one() {
            return Ok(SealOutcome::NeedsBudget {
                version: key.version(),
            });
        }
        let sealed = key.sealer.seal(binding, plaintext)?;
        Ok(SealOutcome::Sealed {
            sealed,
            version: key.version(),
        })
    }

    pub(crate) fn open(
        &self,
        binding: &Binding<'_>,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let version = Header::parse(sealed)?.key_version;
        let key = self.get(version).ok_or(CryptoError::UnknownKeyVersion(version))?;
        key.sealer.open(binding, sealed)
    }
}
