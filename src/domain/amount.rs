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
    /// An amount under the hard bound (`AmountCeiling::MAX`).
    pub fn parse(minor_units: u64) -> Result<Self, ValidationError> {
        AmountCeiling::MAX.amount(minor_units)
    }

    pub fn minor_units(self) -> u64 {
        self.0
    }
}

/// The largest amount the service accepts: `MAX_MINOR_UNITS`, or lower
/// where an operator configures it (`limits.max_amount_minor_units`).
/// Every amount and amount limit a caller sends is held to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "u64")]
pub struct AmountCeiling(u64);

impl TryFrom<u64> for AmountCeiling {
    type Error = &'static str;

    fn try_from(minor_units: u64) -> Result<Self, Self::Error> {
        AmountCeiling::new(minor_units).ok_or("an amount ceiling is 1 to 1000000000000 minor units")
    }
}

impl AmountCeiling {
    pub const MAX: AmountCeiling = AmountCeiling(MAX_MINOR_UNITS);

    /// A ceiling of 1 to `MAX_MINOR_UNITS` minor units; `None` otherwise.
    pub fn new(minor_units: u64) -> Option<Self> {
        (1..=MAX_MINOR_UNITS)
            .contains(&minor_units)
            .then_some(AmountCeiling(minor_units))
    }

    pub fn minor_units(self) -> u64 {
        self.0
    }

    /// `minor_units` as an `Amount`, or `out_of_range` above the ceiling.
    pub fn amount(self, minor_units: u64) -> Result<Amount, ValidationError> {
        self.check(Field::Amount, minor_units).map(Amount)
    }

    /// `minor_units` of `field`, or `out_of_range` above the ceiling.
    pub fn check(self, field: Field, minor_units: u64) -> Result<u64, ValidationError> {
        if minor_units > self.0 {
            let detail = if self == AmountCeiling::MAX {
                "an amount is at most 1000000000000 minor units"
            } else {
                "an amount is above the ceiling this service is configured with"
            };
            return Err(ValidationError::new(field, Rule::OutOfRange, detail));
        }
        Ok(minor_units)
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

    #[test]
    fn a_configured_ceiling_holds_below_the_bound() {
        assert_eq!(AmountCeiling::new(0), None);
        assert_eq!(AmountCeiling::new(MAX_MINOR_UNITS + 1), None);
        assert_eq!(AmountCeiling::new(MAX_MINOR_UNITS), Some(AmountCeiling::MAX));
        let ceiling = AmountCeiling::new(50_000).unwrap();
        assert_eq!(ceiling.amount(50_000).unwrap().minor_units(), 50_000);
        let over = ceiling.amount(50_001).unwrap_err();
        assert_eq!((over.field, over.rule), (Field::Amount, Rule::OutOfRange));
        assert!(over.detail.contains("configured"), "{}", over.detail);
        assert!(ceiling.amount(u64::MAX).is_err());
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
