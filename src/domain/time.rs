//! Wall-clock time as whole Unix seconds, and the calendar dates the
//! validators need (birth dates, validity windows), on the `time` crate's
//! proleptic Gregorian calendar.

use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (0 for a clock before it).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

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

    /// The UTC calendar date this instant falls on. Instants past the
    /// calendar's range (years beyond ±9999) clamp to its ends.
    pub fn date(self) -> CivilDate {
        let date = match time::OffsetDateTime::from_unix_timestamp(self.0) {
            Ok(t) => t.date(),
            Err(_) if self.0 < 0 => time::Date::MIN,
            Err(_) => time::Date::MAX,
        };
        CivilDate(date)
    }
}

/// A calendar date that is known to exist (no 30 February).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CivilDate(time::Date);

impl CivilDate {
    /// `None` when the date does not exist in the Gregorian calendar.
    pub fn new(year: i32, month: u8, day: u8) -> Option<Self> {
        let month = time::Month::try_from(month).ok()?;
        time::Date::from_calendar_date(year, month, day)
            .ok()
            .map(CivilDate)
    }

    pub fn year(self) -> i32 {
        self.0.year()
    }
    pub fn month(self) -> u8 {
        u8::from(self.0.month())
    }
    pub fn day(self) -> u8 {
        self.0.day()
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
