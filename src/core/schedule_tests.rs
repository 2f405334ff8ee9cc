use super::*;

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_string()).collect()
}

fn schedule(windows: &[&str], holidays: &[&str]) -> Schedule {
    Schedule::parse(&strings(windows), &strings(holidays)).expect("valid schedule")
}

fn zone(name: &str) -> TimeZone {
    TimeZone::named(name).expect("known zone")
}

/// The instant at which the wall clock in `tz` shows `local` (`2026-03-02T07:00`).
fn local(tz: &TimeZone, local: &str) -> Timestamp {
    let dt: DateTime = local.parse().expect("civil datetime");
    let instant = tz.0.to_timestamp(dt).expect("in range");
    Timestamp::from_millis(instant.as_millisecond())
}

fn utc(instant: &str) -> Timestamp {
    Timestamp::parse(instant).expect("RFC 3339")
}

/// Checks `(local wall-clock time, expected)` rows.
fn check_local(s: &Schedule, tz: &TimeZone, rows: &[(&str, bool)]) {
    for (at, want) in rows {
        assert_eq!(s.is_open(local(tz, at), tz), *want, "{at} in {}", tz.name());
    }
}

/// Checks `(UTC instant, expected)` rows.
fn check_utc(s: &Schedule, tz: &TimeZone, rows: &[(&str, bool)]) {
    for (at, want) in rows {
        assert_eq!(s.is_open(utc(at), tz), *want, "{at} in {}", tz.name());
    }
}

/// Minutes open between two UTC instants, sampled every minute.
fn open_minutes(s: &Schedule, tz: &TimeZone, from: &str, to: &str) -> usize {
    let (from, to) = (utc(from).millis(), utc(to).millis());
    (from..to)
        .step_by(60_000)
        .filter(|ms| s.is_open(Timestamp::from_millis(*ms), tz))
        .count()
}

#[test]
fn office_hours_boundaries_and_weekends() {
    // 2026-03-02 is a Monday.
    let s = schedule(&["Mon-Fri 07:00-19:00", "Sat 09:00-13:00"], &[]);
    check_local(
        &s,
        &TimeZone::utc(),
        &[
            ("2026-03-02T06:59", false),
            ("2026-03-02T06:59:59.999", false),
            ("2026-03-02T07:00", true),
            ("2026-03-02T12:00", true),
            ("2026-03-02T18:59:59.999", true),
            ("2026-03-02T19:00", false),
            ("2026-03-06T18:00", true),
            ("2026-03-07T08:59", false),
            ("2026-03-07T09:00", true),
            ("2026-03-07T13:00", false),
            ("2026-03-08T10:00", false),
            ("2026-03-09T07:00", true),
        ],
    );
}

#[test]
fn windows_crossing_midnight_belong_to_their_start_day() {
    let s = schedule(&["Fri 22:00-02:00", "Sun 22:00-02:00"], &[]);
    check_local(
        &s,
        &TimeZone::utc(),
        &[
            ("2026-03-05T23:00", false), // Thursday night
            ("2026-03-06T01:00", false), // Friday early: Thursday has no window
            ("2026-03-06T21:59", false),
            ("2026-03-06T22:00", true),
            ("2026-03-06T23:59", true),
            ("2026-03-07T00:00", true), // Saturday: tail of Friday
            ("2026-03-07T01:59", true),
            ("2026-03-07T02:00", false),
            ("2026-03-08T22:30", true), // Sunday night
            ("2026-03-09T01:00", true), // Monday: tail of Sunday, across the week's end
            ("2026-03-09T02:00", false),
        ],
    );
}

#[test]
fn window_ending_at_24_00() {
    let s = schedule(&["Sat 20:00-24:00", "Sun 00:00-24:00"], &[]);
    check_local(
        &s,
        &TimeZone::utc(),
        &[
            ("2026-03-07T19:59", false),
            ("2026-03-07T23:59:59", true),
            ("2026-03-08T00:00", true),
            ("2026-03-08T23:59", true),
            ("2026-03-09T00:00", false),
        ],
    );
}

