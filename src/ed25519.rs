//! Ed25519 (RFC 8032) through ring: a signing key from a 32-byte seed held
//! in a `SecretBox`, and a public key that other tools can read (PEM
//! SubjectPublicKeyInfo, RFC 8410). Signs audit anchors and bank-sim's
//! notifications; verifies both.

use ring::signature::{self, Ed25519KeyPair, KeyPair};
use secrecy::{ExposeSecret, SecretBox};

/// DER of an Ed25519 SubjectPublicKeyInfo before its 32 key bytes
/// (RFC 8410, section 4): the algorithm identifier 1.3.101.112.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    #[error("not a PEM public key: {0}")]
    Pem(String),
    #[error("not an Ed25519 public key")]
    NotEd25519,
    #[error("not 64 hex digits")]
    Hex,
    #[error("the seed does not make a key: {0}")]
    Seed(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        let mut key = [0u8; 32];
        crate::hex::decode_into(text, &mut key).ok_or(KeyError::Hex)?;
        Ok(PublicKey(key))
    }

    pub fn to_hex(&self) -> String {
        crate::hex::encode(&self.0)
    }

    /// The key as a PEM `PUBLIC KEY`, which `openssl pkey -pubin` reads too.
    pub fn to_pem(&self) -> String {
        use base64ct::Encoding;
        let mut der = SPKI_PREFIX.to_vec();
        der.extend_from_slice(&self.0);
        let body = base64ct::Base64::encode_string(&der);
        format!("-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n")
    }

    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        use rustls::pki_types::pem::PemObject;
        let der = rustls::pki_types::SubjectPublicKeyInfoDer::from_pem_slice(text.as_bytes())
            .map_err(|e| KeyError::Pem(e.to_string()))?;
        let key = der
            .as_ref()
            .strip_prefix(&SPKI_PREFIX)
            .and_then(|key| <[u8; 32]>::try_from(key).ok())
            .ok_or(KeyError::NotEd25519)?;
        Ok(PublicKey(key))
    }

    /// Whether `signature` (hex) is this key's over `message`.
    pub fn verifies(&self, message: &[u8], signature_hex: &str) -> bool {
        let mut signature = [0u8; 64];
        crate::hex::decode_into(signature_hex, &mut signature).is_some()
            && signature::UnparsedPublicKey::new(&signature::ED25519, &self.0)
                .verify(message, &signature)
                .is_ok()
    }
}

/// ring keeps the expanded key inside its key pair, which it does not
/// zeroize on drop; the seed, kept beside it, is.
pub struct SigningKey {
    _seed: SecretBox<[u8; 32]>,
    pair: Ed25519KeyPair,
}

impl SigningKey {
    pub fn from_seed(seed: SecretBox<[u8; 32]>) -> Result<Self, KeyError> {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed.expose_secret())
            .map_err(|e| KeyError::Seed(e.to_string()))?;
        Ok(SigningKey { _seed: seed, pair })
    }

    pub fn public_key(&self) -> PublicKey {
        let mut key = [0u8; 32];
        key.copy_from_slice(self.pair.public_key().as_ref());
        PublicKey(key)
    }

    /// The signature over `message`, in hex.
    pub fn sign_hex(&self, message: &[u8]) -> String {
        crate::hex::encode(self.pair.sign(message).as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SigningKey {
        SigningKey::from_seed(SecretBox::new(Box::new([byte; 32]))).unwrap()
    }

    /// RFC 8032, section 7.1, TEST 1: the seed, its public key and the
    /// signature of the empty message.
    #[test]
    fn rfc_8032_test_vector_1() {
        let mut seed = [0u8; 32];
        crate::hex::decode_into(
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            &mut seed,
        )
        .unwrap();
        let key = SigningKey::from_seed(SecretBox::new(Box::new(seed))).unwrap();
        assert_eq!(
            key.public_key().to_hex(),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        let signature = key.sign_hex(b"");
        assert_eq!(
            signature,
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
        assert!(key.public_key().verifies(b"", &signature));
        assert!(!key.public_key().verifies(b"x", &signature));
        assert!(!key.public_key().verifies(b"", "00"));
    }

    #[test]
    fn the_public_key_round_trips_through_pem_and_hex() {
        let public = key(3).public_key();
        let pem = public.to_pem();
        assert!(
            pem.starts_with("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA"),
            "{pem}"
        );
        assert_eq!(PublicKey::from_pem(&pem).unwrap(), public);
        assert_eq!(PublicKey::from_hex(&public.to_hex()).unwrap(), public);
        assert!(PublicKey::from_pem("not pem").is_err());
        assert!(PublicKey::from_hex("abc").is_err());
    }

    #[test]
    fn another_key_does_not_verify() {
        let signature = key(1).sign_hex(b"m");
        assert!(key(1).public_key().verifies(b"m", &signature));
        assert!(!key(2).public_key().verifies(b"m", &signature));
    }
}
