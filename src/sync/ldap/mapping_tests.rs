use super::*;
use crate::sync::ldap::settings::LdapSettings;

fn mapping() -> LdapMapping {
    LdapSettings::openldap("ldap://x", "dc=x").mapping
}

fn entry(attrs: &[(&str, &[&str])]) -> Entry {
    let mut e = Entry::new("uid=alice,ou=people,dc=example,dc=org");
    for (name, values) in attrs {
        e.add(name, values.iter().map(|v| v.as_bytes().to_vec()));
    }
    e
}

#[test]
fn maps_an_inetorgperson_entry() {
    let e = entry(&[
        ("UID", &["alice"]),
        ("cn", &["Alice Archer"]),
        ("mail", &["alice@example.org"]),
        ("pinwardenPin", &["0042"]),
        ("pinwardenCard", &["0004 82115", " ", "77"]),
        ("pinwardenValidUntil", &["20991231235959Z"]),
    ]);
    let u = map_entry(&mapping(), "k1".into(), &e, vec!["staff".into()]).unwrap();
    assert_eq!((u.key.as_str(), u.id.as_str()), ("k1", "alice"));
    assert_eq!(u.name, "Alice Archer");
    assert_eq!(u.email.as_deref(), Some("alice@example.org"));
    assert_eq!(u.pin.unwrap().expose(), "0042");
    assert_eq!(u.cards, ["0004 82115", "77"]);
    assert_eq!(u.groups, ["staff"]);
    assert!(u.enabled);
    assert_eq!(u.valid_until.unwrap().to_string(), "2099-12-31T23:59:59Z");
    assert!(u.valid_from.is_none());
}

#[test]
fn missing_optional_fields_and_the_name_falls_back_to_the_id() {
    let u = map_entry(&mapping(), "k".into(), &entry(&[("uid", &["bob"])]), vec![]).unwrap();
    assert_eq!(u.name, "bob");
    assert!(u.pin.is_none() && u.email.is_none() && u.cards.is_empty());
    let empty_pin = entry(&[("uid", &["bob"]), ("pinwardenPin", &[""])]);
    let u = map_entry(&mapping(), "k".into(), &empty_pin, vec![]).unwrap();
    assert!(u.pin.is_none());
}

#[test]
fn errors_name_the_attribute_and_never_the_pin() {
    let m = mapping();
    let no_id = entry(&[("cn", &["x"])]);
    assert_eq!(
        map_entry(&m, "k".into(), &no_id, vec![]).unwrap_err(),
        MapError::Missing("uid".into())
    );
    let two_pins = entry(&[("uid", &["a"]), ("pinwardenPin", &["1111", "2222"])]);
    let err = map_entry(&m, "k".into(), &two_pins, vec![]).unwrap_err();
    assert_eq!(err, MapError::Ambiguous("pinwardenPin".into()));
    let spaced = entry(&[("uid", &["a"]), ("pinwardenPin", &[" 4821"])]);
    let err = map_entry(&m, "k".into(), &spaced, vec![]).unwrap_err();
    assert!(!err.to_string().contains("4821") && err.to_string().contains("pinwardenPin"));
    let bad_time = entry(&[("uid", &["a"]), ("pinwardenValidFrom", &["soon"])]);
    let err = map_entry(&m, "k".into(), &bad_time, vec![]).unwrap_err();
    assert_eq!(err, MapError::BadTime("pinwardenValidFrom".into()));
    let mut binary = Entry::new("uid=a");
    binary.add("uid", [vec![0xff, 0xfe]]);
    assert_eq!(binary.single("uid"), Err(MapError::NotText("uid".into())));
}

#[test]
fn enabled_rules() {
    let attr = || "a".to_owned();
    let rule = EnabledRule::AccountControl { attribute: attr() };
    for (uac, expected) in [
        ("512", true),
        ("514", false),
        ("66050", false),
        ("66048", true),
    ] {
        assert_eq!(
            enabled(&rule, &entry(&[("a", &[uac])])),
            Ok(expected),
            "{uac}"
        );
    }
    assert_eq!(enabled(&rule, &entry(&[])), Ok(true));
    assert!(enabled(&rule, &entry(&[("a", &["x"])])).is_err());

    let rule = EnabledRule::Boolean {
        attribute: attr(),
        absent: false,
    };
    assert_eq!(enabled(&rule, &entry(&[("a", &["TRUE"])])), Ok(true));
    assert_eq!(enabled(&rule, &entry(&[("a", &["false"])])), Ok(false));
    assert_eq!(enabled(&rule, &entry(&[])), Ok(false));
    assert!(enabled(&rule, &entry(&[("a", &["maybe"])])).is_err());

    let rule = EnabledRule::DisabledWhenPresent { attribute: attr() };
    assert_eq!(
        enabled(&rule, &entry(&[("a", &["20240101000000Z"])])),
        Ok(false)
    );
    assert_eq!(enabled(&rule, &entry(&[])), Ok(true));
    assert_eq!(enabled(&EnabledRule::Always, &entry(&[])), Ok(true));
}

