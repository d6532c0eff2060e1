//! A KEK share sealed to its custodian's certificate key, so the operator
//! running the key ceremony never holds a share in the clear (split
//! knowledge, PCI DSS 3.7.2/3.7.6). ECIES over P-256, the key type of the
//! vault's client certificates: an ephemeral key agrees a secret with the
//! custodian's public key, HKDF-SHA256 makes an AES-256-GCM key of it, and
//! the share file is sealed under that key with the envelope's public
//! fields as associated data. Only the custodian's private key (the one
//! their mutual-TLS certificate was issued for) opens it.

use super::shares::{ShareError, ShareFile};
use crate::domain::random;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};
use p256::{PublicKey, SecretKey};
use ring::{aead, digest, hkdf};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub const SEALED_FORMAT: &str = "tokenvault-kek-share-sealed/1";
const KDF_SALT: &[u8] = b"tokenvault kek share seal v1";

/// One custodian's sealed share file (JSON): public fields only, and the
/// share file sealed to the custodian.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedShareFile {
    pub format: String,
    pub index: u8,
    pub set_id: String,
    /// The custodian's identity, as their certificate names it.
    pub custodian: String,
    /// SHA-256 of the custodian's SubjectPublicKeyInfo, hex.
    pub recipient: String,
    /// The ephemeral public key, SEC1 uncompressed, hex.
    pub ephemeral: String,
    pub nonce: String,
    /// The share file as JSON, sealed (AES-256-GCM, tag appended), hex.
    pub ciphertext: String,
}

fn spki_digest(spki_der: &[u8]) -> String {
    crate::hex::encode(digest::digest(&digest::SHA256, spki_der).as_ref())
}

/// The AES-256-GCM key agreed between `secret` and `public`, bound to
/// both public keys.
fn agreed_key(
    secret: &SecretKey,
    public: &PublicKey,
    ephemeral: &[u8],
    recipient: &str,
) -> Result<aead::LessSafeKey, ShareError> {
    let shared = p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), public.as_affine());
    let info = [ephemeral, recipient.as_bytes()];
    let mut key = Zeroizing::new([0u8; 32]);
    let derive = || ShareError::Format("key derivation failed".into());
    hkdf::Salt::new(hkdf::HKDF_SHA256, KDF_SALT)
        .extract(shared.raw_secret_bytes())
        .expand(&info, &aead::AES_256_GCM)
        .and_then(|okm| okm.fill(&mut key[..]))
        .map_err(|_| derive())?;
    let unbound = aead::UnboundKey::new(&aead::AES_256_GCM, &key[..]).map_err(|_| derive())?;
    Ok(aead::LessSafeKey::new(unbound))
}

impl SealedShareFile {
    fn associated_data(&self) -> Vec<u8> {
        [
            self.format.as_str(),
            &self.index.to_string(),
            &self.set_id,
            &self.custodian,
            &self.recipient,
        ]
        .join("\0")
        .into_bytes()
    }

    /// Seals `share` (whose `custodian` names the owner) to the custodian
    /// whose certificate carries `recipient_spki_der`.
    pub fn seal(share: &ShareFile, recipient_spki_der: &[u8]) -> Result<Self, ShareError> {
        let custodian = share
            .custodian
            .clone()
            .ok_or_else(|| ShareError::Format("a sealed share names its custodian".into()))?;
        let recipient = PublicKey::from_public_key_der(recipient_spki_der)
            .map_err(|e| ShareError::RecipientKey(e.to_string()))?;
        let ephemeral = ephemeral_key()?;
        let ephemeral_point = ephemeral.public_key().to_encoded_point(false);
        let nonce = random::array::<12>().map_err(|_| ShareError::Random)?;
        let mut envelope = SealedShareFile {
            format: SEALED_FORMAT.to_owned(),
            index: share.index,
            set_id: share.manifest.set_id.clone(),
            custodian,
            recipient: spki_digest(recipient_spki_der),
            ephemeral: crate::hex::encode(ephemeral_point.as_bytes()),
            nonce: crate::hex::encode(&nonce),
            ciphertext: String::new(),
        };
        let key = agreed_key(
            &ephemeral,
            &recipient,
            ephemeral_point.as_bytes(),
            &envelope.recipient,
        )?;
        let mut sealed =
            Zeroizing::new(serde_json::to_vec(share).map_err(|e| ShareError::Format(e.to_string()))?);
        key.seal_in_place_append_tag(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(envelope.associated_data()),
            &mut *sealed,
        )
        .map_err(|_| ShareError::Random)?;
        envelope.ciphertext = crate::hex::encode(&sealed);
        Ok(envelope)
    }

