//! Wall-clock time as whole Unix seconds, and the proleptic Gregorian calendar
//! arithmetic the validators need (birth dates, validity windows).
//!
//! Hand-rolled rather than a calendar crate: the vault needs only "is this a
//! real date" and "days since the epoch", and both are a few lines of integer
//! arithmetic that the tests pin against known dates.

use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current time. A clock before 1970 is treated as the epoch: the vault
    /// then refuses every validity window, which fails safe.
    pub fn now() -> Self {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Timestamp(secs)
    }

    pub fn seconds(self) -> i64 {
        self.0
    }

    /// The UTC calendar date this instant falls on.
    pub fn date(self) -> CivilDate {
        CivilDate::from_days_since_epoch(self.0.div_euclid(86_400))
    }
}

/// A calendar date that is known to exist (no 30 February).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CivilDate {
    year: i32,
    month: u8,
    day: u8,
}

impl CivilDate {
    /// `None` when the date does not exist in the Gregorian calendar.
    pub fn new(year: i32, month: u8, day: u8) -> Option<Self> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        Some(CivilDate { year, month, day })
    }

    pub fn year(self) -> i32 {
        self.year
    }
    pub fn month(self) -> u8 {
        self.month
    }
    pub fn day(self) -> u8 {
        self.day
    }

    /// Howard Hinnant's `civil_from_days`.
    fn from_days_since_epoch(days: i64) -> Self {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
        CivilDate { year, month, day }
    }
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants_map_to_their_dates() {
        assert_eq!(Timestamp(0).date(), CivilDate::new(1970, 1, 1).unwrap());
        // 2000-02-29T12:00:00Z
        assert_eq!(
            Timestamp(951_825_600).date(),
            CivilDate::new(2000, 2, 29).unwrap()
        );
        // 2026-11-21T00:00:00Z
        assert_eq!(
            Timestamp(1_795_219_200).date(),
            CivilDate::new(2026, 11, 21).unwrap()
        );
        assert_eq!(Timestamp(-1).date(), CivilDate::new(1969, 12, 31).unwrap());
    }

    #[test]
    fn impossible_dates_do_not_exist() {
        assert!(CivilDate::new(1999, 2, 30).is_none());
        assert!(CivilDate::new(1900, 2, 29).is_none());
        assert!(CivilDate::new(2000, 2, 29).is_some());
        assert!(CivilDate::new(2024, 13, 1).is_none());
        assert!(CivilDate::new(2024, 4, 31).is_none());
        assert!(CivilDate::new(2024, 1, 0).is_none());
    }
}
