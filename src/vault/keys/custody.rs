//! Dual control: collecting custodians' KEK shares until enough have come,
//! each from its own identity, then assembling the KEK once. Used to unseal
//! the service and to rotate the KEK. Shares live here only until assembly
//! (or a failed assembly) and are wiped on drop.

use crate::vault::keys::shares::{assemble, Manifest, ShareError, ShareFile, VerifiedShare};
use secrecy::SecretBox;
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CollectError {
    #[error(transparent)]
    Share(#[from] ShareError),
    #[error("this share set is not the one that holds this store's KEK")]
    NotThisStoresSet,
    #[error("this share set already holds the KEK; a rotation needs a new set")]
    CurrentSet,
    #[error("share {index} was already submitted; it counts once")]
    DuplicateShare { index: u8 },
    #[error("this identity already submitted a share; each custodian counts once")]
    DuplicateCustodian,
    #[error("this share was sealed to {owner}; only that custodian may submit it")]
    OtherCustodian { owner: String },
}

impl CollectError {
    /// A stable code for problem documents and the audit trail.
    pub fn rule(&self) -> &'static str {
        match self {
            CollectError::Share(ShareError::Format(_)) => "format",
            CollectError::Share(ShareError::Digest { .. }) => "digest_mismatch",
            CollectError::Share(ShareError::OtherSet) => "other_set",
            CollectError::Share(ShareError::CheckValue) => "check_value_mismatch",
            CollectError::Share(_) => "invalid",
            CollectError::NotThisStoresSet => "not_this_stores_set",
            CollectError::CurrentSet => "current_set",
            CollectError::DuplicateShare { .. } => "duplicate_share",
            CollectError::DuplicateCustodian => "duplicate_custodian",
            CollectError::OtherCustodian { .. } => "other_custodian",
        }
    }
}

/// Where collection stands after a submission.
pub enum Progress {
    Counted {
        have: usize,
        need: u8,
    },
    /// Enough shares: the KEK, checked against the set's key check value.
    Assembled {
        kek: SecretBox<[u8; 32]>,
        manifest: Manifest,
        custodians: Vec<String>,
    },
}

struct Submitted {
    custodian: String,
    share: VerifiedShare,
}

/// What a collector accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Accept {
    /// Only this set (the store's custody record names it).
    Only(String),
    /// Any set but this one (a KEK rotation needs new shares).
    AnyBut(String),
    /// Any set (a store that has never been unsealed from shares).
    Any,
}

impl Accept {
    fn admits(&self, set: &str) -> bool {
        match self {
            Accept::Only(expected) => set == expected,
            Accept::AnyBut(current) => set != current,
            Accept::Any => true,
        }
    }
}

pub struct ShareCollector {
    accept: Accept,
    pending: BTreeMap<u8, Submitted>,
}

impl ShareCollector {
    pub fn new(accept: Accept) -> Self {
        ShareCollector {
            accept,
            pending: BTreeMap::new(),
        }
    }

    /// Accepts `accept` from now on, keeping only the pending shares it
    /// admits (another node rotated meanwhile: the shares of the set it
    /// rotated to still count towards adopting it here).
    pub fn retarget(&mut self, accept: Accept) {
        self.pending
            .retain(|_, s| accept.admits(&s.share.manifest.set_id));
        self.accept = accept;
    }

    /// (shares counted, threshold, the custodians who submitted them)
    pub fn status(&self) -> (usize, Option<u8>, Vec<String>) {
        let need = self.pending.values().next().map(|s| s.share.manifest.threshold);
        let who = self.pending.values().map(|s| s.custodian.clone()).collect();
        (self.pending.len(), need, who)
    }

    /// Forgets (and wipes) every pending share.
    pub fn clear(&mut self) {
        self.pending.clear();
    }

