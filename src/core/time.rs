//! Time as the core sees it: a monotonic instant for timers and a wall-clock time for stamps.
//!
//! The core never reads a clock; the shell passes [`Now`] with every input, and tests pass
//! simulated values. Civil-date arithmetic (days from 1970-01-01 ⇄ year/month/day) follows
//! Howard Hinnant's public-domain algorithms, so no date crate is needed. VoIP.ms works in US
//! Eastern time (voipms.md §6.3); [`eastern_offset_secs`] applies the US DST rules since 2007.

use std::time::{Duration, Instant};

/// The current time, supplied by the shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time, for timers and back-off.
    pub mono: Instant,
    /// Milliseconds since the Unix epoch, UTC, for stamps and calendar rules.
    pub wall_ms: u64,
}

impl Now {
    /// Both clocks moved forward by `d` (for simulated time in tests and for deadlines).
    pub fn after(&self, d: Duration) -> Now {
        Now { mono: self.mono + d, wall_ms: self.wall_ms + d.as_millis() as u64 }
    }
}

/// A calendar date and time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Civil {
    /// Year.
    pub year: i64,
    /// Month, 1–12.
    pub month: u32,
    /// Day of month, 1–31.
    pub day: u32,
    /// Hour, 0–23.
    pub hour: u32,
    /// Minute, 0–59.
    pub minute: u32,
    /// Second, 0–59.
    pub second: u32,
}

/// Days since 1970-01-01 → (year, month, day).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) → days since 1970-01-01.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl Civil {
    /// The civil time of `unix_secs` shifted by `offset_secs`.
    pub fn from_unix(unix_secs: i64, offset_secs: i64) -> Civil {
        let t = unix_secs + offset_secs;
        let (year, month, day) = civil_from_days(t.div_euclid(86_400));
        let sod = t.rem_euclid(86_400);
        Civil {
            year,
            month,
            day,
            hour: (sod / 3600) as u32,
            minute: (sod % 3600 / 60) as u32,
            second: (sod % 60) as u32,
        }
    }

    /// Seconds since the epoch of this civil time read at `offset_secs` from UTC.
    pub fn to_unix(&self, offset_secs: i64) -> i64 {
        days_from_civil(self.year, self.month, self.day) * 86_400
            + i64::from(self.hour * 3600 + self.minute * 60 + self.second)
            - offset_secs
    }
}

/// XEP-0082 dateTime in UTC with milliseconds, e.g. `2025-07-20T20:24:16.123Z` (XEP-0203 stamps).
pub fn rfc3339_utc(wall_ms: u64) -> String {
    let c = Civil::from_unix((wall_ms / 1000) as i64, 0);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        c.year,
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second,
        wall_ms % 1000
    )
}

/// The weekday of a day count (0 = Sunday).
fn weekday(days: i64) -> i64 {
    (days + 4).rem_euclid(7)
}

/// The day count of the `n`th Sunday (1-based) of a month.
fn nth_sunday(year: i64, month: u32, n: i64) -> i64 {
    let first = days_from_civil(year, month, 1);
    first + (7 - weekday(first)) % 7 + 7 * (n - 1)
}

/// America/New_York's offset from UTC at `unix_secs`: −4 h from the second Sunday of March
/// 02:00 EST to the first Sunday of November 02:00 EDT, else −5 h.
pub fn eastern_offset_secs(unix_secs: i64) -> i64 {
    let year = Civil::from_unix(unix_secs, -5 * 3600).year;
    // 02:00 EST = 07:00 UTC; 02:00 EDT = 06:00 UTC.
    let dst_start = nth_sunday(year, 3, 2) * 86_400 + 7 * 3600;
    let dst_end = nth_sunday(year, 11, 1) * 86_400 + 6 * 3600;
    if (dst_start..dst_end).contains(&unix_secs) { -4 * 3600 } else { -5 * 3600 }
}

/// The Unix time of the next midnight in US Eastern time after `unix_secs`.
pub fn next_eastern_midnight(unix_secs: i64) -> i64 {
    let local = Civil::from_unix(unix_secs, eastern_offset_secs(unix_secs));
    let next_day = days_from_civil(local.year, local.month, local.day) + 1;
    let (y, m, d) = civil_from_days(next_day);
    let midnight = Civil { year: y, month: m, day: d, hour: 0, minute: 0, second: 0 };
    // Midnight is never inside a DST transition (they happen at 02:00), so the offset an hour
    // before midnight is the offset at midnight.
    let guess = midnight.to_unix(-5 * 3600);
    midnight.to_unix(eastern_offset_secs(guess - 3600))
}

