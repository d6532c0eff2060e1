//! A key (or any value) held by version in one process: version 1 always,
//! later versions added as a rotation here or on another node makes them.
//! The audit key, the pepper, the PAN fingerprint key and the anchors'
//! signing key are each held this way.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

pub struct Versions<T> {
    first: Arc<T>,
    /// Versions 2 and up.
    later: RwLock<BTreeMap<u32, Arc<T>>>,
}

impl<T> Versions<T> {
    pub fn new(first: T) -> Self {
        Versions {
            first: Arc::new(first),
            later: RwLock::new(BTreeMap::new()),
        }
    }

    /// Adds `version` unless it is held already (the first one added wins,
    /// so a value other threads may be using is never replaced).
    pub fn add(&self, version: u32, value: T) {
        if version < 2 {
            return;
        }
        self.later
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(version)
            .or_insert_with(|| Arc::new(value));
    }

    /// Drops a later version (one whose rotation never reached the store).
    pub fn forget(&self, version: u32) {
        self.later
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&version);
    }

    /// Version 1 (always held).
    pub fn first(&self) -> Arc<T> {
        Arc::clone(&self.first)
    }

    pub fn get(&self, version: u32) -> Option<Arc<T>> {
        if version == 1 {
            return Some(Arc::clone(&self.first));
        }
        self.later
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&version)
            .cloned()
    }

    pub fn holds(&self, version: u32) -> bool {
        version == 1
            || self
                .later
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .contains_key(&version)
    }

    /// The newest version and its value.
    pub fn newest(&self) -> (u32, Arc<T>) {
        let later = self.later.read().unwrap_or_else(PoisonError::into_inner);
        later.iter().next_back().map_or_else(
            || (1, Arc::clone(&self.first)),
            |(v, value)| (*v, Arc::clone(value)),
        )
    }

    /// Every version from `from` up, newest first; the newest alone when
    /// `from` is past it (never empty).
    pub fn newest_down_to(&self, from: u32) -> Vec<(u32, Arc<T>)> {
        let later = self.later.read().unwrap_or_else(PoisonError::into_inner);
        let newest = later.keys().next_back().copied().unwrap_or(1);
        let from = from.min(newest);
        let mut out: Vec<(u32, Arc<T>)> = later
            .range(from.max(2)..)
            .rev()
            .map(|(v, value)| (*v, Arc::clone(value)))
            .collect();
        if from <= 1 {
            out.push((1, Arc::clone(&self.first)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Versions;

    #[test]
    fn versions_are_added_once_and_listed_newest_first() {
        let held = Versions::new("one");
        assert_eq!(held.newest().0, 1);
        held.add(3, "three");
        held.add(2, "two");
        held.add(3, "another three");
        held.add(1, "another one");
        assert_eq!(*held.newest().1, "three");
        assert_eq!(held.get(1).as_deref(), Some(&"one"));
        let listed = |from| -> Vec<u32> { held.newest_down_to(from).iter().map(|(v, _)| *v).collect() };
        assert_eq!(listed(1), [3, 2, 1]);
        assert_eq!(listed(2), [3, 2]);
        assert_eq!(listed(9), [3], "never empty");
        held.forget(3);
        assert!(!held.holds(3) && held.holds(2) && held.holds(1));
        assert_eq!(held.newest().0, 2);
    }
}
