//! The object of an audit record, as the layers above the vault hand it
//! in. Only the vault makes one (its field is private here): from a parsed
//! value (`Vault::audit_object`), or from raw request text as a keyed
//! digest (`Vault::unparsed_object`), so text that did not parse, a card
//! number sent where a token belongs, say, never lands in the trail.

use super::card::luhn;
use super::Vault;
use crate::domain::subject::AuditSubject;
use crate::store::Store;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditObject(String);

impl AuditObject {
    /// An object the vault itself names (a reference it made or parsed).
    pub(super) fn named_by_vault(text: String) -> Self {
        AuditObject(text)
    }

    pub(super) fn into_string(self) -> String {
        self.0
    }

    /// The text the record keeps; safe to put in an audit detail too.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `text` holds what a PAN looks like: a run of 13 to 19 digits
/// (spaces, dots or dashes between them allowed) with a valid check digit.
fn holds_a_pan(text: &str) -> bool {
    text.split(|c: char| !(c.is_ascii_digit() || c == ' ' || c == '-' || c == '.'))
        .any(|run| {
            let digits: Vec<u8> = run.bytes().filter(u8::is_ascii_digit).collect();
            (13..=19).contains(&digits.len()) && luhn::is_valid(&digits)
        })
}

impl<S: Store> Vault<S> {
    /// `subject` as an audit object; a free-form identifier that holds what
    /// looks like a card number is kept only as a keyed digest.
    pub fn audit_object(&self, subject: &impl AuditSubject) -> AuditObject {
        let name = subject.audit_name();
        if subject.free_form() && holds_a_pan(&name) {
            return self.unparsed_object(&name);
        }
        AuditObject(name)
    }

    /// Text that did not parse, as `unparsed:` and 16 hex digits of a keyed
    /// digest: the same text always gives the same digest (so repeated
    /// probes can be told apart), and the digest reveals nothing.
    pub fn unparsed_object(&self, raw: &str) -> AuditObject {
        let digest = self
            .keyring
            .request_key()
            .fingerprint("audit-object", raw.as_bytes())
            .0;
        AuditObject(format!("unparsed:{}", crate::hex::encode(&digest[..8])))
    }
}

#[cfg(test)]
mod tests {
    use super::holds_a_pan;

    #[test]
    fn card_numbers_are_found_with_separators_and_inside_other_text() {
        assert!(holds_a_pan("4242424242424242"));
        assert!(holds_a_pan("4242-4242-4242-4242"));
        assert!(holds_a_pan("order=M1/4242.4242.4242.4242"));
        assert!(!holds_a_pan("4242424242424241"));
        assert!(!holds_a_pan("order=M1/20261202-0001"));
        assert!(!holds_a_pan("12345"));
    }
}
