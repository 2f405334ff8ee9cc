use super::*;
use crate::domain::{DeviceId, Origin, Pin, PinRecord, PinSource, Timestamp, User};
use std::collections::BTreeMap;

const NOW: i64 = 1_800_000_000_000;
const RIGHT: Tag = Tag([1; 32]);
const WRONG: Tag = Tag([2; 32]);

fn alice() -> User {
    let mut u = User::new_local("alice");
    u.groups = vec!["staff".into()];
    u.pin = Some(PinRecord {
        tag: RIGHT,
        set_at: Timestamp::from_millis(0),
        expires_at: None,
        source: PinSource::Admin,
        temporary: false,
        uses_left: None,
        windows: Vec::new(),
    });
    u
}

fn request(id_pin: bool) -> AuthRequest {
    let pin = Pin::new("482913");
    AuthRequest {
        device: DeviceId("lobby".into()),
        credential: if id_pin {
            Credential::IdPin {
                id: "alice".into(),
                pin,
            }
        } else {
            Credential::Pin(pin)
        },
        origin: Origin::Tcp {
            peer: "127.0.0.1".parse().unwrap(),
        },
        received_at: Timestamp::from_millis(NOW),
    }
}

fn at(offset_ms: i64) -> Option<Timestamp> {
    Some(Timestamp::from_millis(NOW + offset_ms))
}

/// name, ID+PIN?, device groups, user locked, tag presented, user edit
/// (None: no such user), expected deny reason (None: grant).
type Row<'a> = (
    &'a str,
    bool,
    Option<&'a [String]>,
    bool,
    Tag,
    Option<fn(&mut User)>,
    Option<DenyReason>,
);

