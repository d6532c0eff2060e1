//! Which identity may call which operation: one TOML file per identity in the
//! policies folder, default deny. Loading refuses a policy set that would let
//! anyone but a dedicated break-glass identity reveal a PAN.

mod grant;
pub use grant::{ApprovalGrant, RevealGrant};

use crate::domain::operation::Operation;
use crate::tls::Identity;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One policy file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    identity: Identity,
    description: String,
    allow: BTreeSet<Operation>,
    /// Marks the one kind of identity that may reveal a PAN. Such a policy
    /// may grant nothing else.
    #[serde(default)]
    break_glass: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub identity: Identity,
    pub description: String,
    pub allow: BTreeSet<Operation>,
    pub break_glass: bool,
    pub file: PathBuf,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    #[error("cannot read policies from {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("{path}: identity {identity} already has a policy in {first}")]
    Duplicate {
        path: PathBuf,
        identity: String,
        first: PathBuf,
    },
    #[error("{path}: card.reveal and card.reveal_request may only be granted by a policy marked break_glass = true")]
    RevealWithoutBreakGlass { path: PathBuf },
    #[error("{path}: a break_glass policy grants card.reveal and card.reveal_request and nothing else")]
    BreakGlassTooBroad { path: PathBuf },
    #[error("{path}: the orchestrator can never approve a reveal")]
    OrchestratorApproves { path: PathBuf },
    #[error("{path}: {operation} is the vault's own gateway call and cannot be granted")]
    InternalOperation { path: PathBuf, operation: &'static str },
    #[error("{path}: the orchestrator can never be a break-glass identity")]
    OrchestratorBreakGlass { path: PathBuf },
    #[error("{path}: no policy files (*.toml) found")]
    Empty { path: PathBuf },
}

/// All loaded policies, by identity.
#[derive(Clone, Debug, Default)]
pub struct PolicySet {
    by_identity: BTreeMap<Identity, Policy>,
}

fn is_orchestrator(identity: &Identity) -> bool {
    match identity {
        Identity::Spiffe(id) => id.path().split('/').any(|seg| seg == "orchestrator"),
        Identity::CommonName(cn) => cn.contains("orchestrator"),
    }
}