#[test]
fn day_ranges_lists_and_names() {
    // Monday 2026-03-02 .. Sunday 2026-03-08, each at 08:30.
    let week = |s: &Schedule| -> Vec<bool> {
        (2..=8)
            .map(|d| {
                s.is_open(
                    local(&TimeZone::utc(), &format!("2026-03-{d:02}T08:30")),
                    &TimeZone::utc(),
                )
            })
            .collect()
    };
    let (t, f) = (true, false);
    for (window, want) in [
        ("Fri-Mon 08:00-09:00", [t, f, f, f, t, t, t]),
        ("Sat-Sun 08:00-09:00", [f, f, f, f, f, t, t]),
        ("Sun-Sat 08:00-09:00", [t, t, t, t, t, t, t]),
        ("Wed-Wed 08:00-09:00", [f, f, t, f, f, f, f]),
        ("Mon,Wed,Fri 08:00-09:00", [t, f, t, f, t, f, f]),
        ("Mon-Tue,Sun 08:00-09:00", [t, t, f, f, f, f, t]),
        ("THURSDAY 08:00-09:00", [f, f, f, t, f, f, f]),
        ("tuesday-thu 08:00-09:00", [f, t, t, t, f, f, f]),
    ] {
        assert_eq!(week(&schedule(&[window], &[])), want, "{window}");
    }
}

#[test]
fn lenient_spacing_parses_to_the_same_schedule() {
    let canonical = schedule(&["Mon,Wed-Fri 07:00-19:00"], &["2026-12-25"]);
    for window in [
        "mon, wed - fri 07:00 - 19:00",
        "  Mon,Wed-Fri   7:00-19:00  ",
        "MONDAY,WEDNESDAY-FRIDAY 07:00-19:00",
    ] {
        assert_eq!(
            schedule(&[window], &[" 2026-12-25 "]),
            canonical,
            "{window}"
        );
    }
}

#[test]
fn holidays_close_the_day_and_windows_starting_on_it() {
    // 2026-12-25 is a Friday.
    let s = schedule(&["Mon-Fri 07:00-19:00"], &["2026-12-25"]);
    let tz = TimeZone::utc();
    check_local(
        &s,
        &tz,
        &[
            ("2026-12-24T12:00", true),
            ("2026-12-25T07:00", false),
            ("2026-12-25T12:00", false),
            ("2026-12-28T12:00", true),
        ],
    );
    let nights = ["Thu,Fri 22:00-02:00"];
    // Holiday on Friday: Thursday's tail runs into it, Friday's own window is closed.
    check_local(
        &schedule(&nights, &["2026-12-25"]),
        &tz,
        &[
            ("2026-12-24T23:00", true),
            ("2026-12-25T01:00", true),
            ("2026-12-25T23:00", false),
            ("2026-12-26T01:00", false),
        ],
    );
    // Holiday on Thursday: its window and tail are closed, Friday's opens as usual.
    check_local(
        &schedule(&nights, &["2026-12-24"]),
        &tz,
        &[
            ("2026-12-24T23:00", false),
            ("2026-12-25T01:00", false),
            ("2026-12-25T23:00", true),
            ("2026-12-26T01:00", true),
        ],
    );
}

#[test]
fn holidays_are_local_dates() {
    let s = schedule(&["Mon-Sun 00:00-24:00"], &["2026-07-04"]);
    check_utc(
        &s,
        &zone("America/New_York"),
        &[
            ("2026-07-04T02:00:00Z", true),  // July 3rd, 22:00 EDT
            ("2026-07-04T04:00:00Z", false), // July 4th, 00:00 EDT
            ("2026-07-05T02:00:00Z", false), // July 4th, 22:00 EDT
            ("2026-07-05T04:00:00Z", true),
        ],
    );
}

