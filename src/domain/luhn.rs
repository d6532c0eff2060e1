//! The ISO/IEC 7812 mod-10 check digit. Public: it reveals nothing, and
//! callers use it to make test data. In the domain layer because free-form
//! identifiers are checked with it too (`personal_numbers`), not only cards.

/// Whether `digits` (ASCII '0'..='9' only) carries a valid Luhn check digit.
pub fn is_valid(digits: &[u8]) -> bool {
    weighted_sum(digits, false) % 10 == 0
}

/// The ASCII digit that makes `body ++ [digit]` Luhn-valid (`body` is ASCII digits).
pub fn check_digit(body: &[u8]) -> u8 {
    let sum = weighted_sum(body, true);
    b'0' + ((10 - (sum % 10)) % 10) as u8
}

/// Sum with every second digit from the right doubled. `body_only` means the
/// check digit is not yet present, so doubling starts at the rightmost digit.
fn weighted_sum(digits: &[u8], body_only: bool) -> u32 {
    digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let v = u32::from(d - b'0');
            if (i % 2 == 1) != body_only {
                let doubled = v * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                v
            }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_numbers() {
        assert!(is_valid(b"4242424242424242"));
        assert!(is_valid(b"378282246310005"));
        assert!(is_valid(b"6205500000000000004"));
        assert!(!is_valid(b"4242424242424241"));
        assert_eq!(check_digit(b"424242424242424"), b'2');
        assert_eq!(check_digit(b"7992739871"), b'3');
    }

    proptest! {
        #[test]
        fn check_digit_always_validates(body in proptest::collection::vec(0u8..10, 1..25)) {
            let mut digits: Vec<u8> = body.iter().map(|d| b'0' + d).collect();
            let c = check_digit(&digits);
            digits.push(c);
            prop_assert!(is_valid(&digits));
            // Any other final digit breaks it.
            let last = digits.len() - 1;
            digits[last] = b'0' + ((c - b'0' + 1) % 10);
            prop_assert!(!is_valid(&digits));
        }
    }
}