#[test]
fn decision_table() {
    let staff = vec!["staff".to_string()];
    let doors_only = vec!["facilities".to_string()];
    type Edit = fn(&mut User);
    let none: Edit = |_| {};
    #[rustfmt::skip]
    let table: Vec<Row> = vec![
        // name,                 id+pin, device groups,      user lock, tag,   user edit,               expected deny
        ("grant pin-only",        false, Some(&staff),       false, RIGHT, Some(none),                     None),
        ("grant id+pin",          true,  Some(&staff),       false, RIGHT, Some(none),                     None),
        ("unknown device",        false, None,               false, RIGHT, Some(none),                     Some(DenyReason::UnknownDevice)),
        ("unknown pin",           false, Some(&staff),       false, RIGHT, None,                           Some(DenyReason::UnknownPin)),
        ("unknown user",          true,  Some(&staff),       false, RIGHT, None,                           Some(DenyReason::UnknownUser)),
        ("wrong pin for id",      true,  Some(&staff),       false, WRONG, Some(none),                     Some(DenyReason::WrongPin)),
        ("stale tag index",       false, Some(&staff),       false, WRONG, Some(none),                     Some(DenyReason::UnknownPin)),
        ("no pin set",            true,  Some(&staff),       false, RIGHT, Some(|u| u.pin = None),         Some(DenyReason::NoPin)),
        ("user locked",           true,  Some(&staff),       true,  RIGHT, Some(none),                     Some(DenyReason::UserLockedOut)),
        ("disabled",              false, Some(&staff),       false, RIGHT, Some(|u| u.enabled = false),    Some(DenyReason::Disabled)),
        ("not yet valid",         false, Some(&staff),       false, RIGHT, Some(|u| u.valid_from = at(1)), Some(DenyReason::NotYetValid)),
        ("valid from now",        false, Some(&staff),       false, RIGHT, Some(|u| u.valid_from = at(0)), None),
        ("account expired",       false, Some(&staff),       false, RIGHT, Some(|u| u.valid_until = at(0)), Some(DenyReason::AccountExpired)),
        ("valid until later",     false, Some(&staff),       false, RIGHT, Some(|u| u.valid_until = at(1)), None),
        ("pin expired",           false, Some(&staff),       false, RIGHT, Some(|u| u.pin.as_mut().unwrap().expires_at = at(-1)), Some(DenyReason::PinExpired)),
        ("pin expires later",     false, Some(&staff),       false, RIGHT, Some(|u| u.pin.as_mut().unwrap().expires_at = at(60_000)), None),
        ("group not allowed",     false, Some(&doors_only),  false, RIGHT, Some(none),                     Some(DenyReason::GroupNotAllowed)),
        ("no groups at all",      false, Some(&staff),       false, RIGHT, Some(|u| u.groups.clear()),     Some(DenyReason::GroupNotAllowed)),
        ("limited, a use left",   false, Some(&staff),       false, RIGHT, Some(|u| u.pin.as_mut().unwrap().uses_left = Some(1)), None),
        ("limited, exhausted",    false, Some(&staff),       false, RIGHT, Some(|u| u.pin.as_mut().unwrap().uses_left = Some(0)), Some(DenyReason::UsesExhausted)),
        ("exhausted, by id",      true,  Some(&staff),       false, RIGHT, Some(|u| u.pin.as_mut().unwrap().uses_left = Some(0)), Some(DenyReason::UsesExhausted)),
        ("expired before used up", false, Some(&staff),      false, RIGHT, Some(|u| { let p = u.pin.as_mut().unwrap(); p.uses_left = Some(0); p.expires_at = at(-1) }), Some(DenyReason::PinExpired)),
        ("in the pin's window",   false, Some(&staff),       false, RIGHT, Some(|u| u.pin.as_mut().unwrap().windows = vec!["Fri 07:00-09:00".into()]), None),
        ("outside its window",    false, Some(&staff),       false, RIGHT, Some(|u| u.pin.as_mut().unwrap().windows = vec!["Mon-Thu 00:00-24:00".into(), "Fri 09:00-17:00".into()]), Some(DenyReason::OutsidePinWindow)),
        ("unparsable window",     false, Some(&staff),       false, RIGHT, Some(|u| u.pin.as_mut().unwrap().windows = vec!["whenever".into()]), Some(DenyReason::OutsidePinWindow)),
        ("pending pin, pin-only", false, Some(&staff),       false, WRONG, Some(|u| u.pending_pin = Some(record(WRONG))), None),
        ("pending pin, by id",    true,  Some(&staff),       false, WRONG, Some(|u| u.pending_pin = Some(record(WRONG))), None),
        ("old pin beside pending", true, Some(&staff),       false, RIGHT, Some(|u| u.pending_pin = Some(record(WRONG))), None),
        ("pending, no current",   false, Some(&staff),       false, WRONG, Some(|u| { u.pin = None; u.pending_pin = Some(record(WRONG)) }), None),
        ("pending pin expired",   false, Some(&staff),       false, WRONG, Some(|u| u.pending_pin = Some(PinRecord { expires_at: at(0), ..record(WRONG) })), Some(DenyReason::PinExpired)),
        ("pending pin exhausted", true,  Some(&staff),       false, WRONG, Some(|u| u.pending_pin = Some(PinRecord { uses_left: Some(0), ..record(WRONG) })), Some(DenyReason::UsesExhausted)),
        ("pending, still locked", true,  Some(&staff),       true,  WRONG, Some(|u| u.pending_pin = Some(record(WRONG))), Some(DenyReason::UserLockedOut)),
    ];
    for (name, id_pin, groups, user_lock, tag, edit, expected) in table {
        let candidate = match edit {
            Some(edit) => {
                let mut user = alice();
                edit(&mut user);
                Some(user)
            }
            None => None,
        };
        let rules = groups.map(|g| DeviceRules {
            allow_groups: g.to_vec(),
            schedule: None,
            fail_open: false,
            deny_when_stale: false,
        });
        let access = AccessRules {
            group_schedules: BTreeMap::new(),
            tz: TimeZone::utc(),
        };
        let view = View {
            device: rules.as_ref(),
            access: &access,
            user_locked: user_lock,
            tag: Some(tag),
            candidate,
            directory_stale: false,
        };
        let got = decide(&view, &request(id_pin), Timestamp::from_millis(NOW));
        let want = match expected {
            None => Decision::Grant {
                user: "alice".into(),
                duress: false,
            },
            Some(reason) => Decision::Deny { reason },
        };
        assert_eq!(got, want, "case `{name}`");
    }
}

fn record(tag: Tag) -> PinRecord {
    PinRecord {
        tag,
        set_at: Timestamp::from_millis(0),
        expires_at: None,
        source: PinSource::Admin,
        temporary: false,
        uses_left: None,
        windows: Vec::new(),
    }
}

fn sched(windows: &[&str]) -> Schedule {
    let w: Vec<String> = windows.iter().map(|s| s.to_string()).collect();
    Schedule::parse(&w, &[]).unwrap()
}

