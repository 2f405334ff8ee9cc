//! Weekly access schedules (`Mon-Fri 07:00-19:00`, holidays) evaluated on local wall-clock time.

use crate::domain::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZoneDatabase;
use std::collections::BTreeSet;

/// The accepted window form, quoted in every window parse error.
const WINDOW_FORM: &str = "use `DAYS HH:MM-HH:MM` such as `Mon-Fri 07:00-19:00`, \
                           `Sat 09:00-13:00`, `Mon,Wed,Fri 08:00-12:00` or `Sun 22:00-02:00`";

const MINUTES_PER_DAY: u16 = 24 * 60;

/// Short and full day names, Monday first (index = days since Monday).
const DAY_NAMES: [(&str, &str); 7] = [
    ("mon", "monday"),
    ("tue", "tuesday"),
    ("wed", "wednesday"),
    ("thu", "thursday"),
    ("fri", "friday"),
    ("sat", "saturday"),
    ("sun", "sunday"),
];

/// A weekly schedule: a list of windows like `Mon-Fri 07:00-19:00`, `Sat 09:00-13:00`,
/// `Sun 22:00-02:00` (crosses midnight into Monday), plus holiday dates on which it is
/// closed all day.
///
/// A window belongs to the day it starts on: `Fri 22:00-02:00` is open Saturday 01:00, and
/// a holiday closes the windows that start on it but not the tail of the previous day's.
/// Times are local wall-clock times, so a window inside the hour skipped by a DST change is
/// never open that day and one covering a repeated hour is open both times round.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    windows: Vec<Window>,
    holidays: BTreeSet<Date>,
}

/// One window: a set of start days and a start and end minute of the day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Window {
    /// Bit `d` set: the window starts on day `d` (0 = Monday).
    days: u8,
    /// Minutes since local midnight, `0..1440`.
    start: u16,
    /// Minutes since local midnight, `1..=1440`; less than `start` when crossing midnight.
    end: u16,
}

impl Window {
    fn starts_on(&self, day: u8) -> bool {
        self.days & (1 << day) != 0
    }

    fn crosses_midnight(&self) -> bool {
        self.end < self.start
    }
}

