//! The caller's identity, read from its verified client certificate: a
//! SPIFFE-style URI SAN when it has one, else its subject common name.

use serde::{Deserialize, Serialize};
use std::fmt;

/// `spiffe://<trust domain>/<path>`, e.g. `spiffe://tokenvault/orchestrator`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpiffeId {
    trust_domain: String,
    path: String,
}

impl SpiffeId {
    pub fn parse(uri: &str) -> Result<Self, IdentityError> {
        let rest = uri.strip_prefix("spiffe://").ok_or(IdentityError::NotSpiffe)?;
        let (trust_domain, path) = rest.split_once('/').ok_or(IdentityError::NotSpiffe)?;
        let domain_ok = !trust_domain.is_empty()
            && trust_domain.len() <= 255
            && trust_domain
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b));
        let path_ok = !path.is_empty()
            && path.len() <= 255
            && path.split('/').all(|seg| {
                !seg.is_empty()
                    && seg != "."
                    && seg != ".."
                    && seg
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
            });
        if domain_ok && path_ok {
            Ok(SpiffeId {
                trust_domain: trust_domain.to_owned(),
                path: path.to_owned(),
            })
        } else {
            Err(IdentityError::NotSpiffe)
        }
    }

    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    pub fn path(&self) -> &str {
        &self.path
    }
}

/// Who a client certificate says the caller is.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[non_exhaustive]
pub enum Identity {
    Spiffe(SpiffeId),
    /// Written `cn:<name>` in policies and audit records.
    CommonName(String),
}

#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentityError {
    #[error("not a spiffe://trust-domain/path identity")]
    NotSpiffe,
    #[error("a common name identity is `cn:` and 1 to 64 printable characters")]
    CommonName,
    #[error("the client certificate cannot be parsed")]
    Certificate,
    #[error("the client certificate has more than one URI SAN; its identity is ambiguous")]
    AmbiguousUri,
    #[error("the client certificate has neither a spiffe:// URI SAN nor a common name")]
    NoIdentity,
}

impl Identity {
    /// Parses the written form: `spiffe://…` or `cn:…`.
    pub fn parse(text: &str) -> Result<Self, IdentityError> {
        if let Some(cn) = text.strip_prefix("cn:") {
            return Self::common_name(cn);
        }
        SpiffeId::parse(text).map(Identity::Spiffe)
    }

    fn common_name(cn: &str) -> Result<Self, IdentityError> {
        let ok = (1..=64).contains(&cn.chars().count()) && !cn.chars().any(char::is_control);
        if ok {
            Ok(Identity::CommonName(cn.to_owned()))
        } else {
            Err(IdentityError::CommonName)
        }
    }

    /// Reads the identity of a certificate that rustls already verified.
    pub fn from_certificate(der: &[u8]) -> Result<Self, IdentityError> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|_| IdentityError::Certificate)?;
        let san = cert
            .subject_alternative_name()
            .map_err(|_| IdentityError::Certificate)?;
        let uris: Vec<&str> = san
            .iter()
            .flat_map(|ext| ext.value.general_names.iter())
            .filter_map(|name| match name {
                x509_parser::extensions::GeneralName::URI(uri) => Some(*uri),
                _ => None,
            })
            .collect();
        match uris.as_slice() {
            [uri] => return SpiffeId::parse(uri).map(Identity::Spiffe),
            [] => {}
            _ => return Err(IdentityError::AmbiguousUri),
        }
        let cn = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .ok_or(IdentityError::NoIdentity)?;
        Self::common_name(cn)
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Spiffe(id) => write!(f, "spiffe://{}/{}", id.trust_domain, id.path),
            Identity::CommonName(cn) => write!(f, "cn:{cn}"),
        }
    }
}

impl TryFrom<String> for Identity {
    type Error = IdentityError;
    fn try_from(s: String) -> Result<Self, IdentityError> {
        Identity::parse(&s)
    }
}

impl From<Identity> for String {
    fn from(id: Identity) -> String {
        id.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_forms_round_trip() {
        for text in [
            "spiffe://tokenvault/orchestrator",
            "spiffe://pay.example/ns/prod/sa/vault",
            "cn:legacy client",
        ] {
            assert_eq!(Identity::parse(text).unwrap().to_string(), text);
        }
        for bad in [
            "spiffe://tokenvault",
            "spiffe://Tokenvault/x",
            "spiffe://tv/../x",
            "https://tv/x",
            "cn:",
            "orchestrator",
        ] {
            assert!(Identity::parse(bad).is_err(), "{bad}");
        }
    }
}
