//! What an audit record may name as its object: only a value that parsed
//! as its kind. The vault turns a subject into an `AuditObject`
//! (`Vault::audit_object`); raw request text can only become a keyed digest.

/// A parsed value an audit record may name.
pub trait AuditSubject {
    /// The text the audit record keeps.
    fn audit_name(&self) -> String;

    /// True for free-form identifiers (user, order, merchant, channel ids):
    /// they accept any short run of digits, so a card number sent in their
    /// place parses too, and the vault digests one that looks like a PAN.
    fn free_form(&self) -> bool {
        false
    }
}

/// A data-key version number.
impl AuditSubject for u32 {
    fn audit_name(&self) -> String {
        self.to_string()
    }
}
