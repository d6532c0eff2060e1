//! Keyed fingerprints for duplicate detection: HMAC-SHA256 under a key of its
//! own, never a bare hash of a PAN (PCI DSS 3.5.1.1). A bare hash of a 16-digit
//! PAN with a known BIN and Luhn digit falls to brute force in seconds.

use ring::hmac;
use secrecy::{ExposeSecret, SecretBox};

/// The raw key stays in a `SecretBox`; ring's precomputed HMAC state is kept
/// for speed and is not zeroized by ring on drop (documented in SECURITY.md).
pub(crate) struct FingerprintKey {
    version: u32,
    _raw: SecretBox<[u8; 32]>,
    key: hmac::Key,
}

/// 32 bytes of HMAC output, shown as hex in store keys.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Fingerprint(pub(crate) [u8; 32]);

impl FingerprintKey {
    pub(crate) fn new(version: u32, raw: SecretBox<[u8; 32]>) -> Self {
        let key = hmac::Key::new(hmac::HMAC_SHA256, raw.expose_secret());
        FingerprintKey {
            version,
            _raw: raw,
            key,
        }
    }

    pub(crate) fn version(&self) -> u32 {
        self.version
    }

    /// `purpose` separates fingerprints of different data (a PAN and an ID
    /// number with the same digits must not collide).
    pub(crate) fn fingerprint(&self, purpose: &str, value: &[u8]) -> Fingerprint {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(&(purpose.len() as u32).to_be_bytes());
        ctx.update(purpose.as_bytes());
        ctx.update(value);
        let tag = ctx.sign();
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        Fingerprint(out)
    }
}

impl FingerprintKey {
    /// `fingerprint` of several values, each length-prefixed so that no two
    /// different lists feed the same bytes, without joining them into one
    /// buffer first (a request body may hold a PAN).
    pub(crate) fn fingerprint_parts(&self, purpose: &str, parts: &[&[u8]]) -> Fingerprint {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(&(purpose.len() as u32).to_be_bytes());
        ctx.update(purpose.as_bytes());
        for part in parts {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part);
        }
        let tag = ctx.sign();
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        Fingerprint(out)
    }
}

impl Fingerprint {
    pub(crate) fn to_hex(self) -> String {
        crate::hex::encode(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_and_purpose_separated() {
        let a = FingerprintKey::new(1, SecretBox::new(Box::new([1; 32])));
        let b = FingerprintKey::new(1, SecretBox::new(Box::new([2; 32])));
        let pan = b"4242424242424242";
        assert!(a.fingerprint("pan", pan) == a.fingerprint("pan", pan));
        assert!(a.fingerprint("pan", pan) != b.fingerprint("pan", pan));
        assert!(a.fingerprint("pan", pan) != a.fingerprint("token", pan));
    }

    #[test]
    fn matches_rfc_4231_hmac_sha256_when_unframed() {
        // RFC 4231 test case 2 through ring directly, proving the primitive.
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"Jefe");
        let tag = hmac::sign(&key, b"what do ya want for nothing?");
        assert_eq!(
            crate::hex::encode(tag.as_ref()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
