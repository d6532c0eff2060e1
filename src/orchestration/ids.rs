//! Identifiers orchestration records get: a prefix and 32 random lower-case
//! hex digits, parsed strictly wherever they come in.

macro_rules! random_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// What `parse` accepts, as a regular expression (OpenAPI).
            pub const PATTERN: &'static str = concat!("^", $prefix, "[0-9a-f]{32}$");

            pub(crate) fn generate() -> Result<Self, crate::vault::crypto::CryptoError> {
                let random = crate::domain::random::array::<16>()?;
                Ok($name(format!("{}{}", $prefix, crate::hex::encode(&random))))
            }

            pub fn parse(text: &str) -> Result<Self, crate::domain::validation::ValidationError> {
                let ok = text.strip_prefix($prefix).is_some_and(|h| {
                    h.len() == 32 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                });
                if ok {
                    Ok($name(text.to_owned()))
                } else {
                    Err(crate::domain::validation::ValidationError::new(
                        crate::domain::validation::Field::Reference,
                        crate::domain::validation::Rule::Format,
                        concat!("a ", $what, " id is '", $prefix, "' and 32 lower-case hex digits"),
                    ))
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = crate::domain::validation::ValidationError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                $name::parse(&s)
            }
        }
        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
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

pub(crate) use random_id;