#[test]
fn berlin_spring_forward_skips_the_missing_hour() {
    // 2026-03-29: at 01:00 UTC the clocks jump from 02:00 CET to 03:00 CEST.
    let tz = zone("Europe/Berlin");
    let s = schedule(&["Sun 01:30-03:30"], &[]);
    check_utc(
        &s,
        &tz,
        &[
            ("2026-03-29T00:29:00Z", false), // 01:29 CET
            ("2026-03-29T00:30:00Z", true),  // 01:30 CET
            ("2026-03-29T00:59:59Z", true),  // 01:59:59 CET
            ("2026-03-29T01:00:00Z", true),  // 03:00 CEST
            ("2026-03-29T01:29:59Z", true),  // 03:29:59 CEST
            ("2026-03-29T01:30:00Z", false), // 03:30 CEST
        ],
    );
    let day = ("2026-03-28T22:00:00Z", "2026-03-29T22:00:00Z");
    assert_eq!(open_minutes(&s, &tz, day.0, day.1), 60);
    // A window wholly inside the skipped hour is never open that day, but is on others.
    let gap = schedule(&["Mon-Sun 02:00-03:00"], &[]);
    assert_eq!(open_minutes(&gap, &tz, day.0, day.1), 0);
    check_local(
        &gap,
        &tz,
        &[("2026-03-28T02:30", true), ("2026-03-30T02:30", true)],
    );
}

#[test]
fn berlin_fall_back_opens_the_repeated_hour_twice() {
    // 2026-10-25: at 01:00 UTC the clocks fall back from 03:00 CEST to 02:00 CET.
    let tz = zone("Europe/Berlin");
    let s = schedule(&["Sun 01:30-03:30"], &[]);
    check_utc(
        &s,
        &tz,
        &[
            ("2026-10-24T23:29:00Z", false), // 01:29 CEST
            ("2026-10-24T23:30:00Z", true),  // 01:30 CEST
            ("2026-10-25T00:00:00Z", true),  // 02:00 CEST
            ("2026-10-25T00:59:59Z", true),  // 02:59:59 CEST
            ("2026-10-25T01:00:00Z", true),  // 02:00 CET, the repeated hour
            ("2026-10-25T02:00:00Z", true),  // 03:00 CET
            ("2026-10-25T02:29:59Z", true),  // 03:29:59 CET
            ("2026-10-25T02:30:00Z", false), // 03:30 CET
        ],
    );
    let day = ("2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z");
    assert_eq!(open_minutes(&s, &tz, day.0, day.1), 180);
}

#[test]
fn new_york_office_hours_follow_dst() {
    let s = schedule(&["Mon-Fri 09:00-17:00"], &[]);
    check_utc(
        &s,
        &zone("America/New_York"),
        &[
            ("2026-01-05T13:59:00Z", false), // Monday 08:59 EST
            ("2026-01-05T14:00:00Z", true),  // 09:00 EST
            ("2026-01-05T21:59:00Z", true),  // 16:59 EST
            ("2026-01-05T22:00:00Z", false), // 17:00 EST
            ("2026-07-06T13:00:00Z", true),  // Monday 09:00 EDT
            ("2026-07-06T20:59:00Z", true),  // 16:59 EDT
            ("2026-07-06T21:00:00Z", false), // 17:00 EDT
            ("2026-01-10T15:00:00Z", false), // Saturday
            ("2026-01-09T21:59:00Z", true),  // Friday 16:59 EST
        ],
    );
}

#[test]
fn utc_zone_by_name_and_constructor() {
    let s = schedule(&["Mon-Fri 07:00-19:00"], &[]);
    for tz in [TimeZone::utc(), zone("UTC"), zone("utc"), zone("Etc/UTC")] {
        check_utc(
            &s,
            &tz,
            &[
                ("2026-03-02T06:59:00Z", false),
                ("2026-03-02T07:00:00Z", true),
                ("2026-03-02T19:00:00Z", false),
            ],
        );
    }
    assert_eq!(TimeZone::utc().name(), "UTC");
    assert_eq!(zone("Europe/Berlin").name(), "Europe/Berlin");
}

#[test]
fn system_zone_is_usable() {
    let tz = TimeZone::system();
    let s = schedule(&["Mon-Sun 00:00-24:00"], &[]);
    assert!(s.is_open(Timestamp::now(), &tz), "{}", tz.name());
}