/// 2026-11-24 (a Tuesday) at the given UTC hour.
fn tuesday(hour: i64) -> Timestamp {
    Timestamp::parse("2026-11-24T00:00:00Z")
        .map(|t| Timestamp::from_millis(t.millis() + hour * 3_600_000))
        .unwrap()
}

#[test]
fn schedules_duress_and_fail_mode() {
    let mut user = alice();
    user.groups = vec!["staff".into(), "cleaners".into()];
    user.duress = Some(record(WRONG));
    let office = DeviceRules {
        allow_groups: vec!["staff".into(), "cleaners".into()],
        schedule: Some(sched(&["Mon-Fri 07:00-19:00"])),
        fail_open: false,
        deny_when_stale: false,
    };
    let mut group_schedules = BTreeMap::new();
    group_schedules.insert("cleaners".to_string(), sched(&["Mon-Fri 18:00-22:00"]));
    let access = AccessRules {
        group_schedules,
        tz: TimeZone::utc(),
    };
    let decide_at = |user: &User, tag: Tag, at: Timestamp| {
        let view = View {
            device: Some(&office),
            access: &access,
            user_locked: false,
            tag: Some(tag),
            candidate: Some(user.clone()),
            directory_stale: false,
        };
        decide(&view, &request(false), at)
    };
    let grant = |duress| Decision::Grant {
        user: "alice".into(),
        duress,
    };
    let outside = Decision::Deny {
        reason: DenyReason::OutsideSchedule,
    };
    assert_eq!(
        decide_at(&user, RIGHT, tuesday(8)),
        grant(false),
        "staff in office hours"
    );
    assert_eq!(
        decide_at(&user, WRONG, tuesday(8)),
        grant(true),
        "duress PIN opens, flagged"
    );
    assert_eq!(
        decide_at(&user, RIGHT, tuesday(20)),
        outside,
        "device closed at 20:00"
    );
    assert_eq!(
        decide_at(&user, RIGHT, tuesday(6)),
        outside,
        "device closed at 06:00"
    );
    let mut cleaner = user.clone();
    cleaner.groups = vec!["cleaners".into()];
    assert_eq!(
        decide_at(&cleaner, RIGHT, tuesday(8)),
        outside,
        "cleaners only from 18:00"
    );
    assert_eq!(decide_at(&cleaner, RIGHT, tuesday(18)), grant(false));
    let sunday = Timestamp::from_millis(tuesday(10).millis() - 2 * 86_400_000);
    assert_eq!(decide_at(&user, RIGHT, sunday), outside, "weekend");

    assert_eq!(
        on_store_failure(Some(&office)),
        Decision::Deny {
            reason: DenyReason::StoreUnavailable
        }
    );
    let exit = DeviceRules {
        fail_open: true,
        ..office.clone()
    };
    assert_eq!(
        on_store_failure(Some(&exit)),
        Decision::Grant {
            user: FAIL_OPEN_USER.into(),
            duress: false
        }
    );
    assert_eq!(
        on_store_failure(None),
        Decision::Deny {
            reason: DenyReason::StoreUnavailable
        }
    );
}

