//! Token lifecycle (EMVCo): active and suspended move both ways; either may be
//! deleted; deleted is final.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TokenStatus {
    Active,
    Suspended,
    Deleted,
}

impl TokenStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenStatus::Active => "active",
            TokenStatus::Suspended => "suspended",
            TokenStatus::Deleted => "deleted",
        }
    }

    /// The status after `to`, or an error for a transition EMVCo does not allow.
    pub fn transition(self, to: TokenStatus) -> Result<TokenStatus, LifecycleError> {
        use TokenStatus::*;
        match (self, to) {
            (Active, Suspended) | (Suspended, Active) | (Active, Deleted) | (Suspended, Deleted) => Ok(to),
            (from, to) => Err(LifecycleError { from, to }),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a {from} token cannot become {to}", from = .from.as_str(), to = .to.as_str())]
pub struct LifecycleError {
    pub from: TokenStatus,
    pub to: TokenStatus,
}

#[cfg(test)]
mod tests {
    use super::TokenStatus::*;

    #[test]
    fn exactly_the_allowed_transitions() {
        let all = [Active, Suspended, Deleted];
        let allowed = [
            (Active, Suspended),
            (Suspended, Active),
            (Active, Deleted),
            (Suspended, Deleted),
        ];
        for from in all {
            for to in all {
                assert_eq!(
                    from.transition(to).is_ok(),
                    allowed.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
        }
    }
}
