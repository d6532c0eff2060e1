//! Split knowledge of the key-encrypting key: the KEK is split M-of-N with
//! Shamir's scheme over GF(256) (the `blahaj` crate), one share file per
//! custodian. Fewer than M shares say nothing about the KEK.
//!
//! Shamir shares carry no integrity of their own, so every share file also
//! carries the set's public *manifest*: a random set id, M and N, a SHA-256
//! digest of each share, and a key check value (an HMAC of a fixed label
//! under the KEK). A corrupted share is caught by its digest before it is
//! counted; a wrong assembly is caught by the check value before the KEK is
//! used. Digests of 33 random bytes and an HMAC reveal nothing usable.

use crate::domain::random;
use ring::{digest, hmac};
use secrecy::{ExposeSecret, SecretBox};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

pub const SHARE_FORMAT: &str = "tokenvault-kek-share/1";
const CHECK_LABEL: &[u8] = b"tokenvault kek check value v1";
const DIGEST_LABEL: &[u8] = b"tokenvault kek share digest v1";
/// Index byte plus one share byte per KEK byte.
const SHARE_LEN: usize = 33;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShareError {
    #[error("threshold must be 2..=shares and shares at most 16 (got {threshold}-of-{shares})")]
    Parameters { threshold: u8, shares: u8 },
    #[error("not a share file: {0}")]
    Format(String),
    #[error("share {index} does not match the digest its set recorded: corrupted or not from this set")]
    Digest { index: u8 },
    #[error("the share belongs to another share set than the ones already submitted")]
    OtherSet,
    #[error("the assembled key fails the key check value: a share is wrong")]
    CheckValue,
    #[error("{have} of {need} shares: not enough to assemble the key")]
    NotEnough { have: usize, need: u8 },
    #[error("the operating system's random generator failed")]
    Random,
    #[error("the custodian's key is not a P-256 key: {0}")]
    RecipientKey(String),
    #[error("this share is sealed to {custodian}, not to this key")]
    NotYours { custodian: String },
    #[error("the sealed share was altered and does not open")]
    Altered,
}

/// The public part every share of one set carries, identically.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub set_id: String,
    pub threshold: u8,
    pub shares: u8,
    /// HMAC-SHA256 of a fixed label under the KEK, hex.
    pub kek_check: String,
    /// SHA-256 of each share (index 1..=N in order), hex.
    pub share_digests: Vec<String>,
}

/// One custodian's share file (JSON). `Debug` never shows the share.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareFile {
    pub format: String,
    pub index: u8,
    pub manifest: Manifest,
    /// Index byte followed by 32 share bytes, hex.
    pub share: Zeroizing<String>,
    /// The only identity that may submit this share, when it was sealed
    /// to a custodian's certificate (`sealed_share`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custodian: Option<String>,
}

impl std::fmt::Debug for ShareFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareFile")
            .field("index", &self.index)
            .field("set_id", &self.manifest.set_id)
            .field("share", &"[redacted]")
            .finish()
    }
}

/// A share that parsed and matched its own set's digest.
pub struct VerifiedShare {
    pub index: u8,
    pub manifest: Manifest,
    bytes: Zeroizing<Vec<u8>>,
}

fn share_digest(set_id: &str, bytes: &[u8]) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(DIGEST_LABEL);
    ctx.update(set_id.as_bytes());
    ctx.update(bytes);
    crate::hex::encode(ctx.finish().as_ref())
}

/// The key check value of `kek`, hex.
pub fn kek_check(kek: &SecretBox<[u8; 32]>) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, kek.expose_secret());
    crate::hex::encode(hmac::sign(&key, CHECK_LABEL).as_ref())
}

/// A fresh random KEK and its N share files.
pub fn split_new_kek(threshold: u8, shares: u8) -> Result<(SecretBox<[u8; 32]>, Vec<ShareFile>), ShareError> {
    if threshold < 2 || threshold > shares || shares > 16 {
        return Err(ShareError::Parameters { threshold, shares });
    }
    let mut raw = Box::new([0u8; 32]);
    random::fill(&mut raw[..]).map_err(|_| ShareError::Random)?;
    let kek = SecretBox::new(raw);
    let set_id = crate::hex::encode(&random::array::<16>().map_err(|_| ShareError::Random)?);
    let dealt: Vec<Zeroizing<Vec<u8>>> = blahaj::Sharks(threshold)
        .dealer(kek.expose_secret())
        .take(usize::from(shares))
        .map(|share| Zeroizing::new(Vec::from(&share)))
        .collect();
    let manifest = Manifest {
        set_id: set_id.clone(),
        threshold,
        shares,
        kek_check: kek_check(&kek),
        share_digests: dealt.iter().map(|b| share_digest(&set_id, b)).collect(),
    };
    let files = dealt
        .iter()
        .map(|bytes| ShareFile {
            format: SHARE_FORMAT.to_owned(),
            index: bytes[0],
            manifest: manifest.clone(),
            share: Zeroizing::new(crate::hex::encode(bytes)),
            custodian: None,
        })
        .collect();
    Ok((kek, files))
}

