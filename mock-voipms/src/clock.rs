//! Time: the mock clock (real or fixed, moved only through the control API), calendar
//! arithmetic, America/New_York local time with the US DST rules since 2007 (hand-written, no tz
//! database), and RFC 3339 parsing and formatting.
//!
//! All instants are milliseconds since the Unix epoch, UTC.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

const MS_PER_DAY: i64 = 86_400_000;

/// A calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Date {
    pub year: i64,
    pub month: u32,
    pub day: u32,
}

impl Date {
    /// Days since 1970-01-01.
    pub fn days(self) -> i64 {
        days_from_civil(self.year, self.month, self.day)
    }

    /// Parse exactly `YYYY-MM-DD` (a real calendar date).
    pub fn parse(s: &str) -> Option<Date> {
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let year = digits(&s[0..4])?;
        let month = digits(&s[5..7])? as u32;
        let day = digits(&s[8..10])? as u32;
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        Some(Date { year, month, day })
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// A wall-clock date and time (no zone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DateTime {
    pub date: Date,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl DateTime {
    /// `YYYY-MM-DD HH:MM:SS`, the VoIP.ms API format.
    pub fn api_format(&self) -> String {
        format!("{} {:02}:{:02}:{:02}", self.date, self.hour, self.minute, self.second)
    }
}

fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (inverse of [`days_from_civil`]).
pub(crate) fn civil_from_days(z: i64) -> Date {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Date { year, month, day }
}

/// The wall-clock time of `ms` shifted by `offset_s` seconds.
pub(crate) fn datetime_at(ms: i64, offset_s: i64) -> DateTime {
    let secs = ms.div_euclid(1000) + offset_s;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    DateTime {
        date: civil_from_days(days),
        hour: (rem / 3600) as u32,
        minute: (rem % 3600 / 60) as u32,
        second: (rem % 60) as u32,
    }
}

/// Day number (since 1970-01-01) of the `n`th Sunday of a month (n ≥ 1).
fn nth_sunday(year: i64, month: u32, n: i64) -> i64 {
    let first = days_from_civil(year, month, 1);
    // 1970-01-01 was a Thursday; weekday 0 = Sunday.
    let weekday = (first + 4).rem_euclid(7);
    first + (7 - weekday) % 7 + 7 * (n - 1)
}

/// The UTC offset of America/New_York at the instant `ms`, in seconds (−18000 or −14400).
///
/// DST runs from the second Sunday of March, 02:00 EST (07:00 UTC), to the first Sunday of
/// November, 02:00 EDT (06:00 UTC).
pub(crate) fn eastern_offset_s(ms: i64) -> i64 {
    let year = datetime_at(ms, 0).date.year;
    let start = nth_sunday(year, 3, 2) * MS_PER_DAY + 7 * 3_600_000;
    let end = nth_sunday(year, 11, 1) * MS_PER_DAY + 6 * 3_600_000;
    if (start..end).contains(&ms) { -4 * 3600 } else { -5 * 3600 }
}

/// The America/New_York wall-clock time at `ms`.
pub(crate) fn eastern(ms: i64) -> DateTime {
    datetime_at(ms, eastern_offset_s(ms))
}

/// `YYYY-MM-DDTHH:MM:SSZ` for `ms` (UTC, whole seconds).
pub(crate) fn rfc3339_utc(ms: i64) -> String {
    let t = datetime_at(ms, 0);
    format!("{}T{:02}:{:02}:{:02}Z", t.date, t.hour, t.minute, t.second)
}

/// Why a text is not an RFC 3339 date-time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockError {
    /// The text that was rejected.
    pub input: String,
}

impl fmt::Display for ClockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not an RFC 3339 date-time such as \"2025-07-20T12:00:00-04:00\"", self.input)
    }
}

impl std::error::Error for ClockError {}

/// Parse an RFC 3339 date-time (`2025-07-20T12:00:00-04:00`, `…Z`, optional fraction) into
/// milliseconds since the epoch.
pub(crate) fn parse_rfc3339(s: &str) -> Result<i64, ClockError> {
    let bad = || ClockError { input: s.to_string() };
    if !s.is_ascii() || s.len() < 20 {
        return Err(bad());
    }
    let date = Date::parse(&s[..10]).ok_or_else(bad)?;
    let b = s.as_bytes();
    if !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return Err(bad());
    }
    let hour = digits(&s[11..13]).ok_or_else(bad)?;
    let minute = digits(&s[14..16]).ok_or_else(bad)?;
    let second = digits(&s[17..19]).ok_or_else(bad)?;
    if hour > 23 || minute > 59 || second > 60 {
        return Err(bad());
    }
    let mut rest = &s[19..];
    let mut millis = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return Err(bad());
        }
        let ms_digits = &frac[..n.min(3)];
        millis = digits(ms_digits).ok_or_else(bad)? * 10i64.pow(3 - ms_digits.len() as u32);
        rest = &frac[n..];
    }
    let offset_s = match rest {
        "Z" | "z" => 0,
        _ => {
            let ob = rest.as_bytes();
            if ob.len() != 6 || !matches!(ob[0], b'+' | b'-') || ob[3] != b':' {
                return Err(bad());
            }
            let oh = digits(&rest[1..3]).ok_or_else(bad)?;
            let om = digits(&rest[4..6]).ok_or_else(bad)?;
            if oh > 23 || om > 59 {
                return Err(bad());
            }
            let v = oh * 3600 + om * 60;
            if ob[0] == b'-' { -v } else { v }
        }
    };
    let local_s = date.days() * 86_400 + hour * 3600 + minute * 60 + second.min(59);
    Ok((local_s - offset_s) * 1000 + millis)
}

