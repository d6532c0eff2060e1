//! Identifiers every layer passes around: currencies, channels, merchants,
//! and the `identifier!` macro that makes more of them (orders, refunds).
//! Each parses once at the edge; holding one means it is well formed.

use crate::domain::validation::{Field, Rule, ValidationError};
use serde::{Deserialize, Serialize};
use std::fmt;

/// An active ISO 4217 currency by its alphabetic code, e.g. `CNY`. The list
/// is the `iso_currency` crate's (ISO 4217 as published by its maintenance
/// agency, SIX; version 0.7); funds (e.g. `CLF`), special codes (`XAU`,
/// `XTS`, `XXX`) and superseded ones are refused: none is money a card pays.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        let b = text.as_bytes();
        if !(b.len() == 3 && b.iter().all(u8::is_ascii_uppercase)) {
            return Err(ValidationError::new(
                Field::Currency,
                Rule::Format,
                "a currency is a three-letter upper-case ISO 4217 code",
            ));
        }
        let payable = iso_currency::Currency::from_code(text)
            .is_some_and(|c| !c.is_fund() && !c.is_special() && c.is_superseded().is_none());
        if !payable {
            return Err(ValidationError::new(
                Field::Currency,
                Rule::UnknownCurrency,
                "not an active ISO 4217 currency (funds, special and superseded codes are refused)",
            ));
        }
        Ok(Currency([b[0], b[1], b[2]]))
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII upper-case letters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl TryFrom<String> for Currency {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, ValidationError> {
        Currency::parse(&s)
    }
}
impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.as_str().to_owned()
    }
}
impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! identifier {
    ($(#[$doc:meta])* $name:ident, $field:expr, $detail:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// What `parse` accepts, as a regular expression (OpenAPI).
            pub const PATTERN: &'static str = "^[A-Za-z0-9._-]{1,64}$";

            pub fn parse(text: &str) -> Result<Self, ValidationError> {
                let ok = (1..=64).contains(&text.len())
                    && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
                if !ok {
                    return Err(ValidationError::new($field, Rule::Format, $detail));
                }
                $crate::domain::personal_numbers::refuse_in(text, $field)?;
                Ok($name(text.to_owned()))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = ValidationError;
            fn try_from(s: String) -> Result<Self, ValidationError> {
                $name::parse(&s)
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl $crate::domain::subject::AuditSubject for $name {
            fn audit_name(&self) -> String {
                self.0.clone()
            }
            fn free_form(&self) -> bool {
                true
            }
        }
    };
}

pub(crate) use identifier;

identifier!(
    /// A payment channel (a bank's quick-pay interface, UnionPay, …).
    ChannelId, Field::Channel, "a channel id is 1 to 64 letters, digits, '.', '_' or '-'"
);
identifier!(
    /// A merchant as the platform identifies it.
    MerchantId, Field::Merchant, "a merchant id is 1 to 64 letters, digits, '.', '_' or '-'"
);