impl Schedule {
    /// Parses windows (each string one window) and holidays (`YYYY-MM-DD`). Err is one
    /// sentence naming the bad window/date and showing the accepted form.
    pub fn parse(windows: &[String], holidays: &[String]) -> Result<Schedule, String> {
        if windows.is_empty() {
            return Err(format!(
                "a schedule needs at least one window: {}",
                WINDOW_FORM.trim_start_matches("use ")
            ));
        }
        Ok(Schedule {
            windows: windows
                .iter()
                .map(|w| parse_window(w))
                .collect::<Result<_, _>>()?,
            holidays: holidays
                .iter()
                .map(|h| parse_holiday(h))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Whether `at` falls inside the schedule in time zone `tz`. An instant outside the
    /// calendar's range (beyond year 9999) is closed.
    pub fn is_open(&self, at: Timestamp, tz: &TimeZone) -> bool {
        match jiff::Timestamp::from_millisecond(at.millis()) {
            Ok(instant) => self.is_open_local(tz.0.to_datetime(instant)),
            Err(_) => false,
        }
    }

    /// Whether the local wall-clock time `local` is inside a window.
    fn is_open_local(&self, local: DateTime) -> bool {
        let today = local.date();
        let minute =
            u16::from(local.hour().unsigned_abs()) * 60 + u16::from(local.minute().unsigned_abs());
        let day = today.weekday().to_monday_zero_offset().unsigned_abs();
        let previous = (day + 6) % 7;
        let today_open = !self.holidays.contains(&today);
        let previous_open = today.yesterday().is_ok_and(|d| !self.holidays.contains(&d));
        self.windows.iter().any(|w| {
            let started_today = today_open
                && w.starts_on(day)
                && minute >= w.start
                && (w.crosses_midnight() || minute < w.end);
            let tail_of_previous =
                previous_open && w.crosses_midnight() && w.starts_on(previous) && minute < w.end;
            started_today || tail_of_previous
        })
    }
}

/// Parses `DAYS HH:MM-HH:MM`. Whitespace inside the days or the times is ignored, so
/// `Mon, Wed 7:00 - 9:30` is accepted too.
fn parse_window(text: &str) -> Result<Window, String> {
    let text = text.trim();
    let bad = |what: String| format!("window `{text}`: {what}; {WINDOW_FORM}");
    let Some(split) = text.find(|c: char| c.is_ascii_digit()) else {
        return Err(bad("the times are missing".into()));
    };
    let strip = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    let (days, times) = (strip(&text[..split]), strip(&text[split..]));
    if days.is_empty() {
        return Err(bad("the days are missing".into()));
    }
    let days = parse_days(&days).map_err(bad)?;
    let Some((start, end)) = times.split_once('-') else {
        return Err(bad(format!("`{times}` is not a time range")));
    };
    let (start, end) = (
        parse_time(start).map_err(bad)?,
        parse_time(end).map_err(bad)?,
    );
    if start == MINUTES_PER_DAY {
        return Err(bad("24:00 can only end a window".into()));
    }
    if start == end {
        return Err(bad(format!(
            "it starts and ends at {:02}:{:02} (for a whole day write 00:00-24:00)",
            start / 60,
            start % 60
        )));
    }
    Ok(Window { days, start, end })
}

/// Parses a comma list of days and day ranges (`Mon-Fri,Sun`; `Fri-Mon` wraps the week).
fn parse_days(spec: &str) -> Result<u8, String> {
    let mut mask = 0u8;
    for item in spec.split(',') {
        match item.split_once('-') {
            Some((first, last)) => {
                let (mut day, last) = (parse_day(first)?, parse_day(last)?);
                mask |= 1 << day;
                while day != last {
                    day = (day + 1) % 7;
                    mask |= 1 << day;
                }
            }
            None => mask |= 1 << parse_day(item)?,
        }
    }
    Ok(mask)
}

/// Parses a day name (`Mon` or `Monday`, any case) into days since Monday.
fn parse_day(name: &str) -> Result<u8, String> {
    if name.is_empty() {
        return Err("a day name is missing".into());
    }
    let lower = name.to_ascii_lowercase();
    DAY_NAMES
        .iter()
        .position(|(short, full)| lower == *short || lower == *full)
        .and_then(|i| u8::try_from(i).ok())
        .ok_or_else(|| format!("`{name}` is not a day (Mon to Sun, or Monday to Sunday)"))
}

/// Parses `H:MM` or `HH:MM` from 00:00 to 24:00 into minutes since midnight.
fn parse_time(text: &str) -> Result<u16, String> {
    let err = || format!("`{text}` is not a time from 00:00 to 24:00");
    let (hours, minutes) = text.split_once(':').ok_or_else(err)?;
    let digits = |s: &str, len: std::ops::RangeInclusive<usize>| {
        len.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
    };
    if !digits(hours, 1..=2) || !digits(minutes, 2..=2) {
        return Err(err());
    }
    let (hours, minutes): (u16, u16) = (
        hours.parse().map_err(|_| err())?,
        minutes.parse().map_err(|_| err())?,
    );
    if minutes > 59 || hours > 24 || (hours == 24 && minutes != 0) {
        return Err(err());
    }
    Ok(hours * 60 + minutes)
}

/// Parses a holiday written exactly as `YYYY-MM-DD`.
fn parse_holiday(text: &str) -> Result<Date, String> {
    let text = text.trim();
    let err = || format!("holiday `{text}` is not a date: use `YYYY-MM-DD` such as `2026-12-25`");
    let number = |range: std::ops::Range<usize>| {
        text.get(range)
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<i16>().ok())
    };
    if text.len() != 10 || text.get(4..5) != Some("-") || text.get(7..8) != Some("-") {
        return Err(err());
    }
    match (number(0..4), number(5..7), number(8..10)) {
        (Some(year), Some(month), Some(day)) => {
            let (month, day) = (
                i8::try_from(month).map_err(|_| err())?,
                i8::try_from(day).map_err(|_| err())?,
            );
            Date::new(year, month, day).map_err(|_| err())
        }
        _ => Err(err()),
    }
}

/// A named IANA time zone (`Europe/Berlin`) or `UTC`. Wraps jiff's type so no other module
/// names jiff.
#[derive(Clone, Debug)]
pub struct TimeZone(jiff::tz::TimeZone);

impl TimeZone {
    /// Looks a zone up in the system database (`/usr/share/zoneinfo`, or `TZDIR`), falling
    /// back to the copy compiled into the binary when tzdata is not installed or lacks it.
    pub fn named(name: &str) -> Result<TimeZone, String> {
        lookup(&[jiff::tz::db().clone(), TimeZoneDatabase::bundled()], name)
    }

    pub fn utc() -> TimeZone {
        TimeZone(jiff::tz::TimeZone::UTC)
    }

    /// The system zone (`TZ`, else /etc/localtime), falling back to UTC.
    pub fn system() -> TimeZone {
        jiff::tz::TimeZone::try_system().map_or_else(|_| TimeZone::utc(), TimeZone)
    }

    /// The zone's IANA name (`Europe/Berlin`, `UTC`), or `local` for a system zone that
    /// has none (an /etc/localtime copied rather than linked).
    pub fn name(&self) -> &str {
        self.0.iana_name().unwrap_or("local")
    }

    /// `at` as wall-clock time in this zone, formatted with strftime `format` (mail
    /// templates' `{{pinExpiration}}`); an error for a bad format or an instant out of range.
    pub fn format(&self, at: Timestamp, format: &str) -> Result<String, String> {
        let instant = jiff::Timestamp::from_millisecond(at.millis()).map_err(|e| e.to_string())?;
        jiff::fmt::strtime::format(format, &instant.to_zoned_datetime(self.0.clone()))
            .map_err(|e| e.to_string())
    }
}

/// Looks `name` up in each database in turn.
fn lookup(databases: &[TimeZoneDatabase], name: &str) -> Result<TimeZone, String> {
    let name = name.trim();
    if name.eq_ignore_ascii_case("UTC") {
        return Ok(TimeZone::utc());
    }
    databases
        .iter()
        .find_map(|db| db.get(name).ok())
        .map(TimeZone)
        .ok_or_else(|| {
            format!("unknown time zone `{name}`: use an IANA name such as Europe/Berlin")
        })
}

#[cfg(test)]
#[path = "schedule_tests.rs"]
mod tests;