#[test]
fn bundled_database_serves_zones_without_system_tzdata() {
    let databases = [TimeZoneDatabase::none(), TimeZoneDatabase::bundled()];
    let tz = lookup(&databases, "Europe/Berlin").expect("bundled zone");
    let s = schedule(&["Sun 01:30-03:30"], &[]);
    assert!(s.is_open(utc("2026-03-29T01:00:00Z"), &tz));
    assert_eq!(
        lookup(&[TimeZoneDatabase::none()], "Europe/Berlin").unwrap_err(),
        "unknown time zone `Europe/Berlin`: use an IANA name such as Europe/Berlin"
    );
}

#[test]
fn instants_beyond_the_calendar_are_closed() {
    let s = schedule(&["Mon-Sun 00:00-24:00"], &[]);
    for ms in [i64::MAX, i64::MIN] {
        assert!(!s.is_open(Timestamp::from_millis(ms), &TimeZone::utc()));
    }
}

#[test]
fn unknown_zones_are_rejected_with_a_hint() {
    for name in [
        "Mars/Olympus",
        "Europe/Berln",
        "",
        "CEST+2",
        "../../etc/passwd",
    ] {
        let err = TimeZone::named(name).unwrap_err();
        assert_eq!(
            err,
            format!("unknown time zone `{name}`: use an IANA name such as Europe/Berlin")
        );
    }
}

#[test]
fn bad_windows_are_rejected_naming_the_window() {
    for (window, reason) in [
        ("Mox 07:00-19:00", "`Mox` is not a day"),
        ("Mon-Fry 07:00-19:00", "`Fry` is not a day"),
        ("Mon,,Fri 07:00-19:00", "a day name is missing"),
        ("Mon-Wed-Fri 07:00-19:00", "`Wed-Fri` is not a day"),
        ("07:00-19:00", "the days are missing"),
        ("Mon", "the times are missing"),
        ("", "the times are missing"),
        ("Mon 07:00", "`07:00` is not a time range"),
        ("Mon 7-19", "`7` is not a time"),
        ("Mon 07:0-19:00", "`07:0` is not a time"),
        ("Mon 07:00-19:00-20:00", "`19:00-20:00` is not a time"),
        ("Mon 25:00-26:00", "`25:00` is not a time"),
        ("Mon 07:60-08:00", "`07:60` is not a time"),
        ("Mon 07:00-24:01", "`24:01` is not a time"),
        ("Mon 123:00-124:00", "`123:00` is not a time"),
        ("Mon 24:00-02:00", "24:00 can only end a window"),
        ("Mon 07:00-07:00", "it starts and ends at 07:00"),
        ("Mon 00:00-00:00", "it starts and ends at 00:00"),
    ] {
        let err = Schedule::parse(&strings(&[window]), &[]).unwrap_err();
        assert!(err.starts_with(&format!("window `{window}`: ")), "{err}");
        assert!(err.contains(reason), "{window}: {err}");
        assert!(
            err.contains("use `DAYS HH:MM-HH:MM` such as `Mon-Fri 07:00-19:00`"),
            "{err}"
        );
        assert_eq!(err.matches(". ").count(), 0, "one sentence: {err}");
    }
}

#[test]
fn bad_holidays_and_empty_schedules_are_rejected() {
    let windows = strings(&["Mon-Fri 07:00-19:00"]);
    for date in [
        "2026-02-30",
        "2026-13-01",
        "2026-00-10",
        "26-12-25",
        "2026/12/25",
        "2026-1-5",
        "2026-12-25T00:00",
        "25.12.2026",
        "",
        "20261225",
        "+2026-12-2",
    ] {
        let err = Schedule::parse(&windows, &strings(&[date])).unwrap_err();
        assert_eq!(
            err,
            format!("holiday `{date}` is not a date: use `YYYY-MM-DD` such as `2026-12-25`")
        );
    }
    let err = Schedule::parse(&[], &strings(&["2026-12-25"])).unwrap_err();
    assert!(
        err.starts_with("a schedule needs at least one window"),
        "{err}"
    );
    assert!(err.contains("`Mon-Fri 07:00-19:00`"), "{err}");
    assert!(Schedule::parse(&windows, &strings(&["2028-02-29"])).is_ok());
}
