//! Argon2id (RFC 9106) with the vault's pepper as the algorithm's secret
//! input. Parameters: 19 MiB, 2 passes, 1 lane (OWASP's Argon2id minimum);
//! the PHC string stored records them, so they can be raised later and old
//! hashes still verify.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, KeyId, Params, ParamsBuilder, Version};
use zeroize::Zeroizing;

const MEMORY_KIB: u32 = 19 * 1024;
const PASSES: u32 = 2;
const LANES: u32 = 1;

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub(super) struct HashError(String);

/// The parameters, and (from version 2 on) the pepper's version as the
/// PHC string's `keyid` (RFC 9106 leaves it out of the computation: it
/// only names the secret).
fn hasher(pepper: &[u8], pepper_version: u32) -> Result<Argon2<'_>, HashError> {
    let mut params = ParamsBuilder::new();
    params.m_cost(MEMORY_KIB).t_cost(PASSES).p_cost(LANES);
    if pepper_version > 1 {
        params.keyid(KeyId::new(&pepper_version.to_be_bytes()).map_err(|e| HashError(e.to_string()))?);
    }
    let params = params.build().map_err(|e| HashError(e.to_string()))?;
    Argon2::new_with_secret(pepper, Algorithm::Argon2id, Version::V0x13, params)
        .map_err(|e| HashError(e.to_string()))
}

/// The pepper version `phc` was made with: its `keyid`, or 1 without one.
pub(super) fn pepper_version(phc: &str) -> Result<u32, HashError> {
    let parsed = PasswordHash::new(phc).map_err(|e| HashError(e.to_string()))?;
    let params = Params::try_from(&parsed).map_err(|e| HashError(e.to_string()))?;
    match params.keyid() {
        [] => Ok(1),
        id => <[u8; 4]>::try_from(id)
            .map(u32::from_be_bytes)
            .map_err(|_| HashError("keyid is not a pepper version".into())),
    }
}

/// A PHC string (`$argon2id$v=19$m=…`) for `password` with a fresh salt.
pub(super) fn hash(
    pepper: &[u8],
    pepper_version: u32,
    password: &Zeroizing<String>,
    salt: &[u8; 16],
) -> Result<String, HashError> {
    let salt = SaltString::encode_b64(salt).map_err(|e| HashError(e.to_string()))?;
    hasher(pepper, pepper_version)?
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Whether `password` matches `phc` (the comparison inside is constant-time).
pub(super) fn verify(pepper: &[u8], password: &Zeroizing<String>, phc: &str) -> Result<bool, HashError> {
    let parsed = PasswordHash::new(phc).map_err(|e| HashError(e.to_string()))?;
    match hasher(pepper, 1)?.verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::Password) => Ok(false),
        Err(e) => Err(HashError(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pepper_is_part_of_the_hash() {
        let pw = Zeroizing::new("270394".to_owned());
        let phc = hash(b"pepper one", 1, &pw, &[7; 16]).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify(b"pepper one", &pw, &phc).unwrap());
        assert!(!verify(b"pepper one", &Zeroizing::new("270395".to_owned()), &phc).unwrap());
        assert!(
            !verify(b"pepper two", &pw, &phc).unwrap(),
            "another pepper does not verify"
        );
        assert_eq!(pepper_version(&phc).unwrap(), 1);
    }

    #[test]
    fn a_later_pepper_names_its_version_in_the_hash() {
        let pw = Zeroizing::new("270394".to_owned());
        let phc = hash(b"pepper three", 3, &pw, &[7; 16]).unwrap();
        assert!(
            phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1,keyid=AAAAAw$"),
            "{phc}"
        );
        assert_eq!(pepper_version(&phc).unwrap(), 3);
        assert!(verify(b"pepper three", &pw, &phc).unwrap());
        assert!(!verify(b"pepper one", &pw, &phc).unwrap());
    }
}
