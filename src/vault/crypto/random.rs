//! The OS CSPRNG (getrandom through ring's `SystemRandom`).

use super::CryptoError;
use ring::rand::{SecureRandom, SystemRandom};

pub(crate) fn fill(buf: &mut [u8]) -> Result<(), CryptoError> {
    SystemRandom::new().fill(buf).map_err(|_| CryptoError::Random)
}

pub(crate) fn array<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut out = [0u8; N];
    fill(&mut out)?;
    Ok(out)
}

/// A uniformly random integer in `0..bound` (rejection sampling, no modulo bias).
pub(crate) fn below(bound: u64) -> Result<u64, CryptoError> {
    debug_assert!(bound > 0);
    let zone = u64::MAX - (u64::MAX % bound);
    loop {
        let v = u64::from_le_bytes(array::<8>()?);
        if v < zone {
            return Ok(v % bound);
        }
    }
}
