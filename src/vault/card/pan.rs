//! The primary account number. A `Pan` can only exist valid, and only code
//! inside `crate::vault` can name the type or read its digits: everything else
//! sees a `MaskedPan`. See `src/boundary_probe.rs` for the compile-time proof.

use super::luhn;
use super::network::Network;
use super::rules::CardRules;
use crate::domain::validation::{Field, Rule, ValidationError};
use serde::{Deserialize, Serialize};
use std::fmt;
use zeroize::Zeroizing;

const MIN_LEN: usize = 13;
const MAX_LEN: usize = 19;

/// A valid card number. No `Display`, no `Clone`, no serde: the digits leave
/// only through `expose_digits`, which only `crate::vault` can call.
pub(in crate::vault) struct Pan {
    digits: Zeroizing<String>,
    network: Network,
}

impl Pan {
    /// Parses user input: spaces and dashes are stripped, then every rule is
    /// checked. The error names the rule and never repeats the input.
    pub(in crate::vault) fn parse(input: &str, rules: &CardRules) -> Result<Pan, ValidationError> {
        let err = |rule, detail| ValidationError::new(Field::Pan, rule, detail);
        let mut digits = Zeroizing::new(String::with_capacity(MAX_LEN));
        for c in input.chars() {
            match c {
                ' ' | '-' => {}
                '0'..='9' => {
                    if digits.len() == MAX_LEN * 2 {
                        // Stop copying absurd input; it is refused below anyway.
                        break;
                    }
                    digits.push(c)
                }
                _ => {
                    return Err(err(
                        Rule::NotDigits,
                        "a card number has digits only (spaces and dashes are ignored)",
                    ))
                }
            }
        }
        if digits.is_empty() {
            return Err(err(Rule::Empty, "a card number is required"));
        }
        if digits.len() < MIN_LEN || digits.len() > MAX_LEN {
            return Err(err(Rule::Length, "a card number has 13 to 19 digits"));
        }
        let network = Network::detect(digits.as_bytes()).ok_or(err(
            Rule::UnknownNetwork,
            "the prefix belongs to no accepted card network",
        ))?;
        if !network.allows_length(digits.len()) {
            return Err(err(
                Rule::LengthForNetwork,
                "the number of digits is not one this card network issues",
            ));
        }
        if !luhn::is_valid(digits.as_bytes()) && !rules.is_luhn_exempt(&digits) {
            return Err(err(
                Rule::Luhn,
                "the check digit is wrong (Luhn); only BINs configured as Luhn-exempt skip this check",
            ));
        }
        Ok(Pan { digits, network })
    }

    /// The plaintext digits, for the vault's encryption and the gateway only.
    pub(in crate::vault) fn expose_digits(&self) -> &str {
        &self.digits
    }

    pub(in crate::vault) fn network(&self) -> Network {
        self.network
    }

    pub(in crate::vault) fn len(&self) -> usize {
        self.digits.len()
    }

    pub(in crate::vault) fn masked(&self) -> MaskedPan {
        MaskedPan::of(&self.digits)
    }
}

impl fmt::Debug for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pan({})", self.masked().as_str())
    }
}

/// A card number with all but (at most) the first six and last four digits
/// replaced by `*`. At least six digits are always hidden, so short PANs show
/// fewer leading digits (PCI DSS 3.4.1 sets six + four as the maximum).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MaskedPan(String);

impl MaskedPan {
    const TAIL: usize = 4;
    const MAX_HEAD: usize = 6;
    const MIN_HIDDEN: usize = 6;

    fn of(digits: &str) -> Self {
        let len = digits.len();
        let head = Self::MAX_HEAD.min(len.saturating_sub(Self::TAIL + Self::MIN_HIDDEN));
        let tail_start = len.saturating_sub(Self::TAIL).max(head);
        let mut out = String::with_capacity(len);
        out.push_str(&digits[..head]);
        out.extend(std::iter::repeat_n('*', tail_start - head));
        out.push_str(&digits[tail_start..]);
        MaskedPan(out)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn last_four(&self) -> &str {
        &self.0[self.0.len().saturating_sub(4)..]
    }
}

impl fmt::Debug for MaskedPan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for MaskedPan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(s: &str) -> Result<Pan, ValidationError> {
        Pan::parse(s, &CardRules::default())
    }

    fn rule_of(s: &str) -> Rule {
        parse(s).unwrap_err().rule
    }

