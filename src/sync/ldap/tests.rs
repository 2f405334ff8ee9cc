use super::cursor::{max_change, next_lower_bound};
use super::fetch::{plan_poll, PollPlan};
use super::refresh::{Info, Refresh, State};
use super::*;
use crate::sync::source::{Deletions, UpstreamUser};
use std::time::Duration;

fn user(key: &str) -> UpstreamUser {
    UpstreamUser {
        key: key.into(),
        id: key.into(),
        name: key.into(),
        email: None,
        groups: vec![],
        pin: None,
        cards: vec![],
        enabled: true,
        valid_from: None,
        valid_until: None,
        version: None,
    }
}

#[test]
fn a_refresh_without_a_cookie_is_complete() {
    let mut r = Refresh::new(true);
    r.entry(State::Add, "a".into(), Some(user("a")));
    let out = r.done(Some(b"c1".to_vec()), true);
    assert_eq!(out.changed, [user("a")]);
    assert_eq!(out.deletions, Deletions::AllExcept { present: vec![] });
    assert_eq!(out.cookie.as_deref(), Some(&b"c1"[..]));
}

#[test]
fn the_delete_phase_lists_deleted_keys() {
    let mut r = Refresh::new(false);
    r.info(Info::IdSet {
        cookie: Some(b"c2".to_vec()),
        refresh_deletes: true,
        keys: vec!["gone".into(), "gone".into()],
    });
    r.entry(State::Add, "b".into(), Some(user("b")));
    r.entry(State::Delete, "old".into(), None);
    let out = r.done(None, true);
    assert_eq!(
        out.deletions,
        Deletions::Keys(vec!["gone".into(), "old".into()])
    );
    assert_eq!(
        out.cookie.as_deref(),
        Some(&b"c2"[..]),
        "the intermediate's cookie"
    );
}

#[test]
fn the_present_phase_lists_survivors_and_unmappable_entries_survive() {
    let mut r = Refresh::new(false);
    r.info(Info::IdSet {
        cookie: None,
        refresh_deletes: false,
        keys: vec!["p1".into()],
    });
    r.entry(State::Present, "p2".into(), None);
    r.entry(State::Add, "bad".into(), None);
    r.entry(State::Modify, "m".into(), Some(user("m")));
    let out = r.done(Some(b"c3".to_vec()), false);
    assert_eq!(out.changed, [user("m")]);
    assert_eq!(out.skipped, 1);
    let present = vec!["bad".into(), "p1".into(), "p2".into()];
    assert_eq!(out.deletions, Deletions::AllExcept { present });
}

#[test]
fn no_cookie_means_keep_the_old_one() {
    let r = Refresh::new(false);
    let out = r.done(None, true);
    assert_eq!(out.cookie, None);
    assert_eq!(out.deletions, Deletions::Keys(vec![]));
    let mut r = Refresh::new(false);
    r.info(Info::NewCookie(b"n".to_vec()));
    r.info(Info::Phase { cookie: None });
    assert_eq!(r.done(None, true).cookie.as_deref(), Some(&b"n"[..]));
}

#[test]
fn cursors_round_trip_and_refuse_foreign_bytes() {
    let c = Cursor::Syncrepl {
        cookie: b"rid=000,csn=1".to_vec(),
        groups: Some("ab".into()),
        full_at: 5,
    };
    assert_eq!(Cursor::decode(&c.encode()), Ok(c));
    let p = Cursor::Poll {
        server: "dc=x|guid".into(),
        high_water: Some("12345".into()),
        full_at: 7,
        groups: None,
    };
    assert_eq!(Cursor::decode(&p.encode()).unwrap().mode(), "poll");
    for bad in [
        &b""[..],
        b"ldap1:",
        b"ldap1:{\"mode\":\"other\"}",
        b"rid=000",
    ] {
        assert_eq!(Cursor::decode(bad), Err(CursorError::Unreadable));
    }
}

#[test]
fn change_marks_compare_as_numbers_or_text() {
    assert_eq!(next_lower_bound("41"), "42");
    assert_eq!(next_lower_bound("20240101Z#1"), "20240101Z#1");
    assert_eq!(max_change(Some("9".into()), "10").as_deref(), Some("10"));
    assert_eq!(max_change(Some("b".into()), "a").as_deref(), Some("b"));
    assert_eq!(max_change(None, "a").as_deref(), Some("a"));
}

#[test]
fn poll_plans_a_complete_listing_on_a_new_server_groups_or_schedule() {
    let hour = Duration::from_secs(3600);
    let now = crate::domain::Timestamp::from_millis(10 * 3_600_000);
    let cursor = Cursor::Poll {
        server: "s1".into(),
        high_water: Some("100".into()),
        full_at: now.millis() - 1000,
        groups: None,
    };
    let incremental = PollPlan {
        since: Some("101".into()),
        full_at: now.millis() - 1000,
    };
    assert_eq!(plan_poll(Some(&cursor), "s1", None, now, hour), incremental);
    let full = |p: PollPlan| p.since.is_none() && p.full_at == now.millis();
    assert!(full(plan_poll(None, "s1", None, now, hour)));
    assert!(full(plan_poll(Some(&cursor), "s2", None, now, hour)));
    assert!(full(plan_poll(Some(&cursor), "s1", Some("g"), now, hour)));
    assert!(full(plan_poll(
        Some(&cursor),
        "s1",
        None,
        now,
        Duration::from_millis(500)
    )));
}

#[test]
fn settings_validation_names_the_field() {
    let ok = LdapSettings::openldap("ldap://h", "dc=x");
    assert_eq!(ok.validate(), Ok(()));
    assert!(LdapSettings::active_directory("ldaps://dc1", "dc=x")
        .validate()
        .is_ok());
    let check = |edit: &dyn Fn(&mut LdapSettings), field: &str| {
        let mut s = ok.clone();
        edit(&mut s);
        let err = s.validate().unwrap_err().to_string();
        assert!(err.starts_with(&format!("ldap.{field}:")), "{err}");
    };
    check(&|s| s.url = "http://h".into(), "url");
    check(&|s| s.page_size = 1001, "page_size");
    check(&|s| s.page_size = 0, "page_size");
    check(&|s| s.filter = "(((".into(), "filter");
    check(&|s| s.timeout = Duration::ZERO, "timeout");
    check(&|s| s.bind_dn = Some("cn=x".into()), "bind_password_file");
    check(
        &|s| {
            s.url = "ldaps://h".into();
            s.starttls = true
        },
        "starttls",
    );
    let mut s = ok.clone();
    s.bind_password = "hunter2".into();
    assert!(!format!("{s:?}").contains("hunter2"));
}
