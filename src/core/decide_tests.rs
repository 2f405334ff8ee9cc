use super::*;
use crate::domain::{DeviceId, Origin, Pin, PinRecord, PinSource, Timestamp, User};

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

/// name, ID+PIN?, device groups, source locked, user locked, tag presented, user edit
/// (None: no such user), expected deny reason (None: grant).
type Row<'a> = (
    &'a str,
    bool,
    Option<&'a [String]>,
    bool,
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
        // name,                 id+pin, device groups,      src lock, user lock, tag,   user edit,               expected deny
        ("grant pin-only",        false, Some(&staff),       false, false, RIGHT, Some(none),                     None),
        ("grant id+pin",          true,  Some(&staff),       false, false, RIGHT, Some(none),                     None),
        ("unknown device",        false, None,               false, false, RIGHT, Some(none),                     Some(DenyReason::UnknownDevice)),
        ("source locked",         false, Some(&staff),       true,  false, RIGHT, Some(none),                     Some(DenyReason::LockedOut)),
        ("unknown pin",           false, Some(&staff),       false, false, RIGHT, None,                           Some(DenyReason::UnknownPin)),
        ("unknown user",          true,  Some(&staff),       false, false, RIGHT, None,                           Some(DenyReason::UnknownUser)),
        ("wrong pin for id",      true,  Some(&staff),       false, false, WRONG, Some(none),                     Some(DenyReason::WrongPin)),
        ("stale tag index",       false, Some(&staff),       false, false, WRONG, Some(none),                     Some(DenyReason::UnknownPin)),
        ("no pin set",            true,  Some(&staff),       false, false, RIGHT, Some(|u| u.pin = None),         Some(DenyReason::NoPin)),
        ("user locked",           true,  Some(&staff),       false, true,  RIGHT, Some(none),                     Some(DenyReason::UserLockedOut)),
        ("disabled",              false, Some(&staff),       false, false, RIGHT, Some(|u| u.enabled = false),    Some(DenyReason::Disabled)),
        ("not yet valid",         false, Some(&staff),       false, false, RIGHT, Some(|u| u.valid_from = at(1)), Some(DenyReason::NotYetValid)),
        ("valid from now",        false, Some(&staff),       false, false, RIGHT, Some(|u| u.valid_from = at(0)), None),
        ("account expired",       false, Some(&staff),       false, false, RIGHT, Some(|u| u.valid_until = at(0)), Some(DenyReason::AccountExpired)),
        ("valid until later",     false, Some(&staff),       false, false, RIGHT, Some(|u| u.valid_until = at(1)), None),
        ("pin expired",           false, Some(&staff),       false, false, RIGHT, Some(|u| u.pin.as_mut().unwrap().expires_at = at(-1)), Some(DenyReason::PinExpired)),
        ("pin expires later",     false, Some(&staff),       false, false, RIGHT, Some(|u| u.pin.as_mut().unwrap().expires_at = at(60_000)), None),
        ("group not allowed",     false, Some(&doors_only),  false, false, RIGHT, Some(none),                     Some(DenyReason::GroupNotAllowed)),
        ("no groups at all",      false, Some(&staff),       false, false, RIGHT, Some(|u| u.groups.clear()),     Some(DenyReason::GroupNotAllowed)),
    ];
    for (name, id_pin, groups, src_lock, user_lock, tag, edit, expected) in table {
        let candidate = match edit {
            Some(edit) => {
                let mut user = alice();
                edit(&mut user);
                Some(user)
            }
            None => None,
        };
        let view = View {
            allowed_groups: groups,
            source_locked: src_lock,
            user_locked: user_lock,
            tag,
            candidate,
        };
        let got = decide(&view, &request(id_pin), Timestamp::from_millis(NOW));
        let want = match expected {
            None => Decision::Grant {
                user: "alice".into(),
            },
            Some(reason) => Decision::Deny { reason },
        };
        assert_eq!(got, want, "case `{name}`");
    }
}