/// A GeneralizedTime whose zone has a multi-byte character where a digit belongs made the
/// offset slicing panic (the directory's bytes are any UTF-8); now it is simply not a time.
/// Seen while writing the `ldap_entry` fuzz target, which replays it from its corpus.
#[test]
fn a_multibyte_zone_is_not_a_time() {
    for bad in [
        "20260131080000é000",
        "20260131080000+0é0",
        "20260131080000-é00",
        "20260131080000.5+01é",
    ] {
        assert_eq!(parse_time(bad), None, "{bad}");
    }
}

#[test]
fn ldap_time_formats() {
    let t = |v: &str| parse_time(v).map(|t| t.map(|t| t.to_string()));
    assert_eq!(
        t("20260131080000Z"),
        Some(Some("2026-01-31T08:00:00Z".into()))
    );
    assert_eq!(
        t("20260131090000+0100"),
        Some(Some("2026-01-31T08:00:00Z".into()))
    );
    assert_eq!(
        t("20260131080000.5Z"),
        Some(Some("2026-01-31T08:00:00.5Z".into()))
    );
    assert_eq!(t("2026-01-31"), Some(Some("2026-01-31T00:00:00Z".into())));
    // AD accountExpires: FILETIME ticks; 0 and i64::MAX mean never.
    assert_eq!(
        t("134143200000000000"),
        Some(Some("2026-01-31T08:00:00Z".into()))
    );
    assert_eq!(t("0"), Some(None));
    assert_eq!(t("9223372036854775807"), Some(None));
    for bad in [
        "",
        "soon",
        "20261331000000Z",
        "20260131080000",
        "2026013108Z",
    ] {
        assert_eq!(t(bad), None, "{bad}");
    }
}

#[test]
fn keys_uuids_and_guids() {
    let uuid = hex::decode("67e626467c2810418f9f45c621372da3").unwrap();
    assert_eq!(
        uuid_text(&uuid).unwrap(),
        "67e62646-7c28-1041-8f9f-45c621372da3"
    );
    assert!(uuid_text(&[1, 2, 3]).is_none());
    // AD objectGUID bytes: the first three fields are little-endian.
    let guid = hex::decode("4626e6672 87c4110 8f9f45c621372da3".replace(' ', "")).unwrap();
    assert_eq!(
        key_from_values("objectGUID", &[guid]).unwrap(),
        "67e62646-7c28-1041-8f9f-45c621372da3"
    );
    let text = b"67e62646-7c28-1041-8f9f-45c621372da3".to_vec();
    assert_eq!(
        key_from_values("entryUUID", &[text]).unwrap(),
        "67e62646-7c28-1041-8f9f-45c621372da3"
    );
    assert!(key_from_values("k", &[]).is_err());
    assert!(key_from_values("k", &[b"a".to_vec(), b"b".to_vec()]).is_err());
}

#[test]
fn group_names_from_dns_and_group_entries() {
    assert_eq!(
        first_rdn_value("cn=Print Staff,ou=groups,dc=x").as_deref(),
        Some("Print Staff")
    );
    assert_eq!(
        first_rdn_value("cn=Smith\\, J,ou=g").as_deref(),
        Some("Smith, J")
    );
    assert_eq!(
        first_rdn_value("cn=caf\\c3\\a9,ou=g").as_deref(),
        Some("café")
    );
    assert_eq!(first_rdn_value("no-equals"), None);
    let e = entry(&[("memberOf", &["cn=b,ou=g", "CN=a,ou=g", "cn=b,ou=g"])]);
    assert_eq!(groups_from_attribute(&e, "memberof").unwrap(), ["a", "b"]);

    let mut index = GroupIndex::default();
    index.add("staff", &["uid=Alice, ou=People,dc=example,dc=org"]);
    index.add("printers", &["alice", "bob"]);
    let before = index.digest();
    assert_eq!(
        index.groups_of("uid=alice,ou=people,dc=example,dc=org", "Alice"),
        ["printers", "staff"]
    );
    assert_eq!(
        index.groups_of("uid=bob,ou=people,dc=example,dc=org", "bob"),
        ["printers"]
    );
    index.add("staff", &["bob"]);
    assert_ne!(index.digest(), before);
}
