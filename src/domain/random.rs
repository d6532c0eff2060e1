//! The OS CSPRNG (getrandom through ring's `SystemRandom`), for every layer
//! that needs random ids, codes or keys.

use ring::rand::{SecureRandom, SystemRandom};

/// The operating system's random generator failed: nothing random can be
/// trusted, so the caller refuses the operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the operating system's random generator failed")]
pub struct RandomUnavailable;

pub(crate) fn fill(buf: &mut [u8]) -> Result<(), RandomUnavailable> {
    SystemRandom::new().fill(buf).map_err(|_| RandomUnavailable)
}

pub(crate) fn array<const N: usize>() -> Result<[u8; N], RandomUnavailable> {
    let mut out = [0u8; N];
    fill(&mut out)?;
    Ok(out)
}

/// A uniformly random integer in `0..bound` (rejection sampling, no modulo bias).
pub(crate) fn below(bound: u64) -> Result<u64, RandomUnavailable> {
    debug_assert!(bound > 0);
    let zone = u64::MAX - (u64::MAX % bound);
    loop {
        let v = u64::from_le_bytes(array::<8>()?);
        if v < zone {
            return Ok(v % bound);
        }
    }
}
