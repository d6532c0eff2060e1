//! Money as the service accepts it: integer minor units (fen) of one
//! currency, never more than `MAX_MINOR_UNITS`. The bound keeps every sum
//! the vault and its orchestration make (a token's held plus committed
//! amount, a payment's refunds) far inside `u64`, and sums are checked
//! anyway: an overflow is a refusal, never a stored value.

use super::validation::{Field, Rule, ValidationError};

/// 10^12 fen: ten billion yuan, beyond any single card payment or limit.
pub const MAX_MINOR_UNITS: u64 = 1_000_000_000_000;

/// An amount in minor units, at most `MAX_MINOR_UNITS` (zero is left to
/// the rule that owns it: a token's `zero_amount` control, a refund's).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Amount(u64);

impl Amount {
    pub fn parse(minor_units: u64) -> Result<Self, ValidationError> {
        if minor_units > MAX_MINOR_UNITS {
            return Err(ValidationError::new(
                Field::Amount,
                Rule::OutOfRange,
                "an amount is at most 1000000000000 minor units",
            ));
        }
        Ok(Amount(minor_units))
    }

    pub fn minor_units(self) -> u64 {
        self.0
    }
}

/// `a + b`, or `None` past `MAX_MINOR_UNITS` (or `u64`).
pub fn checked_sum(a: u64, b: u64) -> Option<u64> {
    a.checked_add(b).filter(|sum| *sum <= MAX_MINOR_UNITS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_bound_and_its_neighbours() {
        assert!(Amount::parse(0).is_ok());
        assert!(Amount::parse(1).is_ok());
        assert!(Amount::parse(MAX_MINOR_UNITS - 1).is_ok());
        assert_eq!(
            Amount::parse(MAX_MINOR_UNITS).unwrap().minor_units(),
            MAX_MINOR_UNITS
        );
        let over = Amount::parse(MAX_MINOR_UNITS + 1).unwrap_err();
        assert_eq!((over.field, over.rule), (Field::Amount, Rule::OutOfRange));
        assert!(Amount::parse(u64::MAX).is_err());
    }

    proptest! {
        #[test]
        fn sums_never_pass_the_bound_or_wrap(a in any::<u64>(), b in any::<u64>()) {
            match checked_sum(a, b) {
                Some(sum) => prop_assert!(sum <= MAX_MINOR_UNITS && sum >= a && sum >= b),
                None => prop_assert!(u128::from(a) + u128::from(b) > u128::from(MAX_MINOR_UNITS)),
            }
        }
    }
}
