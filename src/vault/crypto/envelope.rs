//! AES-256-GCM sealing with a random 96-bit nonce. The stored form names the
//! key version, so any record can be opened after rotation:
//!
//! `0x01 | key version (u32 BE) | nonce (12) | ciphertext | tag (16)`

use super::aad::Binding;
use super::CryptoError;
use crate::domain::random;
use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use secrecy::{ExposeSecret, SecretBox};

const FORMAT: u8 = 1;
const HEADER: usize = 1 + 4 + 12;
const TAG: usize = 16;

/// An AES-256-GCM key of one version. The cipher's key schedule is zeroized
/// on drop (aes-gcm's `zeroize` feature).
pub(crate) struct SealingKey {
    version: u32,
    cipher: Aes256Gcm,
}

impl SealingKey {
    pub(crate) fn new(version: u32, key: &SecretBox<[u8; 32]>) -> Self {
        SealingKey {
            version,
            cipher: Aes256Gcm::new(key.expose_secret().into()),
        }
    }

    pub(crate) fn version(&self) -> u32 {
        self.version
    }

    pub(crate) fn seal(&self, binding: &Binding<'_>, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let nonce = random::array::<12>()?;
        let aad = binding.encode(self.version);
        let body = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| CryptoError::Seal)?;
        let mut out = Vec::with_capacity(HEADER + body.len());
        out.push(FORMAT);
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Opens a ciphertext sealed under this key version for `binding`.
    pub(crate) fn open(
        &self,
        binding: &Binding<'_>,
        sealed: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, CryptoError> {
        let header = Header::parse(sealed)?;
        if header.key_version != self.version {
            return Err(CryptoError::Open);
        }
        let aad = binding.encode(self.version);
        self.cipher
            .decrypt(
                Nonce::from_slice(header.nonce),
                Payload {
                    msg: header.body,
                    aad: &aad,
                },
            )
            .map(zeroize::Zeroizing::new)
            .map_err(|_| CryptoError::Open)
    }
}

/// The parsed, not yet authenticated, parts of a sealed value.
pub(crate) struct Header<'a> {
    pub key_version: u32,
    nonce: &'a [u8],
    body: &'a [u8],
}

impl<'a> Header<'a> {
    pub(crate) fn parse(sealed: &'a [u8]) -> Result<Self, CryptoError> {
        if sealed.len() < HEADER + TAG || sealed[0] != FORMAT {
            return Err(CryptoError::Malformed);
        }
        let mut version = [0u8; 4];
        version.copy_from_slice(&sealed[1..5]);
        Ok(Header {
            key_version: u32::from_be_bytes(version),
            nonce: &sealed[5..HEADER],
            body: &sealed[HEADER..],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::aad::RecordKind;
    use super::*;

    fn key(version: u32, byte: u8) -> SealingKey {
        SealingKey::new(version, &SecretBox::new(Box::new([byte; 32])))
    }

    const CARD_A: Binding<'static> = Binding {
        kind: RecordKind::Card,
        record_id: "crd_a",
        field: "pan",
    };

    #[test]
    fn round_trip_and_fresh_nonces() {
        let k = key(3, 7);
        let a = k.seal(&CARD_A, b"4242424242424242").unwrap();
        let b = k.seal(&CARD_A, b"4242424242424242").unwrap();
        assert_ne!(a, b, "random nonces make equal plaintexts differ");
        assert_eq!(Header::parse(&a).unwrap().key_version, 3);
        assert_eq!(&k.open(&CARD_A, &a).unwrap()[..], b"4242424242424242");
    }

    #[test]
    fn moved_or_tampered_ciphertext_does_not_open() {
        let k = key(1, 9);
        let sealed = k.seal(&CARD_A, b"secret").unwrap();
        let other_record = Binding {
            record_id: "crd_b",
            ..CARD_A
        };
        let other_field = Binding {
            field: "expiry",
            ..CARD_A
        };
        let other_kind = Binding {
            kind: RecordKind::Identity,
            ..CARD_A
        };
        for b in [other_record, other_field, other_kind] {
            assert!(matches!(k.open(&b, &sealed), Err(CryptoError::Open)));
        }
        // Same key bytes registered as another version: the AAD differs.
        let relabelled = key(2, 9);
        let mut moved = sealed.clone();
        moved[1..5].copy_from_slice(&2u32.to_be_bytes());
        assert!(matches!(relabelled.open(&CARD_A, &moved), Err(CryptoError::Open)));
        for i in 0..sealed.len() {
            let mut t = sealed.clone();
            t[i] ^= 0x01;
            assert!(k.open(&CARD_A, &t).is_err(), "flipping byte {i} must be detected");
        }
        assert!(matches!(
            k.open(&CARD_A, &sealed[..20]),
            Err(CryptoError::Malformed)
        ));
    }
}