#[test]
fn pin_windows_are_the_pins_own_and_spare_the_duress_pin() {
    let mut user = alice();
    user.pin.as_mut().unwrap().windows = vec!["Tue 07:00-09:00".into(), "Sun 22:00-02:00".into()];
    user.duress = Some(record(WRONG));
    let rules = DeviceRules {
        allow_groups: vec!["staff".into()],
        schedule: Some(sched(&["Mon-Fri 06:00-20:00"])),
        fail_open: false,
        deny_when_stale: false,
    };
    let berlin = AccessRules {
        group_schedules: BTreeMap::new(),
        tz: TimeZone::named("Europe/Berlin").unwrap(),
    };
    let decide_at = |tag: Tag, at: Timestamp, access: &AccessRules| {
        let view = View {
            device: Some(&rules),
            access,
            user_locked: false,
            tag: Some(tag),
            candidate: Some(user.clone()),
            directory_stale: false,
        };
        decide(&view, &request(false), at)
    };
    let reason = |d: Decision| match d {
        Decision::Deny { reason } => Some(reason),
        Decision::Grant { .. } => None,
    };
    // 2026-11-24 in Berlin is UTC+1: 07:30 UTC is 08:30 there.
    let morning = Timestamp::from_millis(tuesday(7).millis() + 30 * 60_000);
    assert_eq!(reason(decide_at(RIGHT, morning, &berlin)), None);
    let utc = AccessRules {
        group_schedules: BTreeMap::new(),
        tz: TimeZone::utc(),
    };
    assert_eq!(reason(decide_at(RIGHT, morning, &utc)), None, "07:30 UTC");
    assert_eq!(
        reason(decide_at(RIGHT, tuesday(8), &berlin)),
        Some(DenyReason::OutsidePinWindow),
        "09:00 in Berlin: the window has closed"
    );
    assert_eq!(
        reason(decide_at(RIGHT, tuesday(21), &utc)),
        Some(DenyReason::OutsideSchedule),
        "the device's schedule is checked first"
    );
    let monday_1am = Timestamp::from_millis(tuesday(1).millis() - 86_400_000);
    assert_eq!(
        reason(decide_at(RIGHT, monday_1am, &utc)),
        Some(DenyReason::OutsideSchedule),
        "Sunday's window runs into Monday, but the device opens at 06:00"
    );
    assert_eq!(
        decide_at(WRONG, tuesday(12), &utc),
        Decision::Grant {
            user: "alice".into(),
            duress: true
        },
        "the duress PIN has no windows of its own"
    );
    assert!(DenyReason::UsesExhausted.counts_as_failure());
    assert_eq!(DenyReason::OutsidePinWindow.as_str(), "outside_pin_window");
    assert_eq!(DenyReason::UsesExhausted.as_str(), "uses_exhausted");
}

#[test]
fn a_stale_directory_denies_only_where_the_device_class_says_so() {
    let access = AccessRules {
        group_schedules: BTreeMap::new(),
        tz: TimeZone::utc(),
    };
    let rules = |deny_when_stale| DeviceRules {
        allow_groups: vec!["staff".into()],
        schedule: None,
        fail_open: false,
        deny_when_stale,
    };
    let (door, printer) = (rules(true), rules(false));
    let at = |device: &DeviceRules, stale: bool, tag: Tag| {
        let view = View {
            device: Some(device),
            access: &access,
            user_locked: false,
            tag: Some(tag),
            candidate: Some(alice()),
            directory_stale: stale,
        };
        decide(&view, &request(false), Timestamp::from_millis(NOW))
    };
    let stale = Decision::Deny {
        reason: DenyReason::DirectoryStale,
    };
    assert_eq!(at(&door, true, RIGHT), stale);
    assert!(matches!(at(&printer, true, RIGHT), Decision::Grant { .. }));
    assert!(matches!(at(&door, false, RIGHT), Decision::Grant { .. }));
    assert_eq!(
        at(&door, true, WRONG),
        Decision::Deny {
            reason: DenyReason::UnknownPin
        },
        "a wrong PIN is still a failure, not a staleness denial"
    );
    assert!(!DenyReason::DirectoryStale.counts_as_failure());
}

#[test]
fn a_card_alone_is_the_whole_credential() {
    let rules = DeviceRules {
        allow_groups: vec!["staff".into()],
        schedule: None,
        fail_open: false,
        deny_when_stale: false,
    };
    let access = AccessRules {
        group_schedules: BTreeMap::new(),
        tz: TimeZone::utc(),
    };
    let card = AuthRequest {
        device: DeviceId("lobby".into()),
        credential: Credential::Card {
            card: "482115".into(),
        },
        origin: Origin::Tcp {
            peer: "127.0.0.1".parse().unwrap(),
        },
        received_at: Timestamp::from_millis(NOW),
    };
    let now = Timestamp::from_millis(NOW);
    let view = |candidate: Option<User>| View {
        device: Some(&rules),
        access: &access,
        user_locked: false,
        tag: None,
        candidate,
        directory_stale: false,
    };
    let mut no_pin = alice();
    no_pin.pin = None;
    assert_eq!(
        decide(&view(Some(no_pin)), &card, now),
        Decision::Grant {
            user: "alice".into(),
            duress: false
        },
        "a card user needs no PIN"
    );
    assert_eq!(
        decide(&view(None), &card, now),
        Decision::Deny {
            reason: DenyReason::UnknownCard
        }
    );
    let mut off = alice();
    off.enabled = false;
    assert_eq!(
        decide(&view(Some(off)), &card, now),
        Decision::Deny {
            reason: DenyReason::Disabled
        }
    );
}