    /// Counts `file` from `custodian`, or says why it does not count. A
    /// refused share changes nothing; a failed assembly clears every
    /// pending share, since which one was wrong cannot be told.
    pub fn submit(&mut self, custodian: &str, file: &ShareFile) -> Result<Progress, CollectError> {
        let share = file.verify()?;
        if let Some(owner) = file.custodian.as_deref().filter(|owner| *owner != custodian) {
            return Err(CollectError::OtherCustodian {
                owner: owner.to_owned(),
            });
        }
        let set = &share.manifest.set_id;
        if !self.accept.admits(set) {
            return Err(match self.accept {
                Accept::AnyBut(_) => CollectError::CurrentSet,
                _ => CollectError::NotThisStoresSet,
            });
        }
        if let Some(first) = self.pending.values().next() {
            if first.share.manifest != share.manifest {
                return Err(ShareError::OtherSet.into());
            }
        }
        if self.pending.contains_key(&share.index) {
            return Err(CollectError::DuplicateShare { index: share.index });
        }
        if self.pending.values().any(|s| s.custodian == custodian) {
            return Err(CollectError::DuplicateCustodian);
        }
        let need = share.manifest.threshold;
        self.pending.insert(
            share.index,
            Submitted {
                custodian: custodian.to_owned(),
                share,
            },
        );
        if self.pending.len() < usize::from(need) {
            return Ok(Progress::Counted {
                have: self.pending.len(),
                need,
            });
        }
        let shares: Vec<&VerifiedShare> = self.pending.values().map(|s| &s.share).collect();
        let assembled = assemble(&shares);
        let manifest = shares.first().map(|s| s.manifest.clone());
        let custodians = self.pending.values().map(|s| s.custodian.clone()).collect();
        self.pending.clear();
        match (assembled, manifest) {
            (Ok(kek), Some(manifest)) => Ok(Progress::Assembled {
                kek,
                manifest,
                custodians,
            }),
            (Err(e), _) => Err(e.into()),
            (Ok(_), None) => Err(ShareError::NotEnough { have: 0, need }.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::keys::shares::split_new_kek;
    use secrecy::ExposeSecret;

    #[test]
    fn each_share_and_each_custodian_counts_once() {
        let (kek, files) = split_new_kek(3, 5).unwrap();
        let mut c = ShareCollector::new(Accept::Any);
        assert!(matches!(
            c.submit("alice", &files[0]),
            Ok(Progress::Counted { have: 1, need: 3 })
        ));
        assert!(matches!(
            c.submit("bob", &files[0]),
            Err(CollectError::DuplicateShare { index: 1 })
        ));
        assert!(matches!(
            c.submit("alice", &files[1]),
            Err(CollectError::DuplicateCustodian)
        ));
        assert!(matches!(
            c.submit("bob", &files[1]),
            Ok(Progress::Counted { have: 2, need: 3 })
        ));
        match c.submit("carol", &files[4]) {
            Ok(Progress::Assembled {
                kek: got, custodians, ..
            }) => {
                assert_eq!(got.expose_secret(), kek.expose_secret());
                assert_eq!(custodians.len(), 3);
            }
            _ => panic!("three distinct shares from three custodians assemble"),
        }
        assert_eq!(c.status().0, 0, "shares are dropped after assembly");
    }

    /// A share sealed to a custodian names them: only they may submit it.
    #[test]
    fn a_share_naming_its_custodian_counts_from_that_custodian_only() {
        let (_, files) = split_new_kek(2, 3).unwrap();
        let mut alices = files[0].clone();
        alices.custodian = Some("alice".into());
        let mut c = ShareCollector::new(Accept::Any);
        assert!(matches!(
            c.submit("bob", &alices),
            Err(CollectError::OtherCustodian { owner }) if owner == "alice"
        ));
        assert_eq!(c.status().0, 0, "a refused share changes nothing");
        assert!(matches!(
            c.submit("alice", &alices),
            Ok(Progress::Counted { have: 1, need: 2 })
        ));
    }

    #[test]
    fn sets_are_kept_apart() {
        let (_, a) = split_new_kek(2, 3).unwrap();
        let (_, b) = split_new_kek(2, 3).unwrap();
        let mut only = ShareCollector::new(Accept::Only(a[0].manifest.set_id.clone()));
        assert!(matches!(
            only.submit("x", &b[0]),
            Err(CollectError::NotThisStoresSet)
        ));
        let mut rotation = ShareCollector::new(Accept::AnyBut(a[0].manifest.set_id.clone()));
        assert!(matches!(
            rotation.submit("x", &a[0]),
            Err(CollectError::CurrentSet)
        ));
        let mut any = ShareCollector::new(Accept::Any);
        any.submit("x", &a[0]).ok();
        assert!(matches!(
            any.submit("y", &b[1]),
            Err(CollectError::Share(ShareError::OtherSet))
        ));
    }
}
