//! Card-number rules an operator configures: which BIN prefixes are exempt
//! from the Luhn check (some domestic cards are issued without a valid one).

use crate::domain::validation::{Field, Rule, ValidationError};

/// Prefixes (1 to 10 digits) whose PANs are accepted without a Luhn check digit.
/// Empty by default: an operator adds a prefix only after the issuer confirms
/// its cards do not carry one. Network and length rules still apply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CardRules {
    luhn_exempt_prefixes: Vec<String>,
}

impl CardRules {
    pub fn new<I, S>(luhn_exempt_prefixes: I) -> Result<Self, ValidationError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut prefixes = Vec::new();
        for p in luhn_exempt_prefixes {
            let p = p.as_ref().trim();
            if p.is_empty() || p.len() > 10 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ValidationError::new(
                    Field::Pan,
                    Rule::Format,
                    "a Luhn-exempt BIN prefix must be 1 to 10 digits",
                ));
            }
            prefixes.push(p.to_owned());
        }
        Ok(CardRules {
            luhn_exempt_prefixes: prefixes,
        })
    }

    pub fn luhn_exempt_prefixes(&self) -> &[String] {
        &self.luhn_exempt_prefixes
    }

    pub(crate) fn is_luhn_exempt(&self, digits: &str) -> bool {
        self.luhn_exempt_prefixes
            .iter()
            .any(|p| digits.starts_with(p.as_str()))
    }
}