impl PolicySet {
    /// Loads every `*.toml` in `dir`, in name order.
    pub fn load_dir(dir: &Path) -> Result<Self, PolicyError> {
        let read_err = |e: std::io::Error| PolicyError::Read {
            path: dir.to_owned(),
            reason: e.to_string(),
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(read_err)?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(PolicyError::Empty { path: dir.to_owned() });
        }
        let mut set = PolicySet::default();
        for path in files {
            let text = std::fs::read_to_string(&path).map_err(|e| PolicyError::Read {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            set.add(Self::parse(&path, &text)?)?;
        }
        Ok(set)
    }

    fn parse(path: &Path, text: &str) -> Result<Policy, PolicyError> {
        let file: PolicyFile = toml::from_str(text).map_err(|e| PolicyError::Parse {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let path = path.to_owned();
        let reveals = |op: &Operation| matches!(op, Operation::CardReveal | Operation::CardRevealRequest);
        if file.allow.iter().any(reveals) && !file.break_glass {
            return Err(PolicyError::RevealWithoutBreakGlass { path });
        }
        // Which also keeps the approver and the revealer apart: a
        // break-glass policy cannot grant `reveal.approve`.
        if file.break_glass && !file.allow.iter().all(reveals) {
            return Err(PolicyError::BreakGlassTooBroad { path });
        }
        if file.allow.contains(&Operation::RevealApprove) && is_orchestrator(&file.identity) {
            return Err(PolicyError::OrchestratorApproves { path });
        }
        if file.break_glass && is_orchestrator(&file.identity) {
            return Err(PolicyError::OrchestratorBreakGlass { path });
        }
        if let Some(op) = file.allow.iter().find(|op| op.is_internal()) {
            return Err(PolicyError::InternalOperation {
                path,
                operation: op.as_str(),
            });
        }
        Ok(Policy {
            identity: file.identity,
            description: file.description,
            allow: file.allow,
            break_glass: file.break_glass,
            file: path,
        })
    }

    fn add(&mut self, policy: Policy) -> Result<(), PolicyError> {
        if let Some(first) = self.by_identity.get(&policy.identity) {
            return Err(PolicyError::Duplicate {
                path: policy.file.clone(),
                identity: policy.identity.to_string(),
                first: first.file.clone(),
            });
        }
        self.by_identity.insert(policy.identity.clone(), policy);
        Ok(())
    }

    /// Default deny: only what the identity's policy lists.
    pub fn allows(&self, identity: &Identity, operation: Operation) -> bool {
        self.by_identity
            .get(identity)
            .is_some_and(|p| p.allow.contains(&operation))
    }

    /// A set of the one policy `text` (tests).
    #[cfg(test)]
    pub(crate) fn parse_for_test(text: &str) -> Self {
        let mut set = PolicySet::default();
        let policy = Self::parse(Path::new("test.toml"), text).unwrap_or_else(|e| panic!("{e}"));
        set.add(policy).unwrap_or_else(|e| panic!("{e}"));
        set
    }

    pub fn policies(&self) -> impl Iterator<Item = &Policy> {
        self.by_identity.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> PolicySet {
        PolicySet::load_dir(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/policies"))).unwrap()
    }

    fn id(text: &str) -> Identity {
        Identity::parse(text).unwrap()
    }

    #[test]
    fn shipped_policies_load_and_only_break_glass_reveals() {
        let set = shipped();
        assert_eq!(set.policies().count(), 9);
        assert!(set.allows(&id("spiffe://tokenvault/bank-sim"), Operation::PaymentNotify));
        assert!(!set.allows(&id("spiffe://tokenvault/bank-sim"), Operation::PaymentDebit));
        assert!(!set.allows(&id("spiffe://tokenvault/orchestrator"), Operation::PaymentNotify));
        for policy in set.policies() {
            assert_eq!(
                policy.allow.contains(&Operation::CardReveal),
                policy.break_glass,
                "{}",
                policy.file.display()
            );
        }
        assert!(set.allows(&id("spiffe://tokenvault/break-glass"), Operation::CardReveal));
        assert!(!set.allows(&id("spiffe://tokenvault/orchestrator"), Operation::CardReveal));
        // Dual control: the two halves of a reveal are granted apart.
        assert!(set.allows(
            &id("spiffe://tokenvault/break-glass"),
            Operation::CardRevealRequest
        ));
        assert!(!set.allows(&id("spiffe://tokenvault/break-glass"), Operation::RevealApprove));
        assert!(set.allows(
            &id("spiffe://tokenvault/reveal-approver"),
            Operation::RevealApprove
        ));
        assert!(!set.allows(&id("spiffe://tokenvault/reveal-approver"), Operation::CardReveal));
        assert!(set.allows(&id("spiffe://tokenvault/card-capture"), Operation::CardStore));
        assert!(!set.allows(&id("spiffe://tokenvault/card-capture"), Operation::TokenRead));
        assert!(
            !set.allows(&id("spiffe://tokenvault/nobody"), Operation::CardStore),
            "default deny"
        );
    }

    #[test]
    fn policies_that_widen_reveal_are_refused() {
        let p = Path::new("x.toml");
        let reveal = r#"identity = "spiffe://tokenvault/orchestrator"
description = "x"
allow = ["token.read", "card.reveal"]"#;
        assert!(matches!(
            PolicySet::parse(p, reveal),
            Err(PolicyError::RevealWithoutBreakGlass { .. })
        ));
        let broad = r#"identity = "spiffe://tokenvault/ops"
description = "x"
break_glass = true
allow = ["token.read", "card.reveal"]"#;
        assert!(matches!(
            PolicySet::parse(p, broad),
            Err(PolicyError::BreakGlassTooBroad { .. })
        ));
        let self_approving = r#"identity = "spiffe://tokenvault/ops"
description = "x"
break_glass = true
allow = ["card.reveal", "card.reveal_request", "reveal.approve"]"#;
        assert!(matches!(
            PolicySet::parse(p, self_approving),
            Err(PolicyError::BreakGlassTooBroad { .. })
        ));
        let approving_orchestrator = r#"identity = "spiffe://tokenvault/orchestrator"
description = "x"
allow = ["reveal.approve"]"#;
        assert!(matches!(
            PolicySet::parse(p, approving_orchestrator),
            Err(PolicyError::OrchestratorApproves { .. })
        ));
        let orchestrator = r#"identity = "spiffe://tokenvault/orchestrator"
description = "x"
break_glass = true
allow = ["card.reveal"]"#;
        assert!(matches!(
            PolicySet::parse(p, orchestrator),
            Err(PolicyError::OrchestratorBreakGlass { .. })
        ));
        let unknown_op = r#"identity = "spiffe://tokenvault/x"
description = "x"
allow = ["card.steal"]"#;
        assert!(matches!(
            PolicySet::parse(p, unknown_op),
            Err(PolicyError::Parse { .. })
        ));
        let unknown_field = r#"identity = "spiffe://tokenvault/x"
description = "x"
allow = []
deny = []"#;
        assert!(matches!(
            PolicySet::parse(p, unknown_field),
            Err(PolicyError::Parse { .. })
        ));
    }
}
