//! A node's name among several on one store. It names the node's own audit
//! chain and its leases in store keys, so it is short and plain.

use serde::{Deserialize, Serialize};
use std::fmt;

pub const NODE_NAME_RULE: &str = "1 to 32 lowercase letters, digits or '-', starting with a letter";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a node name is {NODE_NAME_RULE}")]
pub struct NodeNameError;

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NodeName(String);

impl NodeName {
    pub fn parse(text: &str) -> Result<Self, NodeNameError> {
        let plain = text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let starts_with_letter = text.bytes().next().is_some_and(|b| b.is_ascii_lowercase());
        if (1..=32).contains(&text.len()) && plain && starts_with_letter {
            Ok(NodeName(text.to_owned()))
        } else {
            Err(NodeNameError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for NodeName {
    type Error = NodeNameError;
    fn try_from(text: String) -> Result<Self, NodeNameError> {
        NodeName::parse(&text)
    }
}

impl From<NodeName> for String {
    fn from(name: NodeName) -> String {
        name.0
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::NodeName;

    #[test]
    fn a_node_name_is_short_plain_and_starts_with_a_letter() {
        for good in ["a", "node-2", "b0123456789012345678901234567890"] {
            assert!(NodeName::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "2a", "A", "a/b", "a_b", "a b", "-a", &"a".repeat(33)] {
            assert!(NodeName::parse(bad).is_err(), "{bad}");
        }
    }
}