    /// Opens the share with the custodian's private key (PKCS#8 DER). A
    /// share sealed to another key, or altered, does not open.
    pub fn open(&self, private_pkcs8_der: &[u8]) -> Result<ShareFile, ShareError> {
        if self.format != SEALED_FORMAT {
            return Err(ShareError::Format(format!("format is not {SEALED_FORMAT}")));
        }
        let secret = SecretKey::from_pkcs8_der(private_pkcs8_der)
            .map_err(|e| ShareError::RecipientKey(e.to_string()))?;
        let own = spki_digest(
            secret
                .public_key()
                .to_public_key_der()
                .map_err(|e| ShareError::RecipientKey(e.to_string()))?
                .as_bytes(),
        );
        if own != self.recipient {
            return Err(ShareError::NotYours {
                custodian: self.custodian.clone(),
            });
        }
        let ephemeral_bytes = hex_field(&self.ephemeral, "ephemeral")?;
        let ephemeral = PublicKey::from_sec1_bytes(&ephemeral_bytes)
            .map_err(|_| ShareError::Format("ephemeral key".into()))?;
        let nonce: [u8; 12] = hex_field(&self.nonce, "nonce")?
            .try_into()
            .map_err(|_| ShareError::Format("nonce is 12 bytes".into()))?;
        let mut sealed = Zeroizing::new(hex_field(&self.ciphertext, "ciphertext")?);
        let key = agreed_key(&secret, &ephemeral, &ephemeral_bytes, &self.recipient)?;
        let plain = key
            .open_in_place(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(self.associated_data()),
                &mut sealed,
            )
            .map_err(|_| ShareError::Altered)?;
        let share: ShareFile =
            serde_json::from_slice(plain).map_err(|e| ShareError::Format(e.to_string()))?;
        if share.index != self.index
            || share.manifest.set_id != self.set_id
            || share.custodian.as_deref() != Some(self.custodian.as_str())
        {
            return Err(ShareError::Altered);
        }
        Ok(share)
    }
}

fn hex_field(text: &str, what: &str) -> Result<Vec<u8>, ShareError> {
    crate::hex::decode(text).ok_or_else(|| ShareError::Format(format!("{what} is not hex")))
}

/// A fresh P-256 key from the system's random generator. A random 32-byte
/// string is a valid scalar but for a chance of about 2^-32; draw again.
fn ephemeral_key() -> Result<SecretKey, ShareError> {
    for _ in 0..8 {
        let bytes = Zeroizing::new(random::array::<32>().map_err(|_| ShareError::Random)?);
        if let Ok(key) = SecretKey::from_slice(&bytes[..]) {
            return Ok(key);
        }
    }
    Err(ShareError::Random)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::keys::shares::split_new_kek;
    use p256::pkcs8::EncodePrivateKey;

    fn custodian_key() -> (Zeroizing<Vec<u8>>, Vec<u8>) {
        let key = ephemeral_key().unwrap();
        let private = Zeroizing::new(key.to_pkcs8_der().unwrap().as_bytes().to_vec());
        let public = key.public_key().to_public_key_der().unwrap().as_bytes().to_vec();
        (private, public)
    }

    fn owned(mut file: ShareFile, custodian: &str) -> ShareFile {
        file.custodian = Some(custodian.to_owned());
        file
    }

    #[test]
    fn only_the_custodians_key_opens_a_sealed_share_and_it_holds_no_share_in_the_clear() {
        let (_, files) = split_new_kek(2, 2).unwrap();
        let (alice_private, alice_public) = custodian_key();
        let (bob_private, _) = custodian_key();
        let share = owned(files[0].clone(), "spiffe://tokenvault/alice");
        let sealed = SealedShareFile::seal(&share, &alice_public).unwrap();
        let text = serde_json::to_string(&sealed).unwrap();
        assert!(!text.contains(share.share.as_str()), "no plaintext share");
        assert!(!text.contains(&share.manifest.kek_check));

        let opened = sealed.open(&alice_private).unwrap();
        assert_eq!(opened.share.as_str(), share.share.as_str());
        assert_eq!(opened.custodian.as_deref(), Some("spiffe://tokenvault/alice"));
        assert!(opened.verify().is_ok());
        assert_eq!(
            sealed.open(&bob_private).err(),
            Some(ShareError::NotYours {
                custodian: "spiffe://tokenvault/alice".into()
            })
        );
    }

    #[test]
    fn an_altered_envelope_does_not_open() {
        let (_, files) = split_new_kek(2, 2).unwrap();
        let (private, public) = custodian_key();
        let sealed =
            SealedShareFile::seal(&owned(files[1].clone(), "spiffe://tokenvault/c"), &public).unwrap();
        // Reassigned to another custodian, renumbered, or a bit flipped.
        let mut reassigned = sealed.clone();
        reassigned.custodian = "spiffe://tokenvault/mallory".into();
        let mut renumbered = sealed.clone();
        renumbered.index = 1;
        let mut flipped = sealed.clone();
        let last = flipped.ciphertext.pop().unwrap();
        flipped.ciphertext.push(if last == '0' { '1' } else { '0' });
        for altered in [reassigned, renumbered, flipped] {
            assert_eq!(altered.open(&private).err(), Some(ShareError::Altered));
        }
    }

    #[test]
    fn a_share_without_its_custodian_is_not_sealed() {
        let (_, files) = split_new_kek(2, 2).unwrap();
        let (_, public) = custodian_key();
        assert!(matches!(
            SealedShareFile::seal(&files[0], &public),
            Err(ShareError::Format(_))
        ));
        assert!(matches!(
            SealedShareFile::seal(&owned(files[0].clone(), "c"), b"not a key"),
            Err(ShareError::RecipientKey(_))
        ));
    }
}
