//! Opaque references handed to callers: a type prefix and 128 random bits.
//! They reveal nothing about the data they point to.

use crate::domain::random::{self, RandomUnavailable};
use crate::domain::validation::{Field, Rule, ValidationError};
use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! reference {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            const PREFIX: &'static str = $prefix;
            /// What `parse` accepts, as a regular expression (OpenAPI).
            pub const PATTERN: &'static str = concat!("^", $prefix, "[0-9a-f]{32}$");

            pub(crate) fn generate() -> Result<Self, RandomUnavailable> {
                Ok($name(format!("{}{}", Self::PREFIX, crate::hex::encode(&random::array::<16>()?))))
            }

            pub fn parse(text: &str) -> Result<Self, ValidationError> {
                let ok = text
                    .strip_prefix(Self::PREFIX)
                    .is_some_and(|h| h.len() == 32 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
                if ok {
                    Ok($name(text.to_owned()))
                } else {
                    Err(ValidationError::new(
                        Field::Reference,
                        Rule::Format,
                        concat!("a reference of this kind is '", $prefix, "' and 32 lower-case hex digits"),
                    ))
                }
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
            fn from(r: $name) -> String {
                r.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl crate::domain::subject::AuditSubject for $name {
            fn audit_name(&self) -> String {
                self.0.clone()
            }
        }
    };
}

reference!(
    /// A stored card.
    CardRef, "crd_"
);
reference!(
    /// A stored identity (name, ID number, phone).
    IdentityRef, "idn_"
);
reference!(
    /// One reservation against a token's domain controls.
    ReservationId, "rsv_"
);
reference!(
    /// A break-glass reveal waiting for, or holding, its second approval.
    RevealRequestId, "rvq_"
);
reference!(
    /// A bank agreement (签约) stored encrypted by the gateway.
    AgreementRef, "agr_"
);

/// The platform's own identifier of a user (not a secret, not personal
/// data): 1 to 64 of `A-Za-z0-9 . _ -`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(String);

impl crate::domain::subject::AuditSubject for UserId {
    fn audit_name(&self) -> String {
        self.0.clone()
    }
    fn free_form(&self) -> bool {
        true
    }
}

impl UserId {
    /// What `parse` accepts, as a regular expression (OpenAPI).
    pub const PATTERN: &'static str = "^[A-Za-z0-9._-]{1,64}$";

    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        let ok = (1..=64).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !ok {
            return Err(ValidationError::new(
                Field::User,
                Rule::Format,
                "a user id is 1 to 64 letters, digits, '.', '_' or '-'",
            ));
        }
        crate::domain::personal_numbers::refuse_in(text, Field::User)?;
        Ok(UserId(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UserId {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, ValidationError> {
        UserId::parse(&s)
    }
}
impl From<UserId> for String {
    fn from(u: UserId) -> String {
        u.0
    }
}
impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_references_parse_and_differ() {
        let a = CardRef::generate().unwrap();
        let b = CardRef::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(CardRef::parse(a.as_str()).unwrap(), a);
        assert!(
            IdentityRef::parse(a.as_str()).is_err(),
            "a card ref is not an identity ref"
        );
        assert!(CardRef::parse("crd_XYZ").is_err());
    }
}
