//! Payment token numbers: numeric, the PAN's length, from a reserved token BIN
//! range, Luhn-valid, drawn from the OS CSPRNG and never derived from the PAN.

use crate::domain::random;
use crate::domain::validation::{Field, Rule, ValidationError};
use crate::vault::card::{luhn, Network};
use crate::vault::crypto::CryptoError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A range of token BINs, all with the same number of digits (6 to 8).
///
/// The default, 810000-819999, starts with 8: no network in DOMAIN.md's table
/// uses a leading 8 (ISO/IEC 7812 gives it to healthcare and telecoms), so a
/// token can never be mistaken for, or equal, a real card number. `new` refuses
/// any range that overlaps a card network's prefixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenBinRange {
    low: u32,
    high: u32,
    digits: usize,
}

impl Default for TokenBinRange {
    fn default() -> Self {
        TokenBinRange {
            low: 810_000,
            high: 819_999,
            digits: 6,
        }
    }
}

impl TokenBinRange {
    /// Parses `"LOW-HIGH"`, e.g. `"810000-819999"`.
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        let err = |rule, detail| ValidationError::new(Field::TokenNumber, rule, detail);
        let (low, high) = text
            .split_once('-')
            .ok_or(err(Rule::Format, "a token BIN range is LOW-HIGH"))?;
        let (low, high) = (low.trim(), high.trim());
        let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(low) || !all_digits(high) || low.len() != high.len() || !(6..=8).contains(&low.len()) {
            return Err(err(
                Rule::Format,
                "token BINs are 6 to 8 digits, both ends the same length",
            ));
        }
        let parse = |s: &str| {
            s.parse::<u32>()
                .map_err(|_| err(Rule::Format, "token BIN is not a number"))
        };
        let range = TokenBinRange {
            low: parse(low)?,
            high: parse(high)?,
            digits: low.len(),
        };
        if range.low > range.high {
            return Err(err(
                Rule::WindowOrder,
                "the token BIN range's low end is above its high end",
            ));
        }
        if range.overlaps_a_network() {
            return Err(err(
                Rule::InTokenRange,
                "the token BIN range overlaps a card network's prefixes",
            ));
        }
        Ok(range)
    }

    /// Network prefixes are at most four digits long, so checking every
    /// distinct four-digit head in the range is exhaustive.
    fn overlaps_a_network(&self) -> bool {
        let scale = 10u32.pow(self.digits as u32 - 4);
        (self.low / scale..=self.high / scale).any(|head| {
            let padded = format!("{head:04}000000000000");
            Network::detect(padded.as_bytes()).is_some()
        })
    }

    /// Whether a number (PAN or token) starts with a BIN in this range.
    pub fn contains(&self, digits: &str) -> bool {
        digits
            .get(..self.digits)
            .filter(|h| h.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|h| h.parse::<u32>().ok())
            .is_some_and(|bin| (self.low..=self.high).contains(&bin))
    }

    /// A token number as a caller sends it: well formed *and* in this
    /// range, so a card number sent where a token belongs is refused (and
    /// never named by an audit record).
    pub fn parse_token(&self, text: &str) -> Result<TokenNumber, ValidationError> {
        let number = TokenNumber::parse(text)?;
        if self.contains(number.as_str()) {
            Ok(number)
        } else {
            Err(ValidationError::new(
                Field::TokenNumber,
                Rule::Format,
                "a payment token starts with a BIN of this vault's token range",
            ))
        }
    }

    pub fn describe(&self) -> String {
        format!("{:0w$}-{:0w$}", self.low, self.high, w = self.digits)
    }

    /// A fresh random token number of `length` digits.
    pub(crate) fn generate(&self, length: usize) -> Result<TokenNumber, CryptoError> {
        let bin = self.low + random::below(u64::from(self.high - self.low) + 1)? as u32;
        let mut digits = format!("{bin:0w$}", w = self.digits).into_bytes();
        let mut pool = [0u8; 32];
        while digits.len() + 1 < length {
            random::fill(&mut pool)?;
            for &b in &pool {
                // 250 is the largest multiple of 10 in a byte: no modulo bias.
                if b < 250 && digits.len() + 1 < length {
                    digits.push(b'0' + b % 10);
                }
            }
        }
        digits.push(luhn::check_digit(&digits));
        // Only ASCII digits were pushed.
        let text = String::from_utf8(digits).map_err(|_| CryptoError::Malformed)?;
        Ok(TokenNumber(text))
    }
}

/// A payment token number. Not secret in itself (it is useless outside its
/// domain controls), so it may appear in logs and audit records.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TokenNumber(String);

impl TokenNumber {
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        let ok = (13..=19).contains(&text.len())
            && text.bytes().all(|b| b.is_ascii_digit())
            && luhn::is_valid(text.as_bytes());
        if ok {
            Ok(TokenNumber(text.to_owned()))
        } else {
            Err(ValidationError::new(
                Field::TokenNumber,
                Rule::Format,
                "a payment token is 13 to 19 digits with a valid Luhn check digit",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Only a token from this vault's range is a `TokenNumber` that reaches a
/// route (see `TokenBinRange::parse_token`), so it may be named as it is.
impl crate::domain::subject::AuditSubject for TokenNumber {
    fn audit_name(&self) -> String {
        self.0.clone()
    }
}

impl TryFrom<String> for TokenNumber {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        TokenNumber::parse(&s)
    }
}

impl From<TokenNumber> for String {
    fn from(t: TokenNumber) -> String {
        t.0
    }
}

impl fmt::Display for TokenNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TokenNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenNumber({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn default_range_is_valid_and_clear_of_networks() {
        let d = TokenBinRange::default();
        assert_eq!(TokenBinRange::parse(&d.describe()).unwrap(), d);
        assert!(d.contains("8123450000000000"));
        assert!(!d.contains("6222020000000000"));
    }

    #[test]
    fn ranges_overlapping_a_network_are_refused() {
        for bad in [
            "620000-620999",
            "400000-400000",
            "300000-399999",
            "650000-659999",
            "899999-900001",
        ] {
            assert_eq!(
                TokenBinRange::parse(bad).unwrap_err().rule,
                Rule::InTokenRange,
                "{bad}"
            );
        }
        assert_eq!(
            TokenBinRange::parse("819999-810000").unwrap_err().rule,
            Rule::WindowOrder
        );
        assert_eq!(
            TokenBinRange::parse("81000-81999").unwrap_err().rule,
            Rule::Format
        );
        assert!(TokenBinRange::parse("10000000-10009999").is_ok());
    }

    proptest! {
        #[test]
        fn tokens_are_luhn_valid_in_range_and_of_the_requested_length(length in 13usize..=19) {
            let range = TokenBinRange::default();
            let token = range.generate(length).unwrap();
            let s = token.as_str();
            prop_assert_eq!(s.len(), length);
            prop_assert!(luhn::is_valid(s.as_bytes()));
            prop_assert!(range.contains(s));
            prop_assert!(Network::detect(s.as_bytes()).is_none());
            prop_assert!(TokenNumber::parse(s).is_ok());
        }
    }
}
