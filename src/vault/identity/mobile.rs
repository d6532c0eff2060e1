//! A mainland China mobile number, as reserved with the card's bank.

use crate::domain::validation::{Field, Rule, ValidationError};
use std::fmt;
use zeroize::Zeroizing;

/// Eleven digits, `1[3-9]` then nine more; a `+86` prefix is stripped.
pub(in crate::vault) struct Mobile(Zeroizing<String>);

impl Mobile {
    pub(in crate::vault) fn parse(input: &str) -> Result<Self, ValidationError> {
        let err = |rule, detail| ValidationError::new(Field::Phone, rule, detail);
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(err(Rule::Empty, "a mobile number is required"));
        }
        let national = trimmed.strip_prefix("+86").unwrap_or(trimmed);
        if !national.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err(
                Rule::NotDigits,
                "a mobile number has digits only, optionally after +86",
            ));
        }
        if national.len() != 11 {
            return Err(err(Rule::Length, "a mobile number has 11 digits"));
        }
        let b = national.as_bytes();
        if b[0] != b'1' || !(b'3'..=b'9').contains(&b[1]) {
            return Err(err(Rule::MobilePrefix, "a mobile number starts with 13 to 19"));
        }
        Ok(Mobile(Zeroizing::new(national.to_owned())))
    }

    pub(in crate::vault) fn expose(&self) -> &str {
        &self.0
    }

    /// First three and last four digits (138****8000).
    pub(in crate::vault) fn masked(&self) -> String {
        format!("{}****{}", &self.0[..3], &self.0[7..])
    }
}

impl fmt::Debug for Mobile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mobile({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_phones() {
        let phones = crate::test_data::phones();
        assert!(phones.len() >= 6);
        for row in phones {
            match Mobile::parse(&row.phone) {
                Ok(m) => {
                    assert!(row.valid, "{}", row.note);
                    assert_eq!(m.expose(), row.normalised);
                }
                Err(e) => {
                    assert!(!row.valid, "{}: {e}", row.note);
                    assert!(!e.to_string().contains(&row.phone));
                }
            }
        }
    }

    #[test]
    fn rules_are_named() {
        let rule = |s: &str| Mobile::parse(s).unwrap_err().rule;
        assert_eq!(rule(""), Rule::Empty);
        assert_eq!(rule("1380013800a"), Rule::NotDigits);
        assert_eq!(rule("+1 3800138000"), Rule::NotDigits);
        assert_eq!(rule("1380013800"), Rule::Length);
        assert_eq!(rule("12800138000"), Rule::MobilePrefix);
        assert_eq!(rule("23800138000"), Rule::MobilePrefix);
        assert_eq!(Mobile::parse("13800138000").unwrap().masked(), "138****8000");
    }
}
