//! A person's real name as on the resident ID card.

use crate::domain::validation::{Field, Rule, ValidationError};
use std::fmt;
use zeroize::Zeroizing;

const MAX_CHARS: usize = 64;
const MIDDLE_DOT: char = '\u{00B7}';

/// A real name: 1 to 64 characters of CJK ideographs, Latin letters, single
/// spaces between words, and the middle dot that separates the parts of
/// transliterated minority and foreign names (阿卜杜勒·克里木).
pub(in crate::vault) struct RealName(Zeroizing<String>);

impl RealName {
    pub(in crate::vault) fn parse(input: &str) -> Result<Self, ValidationError> {
        let err = |rule, detail| ValidationError::new(Field::Name, rule, detail);
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(err(Rule::Empty, "a name is required"));
        }
        if trimmed.chars().count() > MAX_CHARS {
            return Err(err(Rule::TooLong, "a name has at most 64 characters"));
        }
        let mut name = Zeroizing::new(String::with_capacity(trimmed.len()));
        for c in trimmed.chars() {
            // Look-alike dots typed on other keyboards mean the same thing.
            let c = match c {
                '\u{2022}' | '\u{30FB}' | '\u{FF0E}' | '\u{2027}' => MIDDLE_DOT,
                other => other,
            };
            if !(is_cjk(c) || c.is_ascii_alphabetic() || c == ' ' || c == MIDDLE_DOT) {
                return Err(err(
                    Rule::InvalidCharacter,
                    "a name has CJK characters, Latin letters, single spaces and the middle dot only",
                ));
            }
            name.push(c);
        }
        let separators = [' ', MIDDLE_DOT];
        let starts_or_ends = name.starts_with(separators) || name.ends_with(separators);
        let doubled = name
            .chars()
            .zip(name.chars().skip(1))
            .any(|(a, b)| separators.contains(&a) && separators.contains(&b));
        if starts_or_ends || doubled {
            return Err(err(
                Rule::MisplacedDot,
                "a middle dot or space must stand alone between two parts of the name",
            ));
        }
        Ok(RealName(name))
    }

    pub(in crate::vault) fn expose(&self) -> &str {
        &self.0
    }

    /// Every character but the last replaced by `*` (张三 → *三).
    pub(in crate::vault) fn masked(&self) -> String {
        let count = self.0.chars().count();
        let mut out: String = std::iter::repeat_n('*', count.saturating_sub(1)).collect();
        out.extend(self.0.chars().last());
        out
    }
}

impl fmt::Debug for RealName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RealName({})", self.masked())
    }
}

fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{4E00}'..='\u{9FFF}'     // CJK Unified Ideographs
        | '\u{3400}'..='\u{4DBF}'   // Extension A
        | '\u{F900}'..='\u{FAFF}'   // Compatibility Ideographs
        | '\u{20000}'..='\u{3134F}' // Extensions B to G (rare characters in names)
        | '\u{3007}'                // 〇, used in some names
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_names() {
        for n in ["张三", "  李四 ", "阿卜杜勒·克里木", "John Smith", "王〇", "𠮷田"] {
            assert!(RealName::parse(n).is_ok(), "{n}");
        }
        assert_eq!(RealName::parse(" 李四 ").unwrap().expose(), "李四");
        assert_eq!(RealName::parse("阿依•古丽").unwrap().expose(), "阿依·古丽");
    }

    #[test]
    fn refuses_with_the_rule() {
        let rule = |s: &str| RealName::parse(s).unwrap_err().rule;
        assert_eq!(rule("   "), Rule::Empty);
        assert_eq!(rule(&"张".repeat(65)), Rule::TooLong);
        assert!(RealName::parse(&"张".repeat(64)).is_ok());
        assert_eq!(rule("张3"), Rule::InvalidCharacter);
        assert_eq!(rule("张\u{0}三"), Rule::InvalidCharacter);
        assert_eq!(rule("<script>"), Rule::InvalidCharacter);
        assert_eq!(rule("·张三"), Rule::MisplacedDot);
        assert_eq!(rule("张··三"), Rule::MisplacedDot);
        assert_eq!(rule("John  Smith"), Rule::MisplacedDot);
    }

    #[test]
    fn masked_and_debug_hide_all_but_the_last_character() {
        let n = RealName::parse("张小三").unwrap();
        assert_eq!(n.masked(), "**三");
        assert_eq!(format!("{n:?}"), "RealName(**三)");
    }
}