    #[test]
    fn test_cards_parse_as_documented() {
        let cards = crate::test_data::cards();
        assert!(cards.len() >= 10);
        for card in cards {
            let (pan, network, len) = (&card.pan, &card.network, card.length);
            let parsed = parse(pan);
            if card.luhn_valid {
                let p = parsed.unwrap_or_else(|e| panic!("{network} {len}: {e}"));
                assert_eq!(p.network().as_str(), network);
                assert_eq!(p.len(), len);
                assert_eq!(p.expose_digits(), pan);
            } else {
                let refused = parsed.expect_err(&card.note);
                assert_eq!(
                    refused.rule.code(),
                    card.expected_rule,
                    "{network} {len}: {}",
                    card.note
                );
            }
        }
    }

    #[test]
    fn spaces_and_dashes_are_stripped() {
        let p = parse(" 4242 4242-4242 4242 ").unwrap();
        assert_eq!(p.expose_digits(), "4242424242424242");
    }

    #[test]
    fn each_rule_is_named() {
        assert_eq!(rule_of(""), Rule::Empty);
        assert_eq!(rule_of(" - "), Rule::Empty);
        assert_eq!(rule_of("4242a42424242424"), Rule::NotDigits);
        assert_eq!(rule_of("４２４２４２４２４２４２４２４２"), Rule::NotDigits);
        assert_eq!(rule_of("424242424242"), Rule::Length);
        assert_eq!(rule_of("42424242424242424242"), Rule::Length);
        assert_eq!(rule_of("8100000000000000"), Rule::UnknownNetwork);
        assert_eq!(rule_of("37828224631000"), Rule::LengthForNetwork);
        assert_eq!(rule_of("4242424242424241"), Rule::Luhn);
    }

    #[test]
    fn luhn_exempt_prefixes_skip_only_luhn() {
        let rules = CardRules::new(["622999"]).unwrap();
        assert!(Pan::parse("6229990000000001", &rules).is_ok());
        assert_eq!(
            Pan::parse("6229980000000001", &rules).unwrap_err().rule,
            Rule::Luhn
        );
        assert_eq!(
            Pan::parse("622999000000001", &rules).unwrap_err().rule,
            Rule::LengthForNetwork
        );
        assert!(CardRules::new(["62a"]).is_err());
    }

    #[test]
    fn errors_and_debug_never_show_the_digits() {
        let p = parse("6205500000000000004").unwrap();
        let dbg = format!("{p:?}");
        assert_eq!(dbg, "Pan(620550*********0004)");
        let e = parse("4242424242424241").unwrap_err();
        assert!(!format!("{e} {e:?}").contains("424242424242"));
    }

    #[test]
    fn masks_for_each_length() {
        assert_eq!(MaskedPan::of("6222020000000000").as_str(), "622202******0000");
        assert_eq!(MaskedPan::of("378282246310005").as_str(), "37828******0005");
        assert_eq!(MaskedPan::of("4222222222222").as_str(), "422******2222");
    }

    proptest! {
        #[test]
        fn masking_never_shows_more_than_six_and_four(digits in "[0-9]{12,19}") {
            let masked = MaskedPan::of(&digits);
            let m = masked.as_str();
            prop_assert_eq!(m.len(), digits.len());
            let shown: Vec<usize> = m.char_indices().filter(|(_, c)| *c != '*').map(|(i, _)| i).collect();
            let head = shown.iter().take_while(|&&i| i < 6).count();
            prop_assert!(head <= 6);
            prop_assert!(shown.len() <= 10);
            prop_assert!(digits.len() - shown.len() >= 6, "at least six hidden");
            prop_assert!(shown.iter().all(|&i| i < 6 || i >= digits.len() - 4));
            for &i in &shown {
                prop_assert_eq!(m.as_bytes()[i], digits.as_bytes()[i]);
            }
        }

        #[test]
        fn any_parsed_pan_is_luhn_valid_and_of_network_length(body in "[2-6][0-9]{11,17}") {
            let mut d: Vec<u8> = body.into_bytes();
            d.push(luhn::check_digit(&d));
            let s = String::from_utf8(d).unwrap();
            if let Ok(p) = parse(&s) {
                prop_assert!(luhn::is_valid(p.expose_digits().as_bytes()));
                prop_assert!(p.network().allows_length(p.len()));
            }
        }
    }
}
