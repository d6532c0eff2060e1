//! What a personal number looks like when it turns up where it does not
//! belong: a card number (a Luhn-valid run of 13 to 19 digits), a resident
//! ID number (17 digits and an ISO 7064 MOD 11-2 check character), a
//! mainland mobile number (11 digits, `1` then `3`-`9`). Inside a run,
//! anything but a letter or a digit is ignored (spaces, dashes, dots,
//! underscores, slashes, colons), as people write and disguise numbers: a
//! letter ends a run. Free-form
//! identifiers (order, refund, user, merchant ids) refuse such values and
//! request ids are replaced, so none is stored, logged or audited in clear.

use super::luhn;
use super::validation::{Field, Rule, ValidationError};

/// Weights and check characters of GB 11643-1999 (ISO 7064 MOD 11-2).
const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK_CHARS: [u8; 11] = *b"10X98765432";

/// The check character of a resident ID number's 17-digit body.
pub fn id_check_character(body: &[u8; 17]) -> u8 {
    let sum: u32 = body
        .iter()
        .zip(ID_WEIGHTS)
        .map(|(d, w)| u32::from(d.wrapping_sub(b'0')) * w)
        .sum();
    ID_CHECK_CHARS[(sum % 11) as usize]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PersonalNumber {
    Card,
    ResidentId,
    Mobile,
}

impl PersonalNumber {
    fn rule(self) -> Rule {
        match self {
            PersonalNumber::Card => Rule::CardNumberLike,
            PersonalNumber::ResidentId => Rule::IdNumberLike,
            PersonalNumber::Mobile => Rule::PhoneNumberLike,
        }
    }
}

/// The first personal number `text` holds, if any.
pub fn find(text: &str) -> Option<PersonalNumber> {
    let mut run: Vec<u8> = Vec::with_capacity(20);
    let mut found = None;
    for c in text.chars() {
        if c.is_ascii_digit() {
            // `c` is one ASCII byte.
            run.push(c as u8);
        } else if matches!(c, 'X' | 'x') && run.len() == 17 {
            run.push(b'X');
            found = found.or(classify(&run));
            run.clear();
        } else if !run.is_empty() && !c.is_alphanumeric() {
            // A separator inside a run: `4242.4242.4242.4242` is one run.
        } else {
            found = found.or(classify(&run));
            run.clear();
        }
    }
    found.or(classify(&run))
}

fn classify(run: &[u8]) -> Option<PersonalNumber> {
    if run.len() == 18 {
        let (body, check) = run.split_at(17);
        if let Ok(body) = <&[u8; 17]>::try_from(body) {
            if body.iter().all(u8::is_ascii_digit) && id_check_character(body) == check[0] {
                return Some(PersonalNumber::ResidentId);
            }
        }
    }
    if !run.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if (13..=19).contains(&run.len()) && luhn::is_valid(run) {
        return Some(PersonalNumber::Card);
    }
    if run.len() == 11 && run[0] == b'1' && (b'3'..=b'9').contains(&run[1]) {
        return Some(PersonalNumber::Mobile);
    }
    None
}

/// Refuses an identifier a caller chose that holds a personal number,
/// naming `field` and what it looks like.
pub fn refuse_in(text: &str, field: Field) -> Result<(), ValidationError> {
    match find(text) {
        None => Ok(()),
        Some(kind) => Err(ValidationError::new(
            field,
            kind.rule(),
            "an identifier may not hold a card, resident ID or mobile number",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_numbers_in_identifiers_are_found() {
        use PersonalNumber::*;
        assert_eq!(find("4242424242424242"), Some(Card));
        assert_eq!(find("order-4242 4242 4242 4242"), Some(Card));
        assert_eq!(find("x4242-4242-4242-4242.y"), Some(Card));
        assert_eq!(find("6205500000000000004"), Some(Card));
        assert_eq!(find("11010519491231002X"), Some(ResidentId));
        assert_eq!(find("id-11010519491231002x"), Some(ResidentId));
        assert_eq!(find("13800138000"), Some(Mobile));
        assert_eq!(find("u.13800138000"), Some(Mobile));
        assert_eq!(find("4242424242424241"), None, "not Luhn-valid");
        assert_eq!(find("424242424242"), None, "too short");
        assert_eq!(find("42424242424242424242"), None, "too long");
        assert_eq!(find("11010519491231002Y"), None);
        assert_eq!(find("23800138000"), None);
        assert_eq!(find("order-2026-12-03-001"), None);
        assert_eq!(find("20261203151200"), None, "a timestamp order id");
        // Any separator but a letter keeps a run whole.
        assert_eq!(find("o.4242.4242.4242.4242"), Some(Card));
        assert_eq!(find("4242_4242_4242_4242"), Some(Card));
        assert_eq!(find("4242/4242/4242/4242"), Some(Card));
        assert_eq!(find("138:0013:8000"), Some(Mobile));
        assert_eq!(find("110105.19491231.002X"), Some(ResidentId));
        assert_eq!(find("4242a4242b4242c4242"), None, "letters end runs");
    }

    #[test]
    fn the_check_character_of_a_known_number() {
        assert_eq!(id_check_character(b"11010519491231002"), b'X');
    }
}