/// Latest instant the mock clock reaches (9999-12-31T23:59:59.999Z): calendar arithmetic
/// stays far from overflow whatever the control API is asked.
const MAX_MS: i64 = 253_402_300_799_999;

/// The mock clock.
#[derive(Debug, Clone)]
pub(crate) enum MockClock {
    /// System time plus an offset moved by `advance`/`set`.
    Real { offset_ms: i64 },
    /// A frozen instant, moved only by `advance`/`set`.
    Fixed { now_ms: i64 },
}

fn system_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl MockClock {
    pub fn now_ms(&self) -> i64 {
        let t = match self {
            MockClock::Real { offset_ms } => system_ms().saturating_add(*offset_ms),
            MockClock::Fixed { now_ms } => *now_ms,
        };
        t.clamp(0, MAX_MS)
    }

    /// Move forward by `ms` (never past year 9999).
    pub fn advance(&mut self, ms: i64) {
        let target = self.now_ms().saturating_add(ms.max(0)).min(MAX_MS);
        self.set(target);
    }

    /// Jump to `ms`; a real clock keeps ticking from there.
    pub fn set(&mut self, ms: i64) {
        let ms = ms.clamp(0, MAX_MS);
        match self {
            MockClock::Real { offset_ms } => *offset_ms = ms - system_ms(),
            MockClock::Fixed { now_ms } => *now_ms = ms,
        }
    }

    pub fn is_real(&self) -> bool {
        matches!(self, MockClock::Real { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> i64 {
        parse_rfc3339(s).unwrap()
    }

    #[test]
    fn civil_round_trip() {
        for z in [-800_000, -1, 0, 1, 11_016, 19_000, 20_000, 2_000_000] {
            let d = civil_from_days(z);
            assert_eq!(d.days(), z);
        }
        assert_eq!(civil_from_days(0).to_string(), "1970-01-01");
        assert_eq!(Date::parse("2024-02-29").unwrap().days(), 19_782);
        assert!(Date::parse("2023-02-29").is_none());
        assert!(Date::parse("2024-13-01").is_none());
        assert!(Date::parse("2024-1-01").is_none());
        assert!(Date::parse("2024-01-01 00:00:00").is_none());
    }

    #[test]
    fn eastern_dst_rules() {
        // 2025: DST from Sunday 9 March 07:00 UTC to Sunday 2 November 06:00 UTC.
        assert_eq!(eastern_offset_s(at("2025-03-09T06:59:59Z")), -18_000);
        assert_eq!(eastern_offset_s(at("2025-03-09T07:00:00Z")), -14_400);
        assert_eq!(eastern_offset_s(at("2025-11-02T05:59:59Z")), -14_400);
        assert_eq!(eastern_offset_s(at("2025-11-02T06:00:00Z")), -18_000);
        // 2024: 10 March and 3 November.
        assert_eq!(eastern_offset_s(at("2024-03-10T07:00:00Z")), -14_400);
        assert_eq!(eastern_offset_s(at("2024-11-03T06:00:00Z")), -18_000);
        assert_eq!(eastern_offset_s(at("2024-01-15T12:00:00Z")), -18_000);
        assert_eq!(eastern(at("2025-07-20T12:00:00-04:00")).api_format(), "2025-07-20 12:00:00");
        assert_eq!(eastern(at("2025-01-01T03:30:00Z")).api_format(), "2024-12-31 22:30:00");
        // Spring-forward: 01:59:59 EST is followed by 03:00:00 EDT.
        assert_eq!(eastern(at("2025-03-09T07:00:00Z")).api_format(), "2025-03-09 03:00:00");
    }

    #[test]
    fn rfc3339() {
        assert_eq!(at("1970-01-01T00:00:00Z"), 0);
        assert_eq!(at("1970-01-01T00:00:01.5Z"), 1500);
        assert_eq!(at("2025-07-20T12:00:00-04:00"), at("2025-07-20T16:00:00Z"));
        assert_eq!(rfc3339_utc(at("2025-07-20T12:00:00-04:00")), "2025-07-20T16:00:00Z");
        for bad in ["2025-07-20", "2025-07-20T25:00:00Z", "2025-07-20T12:00:00", "x"] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fixed_clock_moves_only_when_told() {
        let mut c = MockClock::Fixed { now_ms: 1000 };
        c.advance(500);
        assert_eq!(c.now_ms(), 1500);
        c.set(10);
        assert_eq!(c.now_ms(), 10);
        let mut r = MockClock::Real { offset_ms: 0 };
        r.set(0);
        assert!(r.now_ms() < 60_000);
        c.advance(i64::MAX);
        c.advance(i64::MAX);
        assert_eq!(rfc3339_utc(c.now_ms()), "9999-12-31T23:59:59Z");
        let _ = eastern(c.now_ms());
        c.set(-5);
        assert_eq!(c.now_ms(), 0);
    }
}
