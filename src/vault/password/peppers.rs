//! The pepper's versions in memory. New hashes use the newest; a hash
//! names its version in its PHC string (`keyid`), so each is checked with
//! the pepper it was made with, and moved to the newest at its next
//! successful check.

use secrecy::SecretBox;
use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

pub(crate) struct Peppers {
    first: Arc<SecretBox<[u8; 32]>>,
    /// Versions 2 and up.
    later: RwLock<BTreeMap<u32, Arc<SecretBox<[u8; 32]>>>>,
}

impl Peppers {
    pub(crate) fn new(first: SecretBox<[u8; 32]>) -> Self {
        Peppers {
            first: Arc::new(first),
            later: RwLock::new(BTreeMap::new()),
        }
    }

    pub(crate) fn add(&self, version: u32, pepper: SecretBox<[u8; 32]>) {
        if version < 2 {
            return;
        }
        self.later
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(version)
            .or_insert_with(|| Arc::new(pepper));
    }

    pub(crate) fn holds(&self, version: u32) -> bool {
        self.get(version).is_some()
    }

    pub(crate) fn get(&self, version: u32) -> Option<Arc<SecretBox<[u8; 32]>>> {
        if version == 1 {
            return Some(Arc::clone(&self.first));
        }
        self.later
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&version)
            .cloned()
    }

    /// The newest version and its pepper.
    pub(crate) fn newest(&self) -> (u32, Arc<SecretBox<[u8; 32]>>) {
        let later = self.later.read().unwrap_or_else(PoisonError::into_inner);
        later
            .iter()
            .next_back()
            .map_or_else(|| (1, Arc::clone(&self.first)), |(v, p)| (*v, Arc::clone(p)))
    }
}
