//! Card verification data for a credit-card signing: CVN and expiry. Held in
//! memory only (see `held`), never encoded, logged or stored (PBOC 170 and
//! PCI DSS 3.3.1).

use crate::domain::time::CivilDate;
use crate::domain::validation::{Field, Rule, ValidationError};
use std::fmt;
use zeroize::Zeroizing;

pub struct CardVerification {
    pub(in crate::vault) cvn: Zeroizing<String>,
    /// MMYY, as banks take it.
    pub(in crate::vault) expiry: Zeroizing<String>,
}

impl CardVerification {
    /// `cvn`: 3 or 4 digits. `expiry`: MMYY, this month or later.
    pub fn parse(cvn: &str, expiry: &str, today: CivilDate) -> Result<Self, ValidationError> {
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if !(3..=4).contains(&cvn.len()) || !digits(cvn) {
            return Err(ValidationError::new(
                Field::Cvn,
                Rule::Format,
                "a CVN is 3 or 4 digits",
            ));
        }
        let bad_expiry = ValidationError::new(Field::Expiry, Rule::Format, "an expiry is MMYY");
        if expiry.len() != 4 || !digits(expiry) {
            return Err(bad_expiry);
        }
        let month: u8 = expiry[..2].parse().map_err(|_| bad_expiry.clone())?;
        let year: i32 = expiry[2..].parse().map_err(|_| bad_expiry.clone())?;
        if !(1..=12).contains(&month) {
            return Err(bad_expiry);
        }
        let year = 2000 + year;
        if (year, month) < (today.year(), today.month()) {
            return Err(ValidationError::new(
                Field::Expiry,
                Rule::Expired,
                "the card has expired",
            ));
        }
        Ok(CardVerification {
            cvn: Zeroizing::new(cvn.to_owned()),
            expiry: Zeroizing::new(expiry.to_owned()),
        })
    }
}

impl fmt::Debug for CardVerification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CardVerification(redacted)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cvn_and_expiry_are_checked_and_never_printed() {
        let today = CivilDate::new(2026, 11, 21).unwrap();
        let ok = CardVerification::parse("123", "1126", today).unwrap();
        assert_eq!(format!("{ok:?}"), "CardVerification(redacted)");
        let rule = |cvn, exp| CardVerification::parse(cvn, exp, today).unwrap_err();
        assert_eq!(rule("12", "1230").field, Field::Cvn);
        assert_eq!(rule("12a", "1230").field, Field::Cvn);
        assert_eq!(rule("123", "1326").rule, Rule::Format);
        assert_eq!(rule("123", "12/30").rule, Rule::Format);
        assert_eq!(rule("123", "1026").rule, Rule::Expired);
    }
}