/// Parse VoIP.ms's `YYYY-MM-DD HH:MM:SS` (US Eastern, no zone) into Unix seconds.
pub fn parse_eastern(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<u32>().ok();
    let c = Civil {
        year: i64::from(num(0..4)?),
        month: num(5..7)?,
        day: num(8..10)?,
        hour: num(11..13)?,
        minute: num(14..16)?,
        second: num(17..19)?,
    };
    if !(1..=12).contains(&c.month) || !(1..=31).contains(&c.day) || c.hour > 23 || c.minute > 59 || c.second > 59 {
        return None;
    }
    let guess = c.to_unix(-5 * 3600);
    Some(c.to_unix(eastern_offset_secs(guess)))
}

/// Format Unix seconds as VoIP.ms's Eastern `YYYY-MM-DD` date (for getSMS `from`/`to`).
pub fn eastern_date(unix_secs: i64) -> String {
    let c = Civil::from_unix(unix_secs, eastern_offset_secs(unix_secs));
    format!("{:04}-{:02}-{:02}", c.year, c.month, c.day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for days in [-1_000_000, -1, 0, 1, 11_016, 19_000, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn utc_stamps() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_utc(1_753_043_056_123), "2025-07-20T20:24:16.123Z");
    }

    #[test]
    fn eastern_dst_switches() {
        // 2025: DST from Sun 9 March 07:00 UTC to Sun 2 November 06:00 UTC.
        let start = Civil { year: 2025, month: 3, day: 9, hour: 7, minute: 0, second: 0 }.to_unix(0);
        assert_eq!(eastern_offset_secs(start - 1), -5 * 3600);
        assert_eq!(eastern_offset_secs(start), -4 * 3600);
        let end = Civil { year: 2025, month: 11, day: 2, hour: 6, minute: 0, second: 0 }.to_unix(0);
        assert_eq!(eastern_offset_secs(end - 1), -4 * 3600);
        assert_eq!(eastern_offset_secs(end), -5 * 3600);
        // Winter and summer.
        assert_eq!(
            eastern_offset_secs(Civil { year: 2026, month: 1, day: 15, hour: 12, minute: 0, second: 0 }.to_unix(0)),
            -5 * 3600
        );
        assert_eq!(
            eastern_offset_secs(Civil { year: 2026, month: 7, day: 15, hour: 12, minute: 0, second: 0 }.to_unix(0)),
            -4 * 3600
        );
    }

    #[test]
    fn next_midnight_eastern() {
        // 2025-07-20 20:24:16 UTC = 16:24:16 EDT → next midnight 2025-07-21 04:00 UTC.
        let t = Civil { year: 2025, month: 7, day: 20, hour: 20, minute: 24, second: 16 }.to_unix(0);
        assert_eq!(
            next_eastern_midnight(t),
            Civil { year: 2025, month: 7, day: 21, hour: 4, minute: 0, second: 0 }.to_unix(0)
        );
        // 2025-12-31 23:30 EST (04:30 UTC on Jan 1) → 2026-01-01 05:00 UTC.
        let t = Civil { year: 2026, month: 1, day: 1, hour: 4, minute: 30, second: 0 }.to_unix(0);
        assert_eq!(
            next_eastern_midnight(t),
            Civil { year: 2026, month: 1, day: 1, hour: 5, minute: 0, second: 0 }.to_unix(0)
        );
        // The day DST ends is 25 hours long: from 00:30 EDT, midnight is 24.5 h away.
        let t = Civil { year: 2025, month: 11, day: 2, hour: 4, minute: 30, second: 0 }.to_unix(0);
        assert_eq!(next_eastern_midnight(t) - t, 24 * 3600 + 1800);
    }

    #[test]
    fn voipms_dates() {
        let t = parse_eastern("2025-07-20 16:24:16").unwrap();
        assert_eq!(rfc3339_utc(t as u64 * 1000), "2025-07-20T20:24:16.000Z");
        let t = parse_eastern("2025-01-20 16:24:16").unwrap();
        assert_eq!(rfc3339_utc(t as u64 * 1000), "2025-01-20T21:24:16.000Z");
        assert_eq!(eastern_date(t), "2025-01-20");
        for bad in ["2025-07-20T16:24:16", "2025-13-01 00:00:00", "x", "2025-07-20 16:24:6 "] {
            assert_eq!(parse_eastern(bad), None, "{bad}");
        }
    }
}
