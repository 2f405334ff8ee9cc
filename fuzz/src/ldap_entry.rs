//! LDAP entry mapping, with structured (`arbitrary`) inputs: an entry's DN and attributes
//! (names from the mapped set or free, values as bytes) through `map_entry` under each
//! enabled rule, `memberOf` groups, poll-mode keys (AD objectGUID), LDAP times, group
//! indexes and the saved cursor.
//! Invariants: a mapped user has a non-empty trimmed id; a GUID key has the RFC 4122 text
//! shape; a cursor that decodes re-encodes to the same cursor.

use arbitrary::{Arbitrary, Unstructured};
use pinwarden::fuzzing::{
    first_rdn_value, groups_from_attribute, key_from_values, normalise_dn, uuid_text,
};
use pinwarden::sync::ldap::{
    map_entry, parse_time, Cursor, EnabledRule, Entry, GroupIndex, LdapMapping,
};

/// The attribute names the mapping reads; an input names one by index or spells its own.
const NAMES: [&str; 12] = [
    "uid",
    "cn",
    "mail",
    "pinwardenPin",
    "cardNumber",
    "userAccountControl",
    "pinwardenEnabled",
    "pwdAccountLockedTime",
    "validFrom",
    "accountExpires",
    "entryCSN",
    "memberOf;binary",
];

#[derive(Arbitrary, Debug)]
enum Name {
    Known(u8),
    Free(String),
}

#[derive(Arbitrary, Debug)]
struct Input {
    dn: String,
    attrs: Vec<(Name, Vec<Vec<u8>>)>,
    rule: u8,
    absent: bool,
    key_values: Vec<Vec<u8>>,
    groups: Vec<(String, Vec<String>)>,
    time: String,
    cursor: Vec<u8>,
}

fn mapping(rule: u8, absent: bool) -> LdapMapping {
    let enabled = match rule % 4 {
        0 => EnabledRule::Always,
        1 => EnabledRule::Boolean {
            attribute: "pinwardenEnabled".into(),
            absent,
        },
        2 => EnabledRule::AccountControl {
            attribute: "userAccountControl".into(),
        },
        _ => EnabledRule::DisabledWhenPresent {
            attribute: "pwdAccountLockedTime".into(),
        },
    };
    LdapMapping {
        key: "objectGUID".into(),
        id: "uid".into(),
        name: "cn".into(),
        email: Some("mail".into()),
        pin: Some("pinwardenPin".into()),
        card: Some("cardNumber".into()),
        enabled,
        valid_from: Some("validFrom".into()),
        valid_until: Some("accountExpires".into()),
        version: Some("entryCSN".into()),
    }
}

fn guid_shaped(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn check(input: Input) {
    let mut entry = Entry::new(input.dn.clone());
    for (name, values) in input.attrs {
        match name {
            Name::Known(i) => entry.add(NAMES[usize::from(i) % NAMES.len()], values),
            Name::Free(name) => entry.add(&name, values),
        }
    }
    let groups = groups_from_attribute(&entry, "memberOf").unwrap_or_default();
    let m = mapping(input.rule, input.absent);
    if let Ok(user) = map_entry(&m, "key".into(), &entry, groups) {
        assert!(!user.id.is_empty() && user.id.trim() == user.id, "user id");
    }
    if let Ok(key) = key_from_values("objectGUID", &input.key_values) {
        let [value] = input.key_values.as_slice() else {
            panic!("a key from several values")
        };
        if value.len() == 16 && !value.iter().all(|b| (0x20..0x7f).contains(b)) {
            assert!(guid_shaped(&key), "GUID text shape");
        }
    }
    if let Some(text) = uuid_text(&input.key_values.concat()) {
        assert!(guid_shaped(&text), "UUID text shape");
    }
    let _ = parse_time(&input.time);
    let _ = parse_time(input.time.trim());
    let _ = first_rdn_value(&input.dn);
    let mut index = GroupIndex::default();
    for (name, members) in &input.groups {
        let members: Vec<&str> = members.iter().map(String::as_str).collect();
        index.add(name, &members);
    }
    let _ = index.groups_of(&input.dn, &input.time);
    let _ = index.digest();
    assert_eq!(
        normalise_dn(&normalise_dn(&input.dn)),
        normalise_dn(&input.dn)
    );
    if let Ok(cursor) = Cursor::decode(&input.cursor) {
        assert_eq!(
            Cursor::decode(&cursor.encode()),
            Ok(cursor),
            "cursor round trip"
        );
    }
}

pub fn run(data: &[u8]) {
    if let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) {
        check(input);
    }
}
