//! Signed notifications, as real channels sign theirs (WeChat Pay's API v3
//! and UnionPay's gateways sign a timestamp, a nonce and the body): the
//! bank signs `tokenvault-notify/1`, the time, a nonce and the exact body
//! bytes with its Ed25519 key, in three headers; the vault checks them
//! with the channel's pinned public key beside the mutual-TLS identity, so
//! a result is the bank's even if a certificate of its identity leaks.

use crate::ed25519::{PublicKey, SigningKey};

pub const TIMESTAMP_HEADER: &str = "x-channel-timestamp";
pub const NONCE_HEADER: &str = "x-channel-nonce";
pub const SIGNATURE_HEADER: &str = "x-channel-signature";

/// How far a notification's timestamp may be from the vault's clock.
pub const FRESHNESS_S: i64 = 300;

/// What each header accepts, as the OpenAPI document states it.
pub const TIMESTAMP_PATTERN: &str = "^[0-9]{1,19}$";
pub const NONCE_PATTERN: &str = "^[0-9A-Za-z]{16,64}$";
pub const SIGNATURE_PATTERN: &str = "^[0-9a-fA-F]{128}$";

/// Nonces are 16 to 64 of `[0-9A-Za-z]`.
const NONCE_LEN: std::ops::RangeInclusive<usize> = 16..=64;

/// What the bank sends beside the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedHeaders {
    pub timestamp: i64,
    pub nonce: String,
    pub signature: String,
}

/// Why a notification's signature was refused. `rule` names it in the
/// problem document and the audit record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    #[error("the {0} header is missing")]
    Missing(&'static str),
    #[error("the {0} header is malformed")]
    Malformed(&'static str),
    #[error("the timestamp is more than 300 s from the vault's clock")]
    Stale,
    #[error("the signature is not the channel's over this timestamp, nonce and body")]
    Invalid,
}

impl SignatureError {
    /// The header at fault.
    pub fn field(self) -> &'static str {
        match self {
            SignatureError::Missing(h) | SignatureError::Malformed(h) => h,
            SignatureError::Stale => TIMESTAMP_HEADER,
            SignatureError::Invalid => SIGNATURE_HEADER,
        }
    }

    pub fn rule(self) -> &'static str {
        match self {
            SignatureError::Missing(_) => "missing",
            SignatureError::Malformed(_) => "malformed",
            SignatureError::Stale => "stale",
            SignatureError::Invalid => "signature",
        }
    }
}

fn signed_text(timestamp: i64, nonce: &str, body: &[u8]) -> Vec<u8> {
    let mut text = format!("tokenvault-notify/1\n{timestamp}\n{nonce}\n").into_bytes();
    text.extend_from_slice(body);
    text
}

/// The bank's side: signs a body at `now` (seconds) with a fresh nonce.
pub fn sign(key: &SigningKey, body: &[u8], now: i64, nonce: String) -> SignedHeaders {
    let signature = key.sign_hex(&signed_text(now, &nonce, body));
    SignedHeaders {
        timestamp: now,
        nonce,
        signature,
    }
}

/// The vault's side: `header` reads one request header (`None` when
/// absent or not text); `now` is the vault's clock in seconds.
pub fn verify<'a>(
    trusted: &PublicKey,
    header: impl Fn(&'static str) -> Option<&'a str>,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let read = |name: &'static str| header(name).ok_or(SignatureError::Missing(name));
    let timestamp = read(TIMESTAMP_HEADER)?;
    if timestamp.is_empty() || timestamp.len() > 19 || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignatureError::Malformed(TIMESTAMP_HEADER));
    }
    let timestamp: i64 = timestamp
        .parse()
        .map_err(|_| SignatureError::Malformed(TIMESTAMP_HEADER))?;
    let nonce = read(NONCE_HEADER)?;
    if !NONCE_LEN.contains(&nonce.len()) || !nonce.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(SignatureError::Malformed(NONCE_HEADER));
    }
    let signature = read(SIGNATURE_HEADER)?;
    if signature.len() != 128 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SignatureError::Malformed(SIGNATURE_HEADER));
    }
    if (now - timestamp).abs() > FRESHNESS_S {
        return Err(SignatureError::Stale);
    }
    if trusted.verifies(&signed_text(timestamp, nonce, body), signature) {
        Ok(())
    } else {
        Err(SignatureError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretBox;
    use std::collections::HashMap;

    fn key(byte: u8) -> SigningKey {
        SigningKey::from_seed(SecretBox::new(Box::new([byte; 32]))).unwrap()
    }

    fn headers(signed: &SignedHeaders) -> HashMap<&'static str, String> {
        HashMap::from([
            (TIMESTAMP_HEADER, signed.timestamp.to_string()),
            (NONCE_HEADER, signed.nonce.clone()),
            (SIGNATURE_HEADER, signed.signature.clone()),
        ])
    }

    fn check(
        trusted: &SigningKey,
        sent: &HashMap<&'static str, String>,
        body: &[u8],
        now: i64,
    ) -> Result<(), SignatureError> {
        verify(
            &trusted.public_key(),
            |name| sent.get(name).map(String::as_str),
            body,
            now,
        )
    }

    const NONCE: &str = "0123456789abcdef0123";

    #[test]
    fn a_signed_body_verifies_and_any_change_is_refused_by_name() {
        let bank = key(1);
        let body = br#"{"order_no":"o1","amount":800}"#;
        let sent = headers(&sign(&bank, body, 1_000_000, NONCE.into()));
        assert_eq!(check(&bank, &sent, body, 1_000_000), Ok(()));
        assert_eq!(check(&bank, &sent, body, 1_000_300), Ok(()));
        assert_eq!(
            check(&bank, &sent, br#"{"order_no":"o1","amount":8000}"#, 1_000_000),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            check(&key(2), &sent, body, 1_000_000),
            Err(SignatureError::Invalid)
        );
        assert_eq!(check(&bank, &sent, body, 1_000_301), Err(SignatureError::Stale));
        let mut other_time = sent.clone();
        other_time.insert(TIMESTAMP_HEADER, "1000001".into());
        assert_eq!(
            check(&bank, &other_time, body, 1_000_000),
            Err(SignatureError::Invalid)
        );
        let mut other_nonce = sent.clone();
        other_nonce.insert(NONCE_HEADER, "0123456789abcdef0124".into());
        assert_eq!(
            check(&bank, &other_nonce, body, 1_000_000),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn missing_and_malformed_headers_are_named() {
        let bank = key(1);
        let sent = headers(&sign(&bank, b"{}", 10, NONCE.into()));
        for name in [TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER] {
            let mut without = sent.clone();
            without.remove(name);
            let refused = check(&bank, &without, b"{}", 10).unwrap_err();
            assert_eq!((refused.field(), refused.rule()), (name, "missing"));
        }
        for (name, bad) in [
            (TIMESTAMP_HEADER, "ten"),
            (TIMESTAMP_HEADER, "-10"),
            (SIGNATURE_HEADER, &"g".repeat(128)),
            (NONCE_HEADER, "short"),
            (NONCE_HEADER, "0123456789abcdef-0123"),
            (SIGNATURE_HEADER, "abcd"),
        ] {
            let mut malformed = sent.clone();
            malformed.insert(name, bad.into());
            let refused = check(&bank, &malformed, b"{}", 10).unwrap_err();
            assert_eq!((refused.field(), refused.rule()), (name, "malformed"), "{bad}");
        }
    }
}
