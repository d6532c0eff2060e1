//! Every operation the vault offers, by its stable name. Policies grant these
//! names; audit records carry them.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[non_exhaustive]
pub enum Operation {
    CardStore,
    CardRead,
    /// Break-glass detokenisation: returns a PAN.
    CardReveal,
    IdentityStore,
    IdentityRead,
    TokenIssue,
    TokenRead,
    TokenList,
    TokenSuspend,
    TokenResume,
    TokenDelete,
    TokenReserve,
    ReservationCommit,
    ReservationRelease,
    ReservationRead,
    AuditRead,
    AuditVerify,
    AuditExport,
    MetricsRead,
    OpenApiRead,
    AdminReload,
}

impl Operation {
    pub const ALL: [Operation; 21] = [
        Operation::CardStore,
        Operation::CardRead,
        Operation::CardReveal,
        Operation::IdentityStore,
        Operation::IdentityRead,
        Operation::TokenIssue,
        Operation::TokenRead,
        Operation::TokenList,
        Operation::TokenSuspend,
        Operation::TokenResume,
        Operation::TokenDelete,
        Operation::TokenReserve,
        Operation::ReservationCommit,
        Operation::ReservationRelease,
        Operation::ReservationRead,
        Operation::AuditRead,
        Operation::AuditVerify,
        Operation::AuditExport,
        Operation::MetricsRead,
        Operation::OpenApiRead,
        Operation::AdminReload,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::CardStore => "card.store",
            Operation::CardRead => "card.read",
            Operation::CardReveal => "card.reveal",
            Operation::IdentityStore => "identity.store",
            Operation::IdentityRead => "identity.read",
            Operation::TokenIssue => "token.issue",
            Operation::TokenRead => "token.read",
            Operation::TokenList => "token.list",
            Operation::TokenSuspend => "token.suspend",
            Operation::TokenResume => "token.resume",
            Operation::TokenDelete => "token.delete",
            Operation::TokenReserve => "token.reserve",
            Operation::ReservationCommit => "reservation.commit",
            Operation::ReservationRelease => "reservation.release",
            Operation::ReservationRead => "reservation.read",
            Operation::AuditRead => "audit.read",
            Operation::AuditVerify => "audit.verify",
            Operation::AuditExport => "audit.export",
            Operation::MetricsRead => "metrics.read",
            Operation::OpenApiRead => "openapi.read",
            Operation::AdminReload => "admin.reload",
        }
    }

    pub fn parse(name: &str) -> Option<Operation> {
        Operation::ALL.into_iter().find(|op| op.as_str() == name)
    }
}

impl TryFrom<String> for Operation {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Operation::parse(&s).ok_or_else(|| format!("unknown operation `{s}`"))
    }
}

impl From<Operation> for String {
    fn from(op: Operation) -> String {
        op.as_str().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut names: Vec<&str> = Operation::ALL.iter().map(|o| o.as_str()).collect();
        for op in Operation::ALL {
            assert_eq!(Operation::parse(op.as_str()), Some(op));
        }
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Operation::ALL.len());
    }
}
