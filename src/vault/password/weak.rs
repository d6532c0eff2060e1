//! Weak payment passwords, as Yinfa [2016] No. 170 lists them: repeated
//! digits, ascending or descending runs, and values taken from the
//! customer's own data (birth date, ID number, phone). Also refused: a
//! password of only two distinct digits (121212, 112211), which a guesser
//! tries right after the runs.

use crate::domain::time::CivilDate;
use crate::domain::validation::{Field, Rule, ValidationError};

/// A payment password is exactly six digits (the domestic convention).
pub(super) const LENGTH: usize = 6;

/// What the weakness check compares against: the user's stored identity.
pub(super) struct PersonalData<'a> {
    pub id_number: &'a str,
    pub birth_date: CivilDate,
    pub phone: &'a str,
}

fn refuse(rule: Rule, detail: &'static str) -> ValidationError {
    ValidationError::new(Field::Password, rule, detail)
}

/// The first rule `password` breaks, checked in a fixed order so the named
/// rule is stable.
pub(super) fn check(password: &str, personal: &PersonalData<'_>) -> Result<(), ValidationError> {
    let digits = password.as_bytes();
    if digits.len() != LENGTH {
        return Err(refuse(Rule::Length, "a payment password is exactly 6 digits"));
    }
    if !digits.iter().all(u8::is_ascii_digit) {
        return Err(refuse(Rule::NotDigits, "a payment password is digits only"));
    }
    if digits.iter().all(|d| *d == digits[0]) {
        return Err(refuse(Rule::RepeatedDigits, "the password repeats one digit"));
    }
    if digits.windows(2).all(|w| w[1] == w[0] + 1) {
        return Err(refuse(Rule::AscendingRun, "the password is an ascending run"));
    }
    if digits.windows(2).all(|w| w[0] == w[1] + 1) {
        return Err(refuse(Rule::DescendingRun, "the password is a descending run"));
    }
    let mut seen = [false; 10];
    for d in digits {
        seen[usize::from(d - b'0')] = true;
    }
    if seen.iter().filter(|s| **s).count() <= 2 {
        return Err(refuse(
            Rule::FewDistinctDigits,
            "the password uses only two different digits",
        ));
    }
    if birth_date_forms(personal.birth_date)
        .iter()
        .any(|f| f == password)
    {
        return Err(refuse(Rule::BirthDate, "the password is the user's birth date"));
    }
    if personal.id_number.contains(password) {
        return Err(refuse(
            Rule::IdNumberRun,
            "the password is taken from the user's ID number",
        ));
    }
    if personal.phone.contains(password) {
        return Err(refuse(
            Rule::PhoneRun,
            "the password is taken from the user's phone number",
        ));
    }
    Ok(())
}

/// Every six-digit way of writing a birth date people use: windows of
/// YYYYMMDD (YYYYMM, YYMMDD …) and the day-first and month-first forms.
fn birth_date_forms(date: CivilDate) -> Vec<String> {
    let full = format!("{:04}{:02}{:02}", date.year(), date.month(), date.day());
    let yy = full[2..4].to_owned();
    let (mm, dd) = (&full[4..6], &full[6..8]);
    let mut forms: Vec<String> = (0..=2).map(|i| full[i..i + 6].to_owned()).collect();
    forms.push(format!("{mm}{dd}{yy}"));
    forms.push(format!("{dd}{mm}{yy}"));
    forms
}

#[cfg(test)]
mod tests {
    use super::*;

    fn personal() -> PersonalData<'static> {
        PersonalData {
            id_number: "11010519491231002X",
            birth_date: CivilDate::new(1949, 12, 31).unwrap(),
            phone: "13800138000",
        }
    }

    fn rule(password: &str) -> Option<Rule> {
        check(password, &personal()).err().map(|e| e.rule)
    }

    #[test]
    fn each_weakness_is_named() {
        assert_eq!(rule("12345"), Some(Rule::Length));
        assert_eq!(rule("12a456"), Some(Rule::NotDigits));
        assert_eq!(rule("111111"), Some(Rule::RepeatedDigits));
        assert_eq!(rule("123456"), Some(Rule::AscendingRun));
        assert_eq!(rule("345678"), Some(Rule::AscendingRun));
        assert_eq!(rule("654321"), Some(Rule::DescendingRun));
        assert_eq!(rule("121212"), Some(Rule::FewDistinctDigits));
        assert_eq!(rule("491231"), Some(Rule::BirthDate));
        assert_eq!(rule("194912"), Some(Rule::BirthDate));
        assert_eq!(rule("123149"), Some(Rule::BirthDate));
        assert_eq!(rule("311249"), Some(Rule::BirthDate));
        assert_eq!(rule("101051"), Some(Rule::IdNumberRun));
        assert_eq!(rule("380013"), Some(Rule::PhoneRun));
        assert_eq!(rule("100100"), Some(Rule::FewDistinctDigits));
        assert_eq!(rule("270394"), None);
        assert_eq!(rule("580317"), None);
    }

    #[test]
    fn every_rule_code_is_distinct_and_stable() {
        for (r, code) in [
            (Rule::RepeatedDigits, "repeated_digits"),
            (Rule::AscendingRun, "ascending_run"),
            (Rule::DescendingRun, "descending_run"),
            (Rule::BirthDate, "birth_date"),
            (Rule::IdNumberRun, "id_number_run"),
            (Rule::PhoneRun, "phone_run"),
        ] {
            assert_eq!(r.code(), code);
        }
    }
}
