//! Settlement dates (`YYYY-MM-DD`): the day a channel's statement covers,
//! counted in Beijing time (UTC+8), as Chinese channels cut their days.

use crate::domain::validation::{Field, Rule, ValidationError};
use std::fmt;

/// Beijing time is UTC+8 all year.
pub const BEIJING_OFFSET_S: i64 = 8 * 3_600;

/// A calendar date, parsed strictly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SettlementDate {
    /// Days since 1970-01-01.
    day: i64,
}

impl SettlementDate {
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        day_number(text)
            .map(|day| SettlementDate { day })
            .ok_or_else(|| ValidationError::new(Field::Date, Rule::Format, "a date is YYYY-MM-DD"))
    }

    /// The Beijing date of Unix time `at_s`.
    pub fn of_time(at_s: i64) -> Self {
        SettlementDate {
            day: (at_s + BEIJING_OFFSET_S).div_euclid(86_400),
        }
    }

    pub fn day_number(self) -> i64 {
        self.day
    }

    pub fn next(self) -> Self {
        SettlementDate { day: self.day + 1 }
    }
}

impl fmt::Display for SettlementDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Howard Hinnant's civil_from_days.
        let z = self.day + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date (proleptic Gregorian).
pub fn day_number(date: &str) -> Option<i64> {
    let mut parts = date.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !(digits(y) && digits(m) && digits(d)) {
        return None;
    }
    let (y, m, d): (i64, i64, i64) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in_month = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month[usize::try_from(m - 1).ok()?] {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_strictly_and_print_back() {
        assert_eq!(day_number("1970-01-01"), Some(0));
        assert_eq!(day_number("2026-12-05"), Some(20_792));
        assert_eq!(day_number("2024-02-29"), Some(19_782));
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "2026-1-01",
            "20261205",
            "2026-12-05-1",
            "+026-12-05",
        ] {
            assert_eq!(day_number(bad), None, "{bad}");
        }
        for text in ["1970-01-01", "2024-02-29", "2026-12-05", "2099-12-31"] {
            assert_eq!(SettlementDate::parse(text).unwrap().to_string(), text);
        }
        // 2026-12-05 23:50 Beijing is 15:50 UTC; 00:10 the next day is 16:10.
        let base = 20_792 * 86_400;
        assert_eq!(
            SettlementDate::of_time(base + 15 * 3_600 + 50 * 60).to_string(),
            "2026-12-05"
        );
        assert_eq!(
            SettlementDate::of_time(base + 16 * 3_600 + 10 * 60).to_string(),
            "2026-12-06"
        );
    }
}