impl ShareFile {
    /// Parses the share and checks it against its set's recorded digest.
    pub fn verify(&self) -> Result<VerifiedShare, ShareError> {
        let m = &self.manifest;
        if self.format != SHARE_FORMAT {
            return Err(ShareError::Format(format!("format is not {SHARE_FORMAT}")));
        }
        if m.threshold < 2 || m.threshold > m.shares || m.share_digests.len() != usize::from(m.shares) {
            return Err(ShareError::Format(
                "manifest threshold, shares and digests disagree".into(),
            ));
        }
        if self.index == 0 || self.index > m.shares {
            return Err(ShareError::Format(format!("index must be 1..={}", m.shares)));
        }
        let mut bytes = Zeroizing::new(vec![0u8; SHARE_LEN]);
        if self.share.len() != SHARE_LEN * 2 || crate::hex::decode_into(&self.share, &mut bytes).is_none() {
            return Err(ShareError::Format(format!(
                "share must be {} hex digits",
                SHARE_LEN * 2
            )));
        }
        let expected = &m.share_digests[usize::from(self.index) - 1];
        let actual = share_digest(&m.set_id, &bytes);
        let digest_ok: bool = actual.as_bytes().ct_eq(expected.as_bytes()).into();
        if bytes[0] != self.index || !digest_ok {
            return Err(ShareError::Digest { index: self.index });
        }
        Ok(VerifiedShare {
            index: self.index,
            manifest: m.clone(),
            bytes,
        })
    }
}

/// Assembles the KEK from at least `threshold` verified shares of one set
/// and checks it against the set's key check value.
pub fn assemble(shares: &[&VerifiedShare]) -> Result<SecretBox<[u8; 32]>, ShareError> {
    let Some(first) = shares.first() else {
        return Err(ShareError::NotEnough { have: 0, need: 2 });
    };
    let manifest = &first.manifest;
    if shares.iter().any(|s| s.manifest != *manifest) {
        return Err(ShareError::OtherSet);
    }
    let parsed: Vec<blahaj::Share> = shares
        .iter()
        .filter_map(|s| blahaj::Share::try_from(s.bytes.as_slice()).ok())
        .collect();
    let recovered = blahaj::Sharks(manifest.threshold)
        .recover(&parsed)
        .map(Zeroizing::new)
        .map_err(|_| ShareError::NotEnough {
            have: shares.len(),
            need: manifest.threshold,
        })?;
    let mut raw = Box::new([0u8; 32]);
    if recovered.len() != raw.len() {
        return Err(ShareError::CheckValue);
    }
    raw.copy_from_slice(&recovered);
    let kek = SecretBox::new(raw);
    let check_ok: bool = kek_check(&kek)
        .as_bytes()
        .ct_eq(manifest.kek_check.as_bytes())
        .into();
    if !check_ok {
        return Err(ShareError::CheckValue);
    }
    Ok(kek)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verified(files: &[ShareFile], pick: &[usize]) -> Vec<VerifiedShare> {
        pick.iter().map(|&i| files[i].verify().unwrap()).collect()
    }

    #[test]
    fn any_threshold_subset_assembles_the_kek_and_fewer_do_not() {
        let (kek, files) = split_new_kek(3, 5).unwrap();
        assert_eq!(files.len(), 5);
        for pick in [[0, 1, 2], [0, 2, 4], [4, 3, 1], [1, 2, 3]] {
            let shares = verified(&files, &pick);
            let refs: Vec<&VerifiedShare> = shares.iter().collect();
            assert_eq!(assemble(&refs).unwrap().expose_secret(), kek.expose_secret());
        }
        let two = verified(&files, &[0, 3]);
        let refs: Vec<&VerifiedShare> = two.iter().collect();
        assert_eq!(
            assemble(&refs).err(),
            Some(ShareError::NotEnough { have: 2, need: 3 })
        );
    }

    #[test]
    fn a_corrupted_share_is_caught_by_its_digest() {
        let (_, files) = split_new_kek(2, 3).unwrap();
        let mut bad = files[1].clone();
        let mut text = bad.share.to_string();
        let flipped = if text.ends_with('0') { '1' } else { '0' };
        text.pop();
        text.push(flipped);
        bad.share = Zeroizing::new(text);
        assert_eq!(bad.verify().err(), Some(ShareError::Digest { index: 2 }));
    }

    #[test]
    fn a_forged_manifest_is_caught_by_the_check_value_or_set_mismatch() {
        let (_, files) = split_new_kek(2, 3).unwrap();
        // A forger rewrites a share and its digest consistently: the digest
        // passes, but the assembled key fails the key check value.
        let mut forged = files[0].clone();
        let mut bytes = [0u8; SHARE_LEN];
        crate::hex::decode_into(&forged.share, &mut bytes).unwrap();
        bytes[5] ^= 0x40;
        forged.share = Zeroizing::new(crate::hex::encode(&bytes));
        let mut manifest = forged.manifest.clone();
        manifest.share_digests[0] = share_digest(&manifest.set_id, &bytes);
        forged.manifest = manifest;
        let a = forged.verify().unwrap();
        let b = files[1].verify().unwrap();
        assert_eq!(assemble(&[&a, &b]).err(), Some(ShareError::OtherSet));
        let (_, other_set) = split_new_kek(2, 3).unwrap();
        let c = other_set[2].verify().unwrap();
        assert_eq!(assemble(&[&b, &c]).err(), Some(ShareError::OtherSet));
        // Same manifest everywhere, one share wrong: the check value says so.
        let mut wrong = files[2].verify().unwrap();
        wrong.bytes[7] ^= 1;
        assert_eq!(assemble(&[&b, &wrong]).err(), Some(ShareError::CheckValue));
    }

    #[test]
    fn parameters_and_debug_output() {
        assert!(split_new_kek(1, 3).is_err());
        assert!(split_new_kek(4, 3).is_err());
        assert!(split_new_kek(2, 17).is_err());
        let (_, files) = split_new_kek(2, 2).unwrap();
        let shown = format!("{:?}", files[0]);
        assert!(!shown.contains(files[0].share.as_str()));
        assert!(shown.contains("redacted"));
    }
}
