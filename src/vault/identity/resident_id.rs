//! The 18-character PRC resident identity number (GB 11643-1999).

use crate::domain::time::CivilDate;
use crate::domain::validation::{Field, Rule, ValidationError};
use std::fmt;
use zeroize::Zeroizing;

/// Province-level codes in use, including the 81/82/83 prefixes of residence
/// permits for Hong Kong, Macao and Taiwan residents.
const PROVINCES: [u8; 35] = [
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52, 53, 54,
    61, 62, 63, 64, 65, 71, 81, 82, 83,
];
/// GB 11643-1999 writes the year in four digits and sets no floor. The
/// 18-character number came into use in 1999, when the oldest living
/// residents had been born in the 1880s, so every real birth date of a
/// holder is after 1 January 1800; a year before that is a typing error.
const EARLIEST_BIRTH_YEAR: i32 = 1800;

/// A valid resident ID number: 6-digit area (with a real province), a real
/// birth date not after today, a 3-digit sequence, and the ISO 7064 MOD 11-2
/// check character; lower-case `x` is normalised to `X`.
pub(in crate::vault) struct ResidentId {
    value: Zeroizing<String>,
    birth_date: CivilDate,
}

impl ResidentId {
    pub(in crate::vault) fn parse(input: &str, today: CivilDate) -> Result<Self, ValidationError> {
        let err = |rule, detail| ValidationError::new(Field::IdNumber, rule, detail);
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(err(Rule::Empty, "an ID number is required"));
        }
        if !trimmed.is_ascii() || trimmed.len() != 18 {
            return Err(err(Rule::Length, "a resident ID number has 18 characters"));
        }
        let value = Zeroizing::new(trimmed.to_ascii_uppercase());
        let bytes = value.as_bytes();
        let (body, check) = bytes.split_at(17);
        if !body.iter().all(u8::is_ascii_digit) || !(check[0].is_ascii_digit() || check[0] == b'X') {
            return Err(err(
                Rule::NotDigits,
                "a resident ID number has 17 digits and a final digit or X",
            ));
        }
        let num = |range: std::ops::Range<usize>| {
            body[range]
                .iter()
                .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'))
        };
        let province = num(0..2) as u8;
        if !PROVINCES.contains(&province) {
            return Err(err(
                Rule::AreaCode,
                "the first two digits are not a province code",
            ));
        }
        let birth_date = CivilDate::new(num(6..10) as i32, num(10..12) as u8, num(12..14) as u8)
            .filter(|d| d.year() >= EARLIEST_BIRTH_YEAR)
            .ok_or(err(
                Rule::BirthDate,
                "digits 7 to 14 are not a real birth date (YYYYMMDD)",
            ))?;
        if birth_date > today {
            return Err(err(Rule::BirthDateInFuture, "the birth date is in the future"));
        }
        let check_body: &[u8; 17] = body.try_into().map_err(|_| {
            err(
                Rule::Length,
                "a resident ID number has 17 digits and a final digit or X",
            )
        })?;
        if crate::domain::personal_numbers::id_check_character(check_body) != check[0] {
            return Err(err(
                Rule::CheckCharacter,
                "the last character does not match the ISO 7064 MOD 11-2 check",
            ));
        }
        Ok(ResidentId { value, birth_date })
    }

    pub(in crate::vault) fn expose(&self) -> &str {
        &self.value
    }

    #[allow(dead_code)] // read by the payment-password rules (weak when it is the birth date)
    pub(in crate::vault) fn birth_date(&self) -> CivilDate {
        self.birth_date
    }

    /// Province code and last two characters (11**************2X).
    pub(in crate::vault) fn masked(&self) -> String {
        format!("{}{}{}", &self.value[..2], "*".repeat(14), &self.value[16..])
    }
}

impl fmt::Debug for ResidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResidentId({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> CivilDate {
        CivilDate::new(2026, 11, 21).unwrap()
    }

    #[test]
    fn test_identities() {
        let rows = crate::test_data::identities();
        assert!(rows.len() >= 6);
        for row in rows {
            match ResidentId::parse(&row.id_number, today()) {
                Ok(_) => assert!(row.valid, "{}", row.note),
                Err(e) => {
                    assert!(!row.valid, "{}: {e}", row.note);
                    assert_eq!(e.rule.code(), row.expected_rule, "{}", row.note);
                }
            }
        }
    }

    #[test]
    fn each_rule_is_named() {
        let rule = |s: &str| ResidentId::parse(s, today()).unwrap_err().rule;
        assert_eq!(rule("110105194912310021"), Rule::CheckCharacter);
        assert_eq!(rule("110105199902300015"), Rule::BirthDate);
        assert_eq!(rule("110105205001010019"), Rule::BirthDateInFuture);
        assert_eq!(rule("11010519491231002"), Rule::Length);
        assert_eq!(rule("11010519491231002Y"), Rule::NotDigits);
        assert_eq!(rule("99010519491231002X"), Rule::AreaCode);
        assert_eq!(rule(""), Rule::Empty);
        assert_eq!(rule("１１０１０５１９４９１２３１００２Ｘ"), Rule::Length);
    }

    #[test]
    fn lower_case_x_is_normalised_and_facts_are_kept() {
        let id = ResidentId::parse("11010519491231002x", today()).unwrap();
        assert_eq!(id.expose(), "11010519491231002X");
        assert_eq!(id.birth_date(), CivilDate::new(1949, 12, 31).unwrap());
        assert_eq!(id.masked(), "11**************2X");
        assert_eq!(format!("{id:?}"), "ResidentId(11**************2X)");
    }

    /// A valid number for `birth` (YYYYMMDD) in Dongcheng, Beijing.
    fn born(birth: &str) -> String {
        let body = format!("110101{birth}001");
        let body: &[u8; 17] = body.as_bytes().try_into().unwrap();
        format!(
            "{}{}",
            std::str::from_utf8(body).unwrap(),
            crate::domain::personal_numbers::id_check_character(body) as char
        )
    }

    #[test]
    fn birth_dates_from_1800_are_accepted_and_impossible_ones_are_not() {
        for birth in ["18000101", "18890215", "18991231", "19000101", "20000229"] {
            assert!(ResidentId::parse(&born(birth), today()).is_ok(), "{birth}");
        }
        for birth in ["17991231", "00000101", "19000229", "18991301", "18990132"] {
            let e = ResidentId::parse(&born(birth), today()).unwrap_err();
            assert_eq!(e.rule, Rule::BirthDate, "{birth}");
        }
    }

    #[test]
    fn a_birth_date_of_today_is_accepted_tomorrow_is_not() {
        // 110105 20261121 001 + check character computed here.
        let body = b"11010520261121001";
        let id = format!(
            "{}{}",
            std::str::from_utf8(body).unwrap(),
            crate::domain::personal_numbers::id_check_character(body) as char
        );
        assert!(ResidentId::parse(&id, today()).is_ok());
        let yesterday = CivilDate::new(2026, 11, 20).unwrap();
        assert_eq!(
            ResidentId::parse(&id, yesterday).unwrap_err().rule,
            Rule::BirthDateInFuture
        );
    }
}
