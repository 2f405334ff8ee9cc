//! The LDAP source against a real slapd per test: full and incremental syncrepl refreshes
//! (both refresh shapes), poll mode, paging past 1000 entries, group entries, and the
//! failure modes (frozen server, wrong password, stale cursor, undecodable reply).

#[path = "common/slapd.rs"]
mod slapd;

use pinwarden::sync::ldap::{EnabledRule, GroupSource, LdapSettings, LdapSource, Mode};
use pinwarden::sync::source::{Batch, Deletions, Source, SourceError, UpstreamUser};
use slapd::{Options, Slapd, BIND_DN, BIND_PW};
use std::time::Duration;

const PEOPLE: &str = "ou=people,dc=example,dc=org";

fn settings(s: &Slapd) -> LdapSettings {
    let mut settings = LdapSettings::openldap(&s.url, PEOPLE);
    settings.bind_dn = Some(BIND_DN.to_owned());
    settings.bind_password = BIND_PW.to_owned();
    settings.timeout = Duration::from_secs(5);
    settings.mapping.enabled = EnabledRule::Boolean {
        attribute: "pinwardenEnabled".to_owned(),
        absent: true,
    };
    settings
}

fn poll_settings(s: &Slapd) -> LdapSettings {
    let mut settings = settings(s);
    settings.mode = Mode::Poll {
        change_attribute: "entryCSN".to_owned(),
        high_water_attribute: None,
        server_id_attribute: "namingContexts".to_owned(),
        server_id_entry_attribute: Some("entryUUID".to_owned()),
        full_every: Duration::from_secs(3600),
    };
    settings
}

async fn fetch(settings: &LdapSettings, cursor: Option<&[u8]>) -> Result<Batch, SourceError> {
    let source = LdapSource::new(settings.clone()).expect("valid settings");
    source.fetch(cursor).await
}

async fn fetch_ok(settings: &LdapSettings, cursor: Option<&[u8]>) -> Batch {
    match fetch(settings, cursor).await {
        Ok(batch) => batch,
        Err(e) => panic!("fetch failed: {e}"),
    }
}

fn user<'a>(batch: &'a Batch, id: &str) -> &'a UpstreamUser {
    batch
        .changed
        .iter()
        .find(|u| u.id == id)
        .unwrap_or_else(|| panic!("{id} not in {:?}", ids(batch)))
}

fn ids(batch: &Batch) -> Vec<String> {
    let mut ids: Vec<String> = batch.changed.iter().map(|u| u.id.clone()).collect();
    ids.sort();
    ids
}

fn groups_ldif() -> String {
    std::fs::read_to_string(slapd::fixture("groups.ldif")).unwrap()
}

/// Describes a batch's shape for the logs (keys, never PINs).
fn shape(label: &str, batch: &Batch) {
    let cursor = batch.cursor.as_deref().map(String::from_utf8_lossy);
    eprintln!(
        "{label}: changed={:?} deletions={:?} cursor={cursor:?}",
        ids(batch),
        batch.deletions
    );
}

#[tokio::test]
async fn syncrepl_full_fetch_then_add_modify_delete_each_show_in_the_next_batch() {
    let server = Slapd::start("");
    server.ldapmodify(&groups_ldif(), true);
    let s = settings(&server);

    let full = fetch_ok(&s, None).await;
    shape("full", &full);
    assert_eq!(ids(&full), ["alice", "bob", "carol"]);
    assert_eq!(full.deletions, Deletions::AllExcept { present: vec![] });
    let alice = user(&full, "alice");
    assert_eq!(alice.pin.as_ref().unwrap().expose(), "482913");
    assert_eq!(alice.name, "Alice Archer");
    assert_eq!(alice.email.as_deref(), Some("alice@example.org"));
    assert_eq!(alice.cards, ["0004 82115"]);
    assert_eq!(
        alice.groups,
        ["staff"],
        "memberOf from the memberof overlay"
    );
    assert_eq!(
        alice.valid_until.unwrap().to_string(),
        "2099-12-31T23:59:59Z"
    );
    assert_eq!(alice.key.len(), 36, "entryUUID in text form: {}", alice.key);
    let bob = user(&full, "bob");
    assert_eq!(
        bob.pin.as_ref().unwrap().expose(),
        "0042",
        "leading zero kept"
    );
    assert_eq!(bob.valid_from.unwrap().to_string(), "2025-01-01T00:00:00Z");
    assert!(bob.groups.is_empty() && bob.email.is_none());
    assert!(bob.enabled && !user(&full, "carol").enabled);
    let carol_key = user(&full, "carol").key.clone();
    let cursor = full
        .cursor
        .clone()
        .expect("a full refresh carries a cookie");

    server.ldapmodify(
        "dn: uid=dave,ou=people,dc=example,dc=org\nobjectClass: inetOrgPerson\n\
         objectClass: pinwardenUser\nuid: dave\ncn: Dave Dunn\nsn: Dunn\npinwardenPin: 5150\n",
        true,
    );
    server.ldapmodify(
        "dn: uid=alice,ou=people,dc=example,dc=org\nchangetype: modify\n\
         replace: pinwardenPin\npinwardenPin: 771177\n\n\
         dn: cn=staff,ou=groups,dc=example,dc=org\nchangetype: modify\n\
         add: member\nmember: uid=bob,ou=people,dc=example,dc=org\n",
        false,
    );
    server.ldapdelete("uid=carol,ou=people,dc=example,dc=org");

    let next = fetch_ok(&s, Some(&cursor)).await;
    shape("incremental", &next);
    // bob's memberOf changed too, but the memberof overlay's writes are not replicated:
    // syncprov does not report bob. The modified group entry (outside the search) is
    // reported among the deleted UUIDs, which the engine ignores as an unknown key.
    assert_eq!(
        ids(&next),
        ["alice", "dave"],
        "modifications arrive as adds"
    );
    assert_eq!(
        user(&next, "alice").pin.as_ref().unwrap().expose(),
        "771177"
    );
    assert_eq!(user(&next, "dave").pin.as_ref().unwrap().expose(), "5150");
    let Deletions::Keys(deleted) = &next.deletions else {
        panic!(
            "a delete-phase refresh lists deletions: {:?}",
            next.deletions
        );
    };
    assert!(deleted.contains(&carol_key), "{deleted:?}");
    let live: Vec<&String> = full.changed.iter().map(|u| &u.key).collect();
    assert!(deleted
        .iter()
        .all(|k| *k == carol_key || !live.contains(&k)));
    let cursor = next.cursor.clone().expect("changes carry a new cookie");

    let quiet = fetch_ok(&s, Some(&cursor)).await;
    shape("no changes", &quiet);
    assert!(quiet.changed.is_empty());
    assert_eq!(quiet.deletions, Deletions::Keys(vec![]));
    assert_eq!(
        quiet.cursor, None,
        "no cookie sent: the engine keeps the old one"
    );

    let complete = fetch_ok(&s, None).await;
    assert_eq!(ids(&complete), ["alice", "bob", "dave"]);
    assert_eq!(
        user(&complete, "bob").groups,
        ["staff"],
        "seen by a complete refresh"
    );
}

#[tokio::test]
async fn syncrepl_after_a_restart_lists_the_survivors_and_the_rest_is_deleted() {
    let mut server = Slapd::start("");
    let s = settings(&server);
    let full = fetch_ok(&s, None).await;
    let key = |id: &str| user(&full, id).key.clone();
    let cursor = full.cursor.clone().unwrap();

    server.ldapdelete("uid=bob,ou=people,dc=example,dc=org");
    server.restart();
    server.ldapdelete("uid=carol,ou=people,dc=example,dc=org");
    server.ldapmodify(
        "dn: uid=erin,ou=people,dc=example,dc=org\nobjectClass: inetOrgPerson\nuid: erin\n\
         cn: Erin Eck\nsn: Eck\n",
        true,
    );

    let next = fetch_ok(&s, Some(&cursor)).await;
    shape("after restart", &next);
    assert_eq!(ids(&next), ["erin"]);
    let Deletions::AllExcept { present } = &next.deletions else {
        panic!("a restart loses the session log: present phase expected");
    };
    assert!(present.contains(&key("alice")), "{present:?}");
    assert!(!present.contains(&key("bob")) && !present.contains(&key("carol")));
    assert!(next.cursor.is_some());
}

#[tokio::test]
async fn a_frozen_server_is_unavailable_within_the_timeout() {
    let mut server = Slapd::start("");
    let mut s = settings(&server);
    s.timeout = Duration::from_millis(500);
    server.freeze();
    let err = fetch(&s, None).await.unwrap_err();
    server.thaw();
    assert!(matches!(err, SourceError::Unavailable(_)), "{err:?}");
    // Working again, within the usual timeout: 500 ms is too short a promise on a loaded
    // machine for a slapd that was just thawed.
    fetch_ok(&settings(&server), None).await;
}

#[tokio::test]
async fn a_wrong_bind_password_is_rejected_without_echoing_it() {
    let server = Slapd::start("");
    let mut s = settings(&server);
    s.bind_password = "not-the-password".to_owned();
    let err = fetch(&s, None).await.unwrap_err();
    assert!(matches!(err, SourceError::Rejected(_)), "{err:?}");
    assert!(!err.to_string().contains("not-the-password"), "{err}");
}

#[tokio::test]
async fn nothing_listening_is_unavailable() {
    // Bound but never listening: connections are refused, and no other test can bind the
    // port meanwhile (a released port could be anybody's by the time we connect).
    let held = tokio::net::TcpSocket::new_v4().unwrap();
    held.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = held.local_addr().unwrap().port();
    let mut s = LdapSettings::openldap(&format!("ldap://127.0.0.1:{port}"), PEOPLE);
    s.timeout = Duration::from_secs(2);
    let err = fetch(&s, None).await.unwrap_err();
    assert!(matches!(err, SourceError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn unusable_cursors_and_cookies_are_cursor_expired() {
    let server = Slapd::start("");
    let s = settings(&server);
    let err = fetch(&s, Some(b"not a cursor")).await.unwrap_err();
    assert!(matches!(err, SourceError::CursorExpired(_)), "{err:?}");

    let poll_cursor = fetch_ok(&poll_settings(&server), None)
        .await
        .cursor
        .unwrap();
    let err = fetch(&s, Some(&poll_cursor)).await.unwrap_err();
    assert!(matches!(err, SourceError::CursorExpired(_)), "{err:?}");
}

fn generated(count: usize) -> String {
    (0..count)
        .map(|i| {
            format!(
                "dn: uid=u{i:06},ou=people,dc=example,dc=org\nobjectClass: inetOrgPerson\n\
                 objectClass: pinwardenUser\nuid: u{i:06}\ncn: User {i}\nsn: U\n\
                 pinwardenPin: {:06}\n\n",
                (i * 7919) % 1_000_000
            )
        })
        .collect()
}

#[tokio::test]
async fn paging_fetches_2500_entries_past_a_1000_entry_size_limit() {
    let server = Slapd::start_with(Options {
        ldif: generated(2500),
        limits: "size.soft=1000 size.hard=1000 size.pr=1000 size.prtotal=unlimited".to_owned(),
        ..Options::default()
    });
    let full = fetch_ok(&poll_settings(&server), None).await;
    assert_eq!(
        full.changed.len(),
        2503,
        "2500 generated + alice, bob, carol"
    );
    assert!(matches!(full.deletions, Deletions::AllExcept { ref present } if present.is_empty()));

    // OpenLDAP does not page a sync search (sync + paged returns one page and a Sync Done
    // as if complete), so syncrepl does not ask for paging and a size limit is an error.
    let err = fetch(&settings(&server), None).await.unwrap_err();
    assert!(
        matches!(err, SourceError::Rejected(ref m) if m.contains("size limit")),
        "{err:?}"
    );
}

#[tokio::test]
async fn syncrepl_fetches_2500_entries_when_the_bind_dn_has_no_size_limit() {
    let server = Slapd::start_with(Options {
        ldif: generated(2500),
        ..Options::default()
    });
    let full = fetch_ok(&settings(&server), None).await;
    assert_eq!(full.changed.len(), 2503);
}

#[tokio::test]
async fn group_entries_map_groupofnames_and_posixgroup_and_a_change_forces_a_complete_refresh() {
    let server = Slapd::start(&groups_ldif());
    let mut s = settings(&server);
    s.group_source = GroupSource::GroupEntries {
        base_dn: "ou=groups,dc=example,dc=org".to_owned(),
        filter: "(|(objectClass=groupOfNames)(objectClass=posixGroup))".to_owned(),
        member_attributes: vec!["member".to_owned(), "memberUid".to_owned()],
        name_attribute: "cn".to_owned(),
    };
    let full = fetch_ok(&s, None).await;
    assert_eq!(
        user(&full, "alice").groups,
        ["staff"],
        "groupOfNames member DN"
    );
    assert_eq!(
        user(&full, "bob").groups,
        ["printers"],
        "posixGroup memberUid"
    );
    assert!(user(&full, "carol").groups.is_empty());

    server.ldapmodify(
        "dn: cn=staff,ou=groups,dc=example,dc=org\nchangetype: modify\n\
         add: member\nmember: uid=bob,ou=people,dc=example,dc=org\n",
        false,
    );
    let next = fetch_ok(&s, full.cursor.as_deref()).await;
    shape("group change", &next);
    assert!(matches!(next.deletions, Deletions::AllExcept { .. }));
    assert_eq!(user(&next, "bob").groups, ["printers", "staff"]);
    let quiet = fetch_ok(&s, next.cursor.as_deref()).await;
    assert!(
        quiet.changed.is_empty(),
        "unchanged groups: incremental again"
    );
}

#[tokio::test]
async fn poll_mode_sees_changes_since_the_high_water_mark_and_lists_all_on_a_new_server() {
    let server = Slapd::start("");
    let s = poll_settings(&server);
    let full = fetch_ok(&s, None).await;
    shape("poll full", &full);
    assert_eq!(ids(&full), ["alice", "bob", "carol"]);
    assert_eq!(full.deletions, Deletions::AllExcept { present: vec![] });

    std::thread::sleep(Duration::from_millis(20));
    server.ldapmodify(
        "dn: uid=bob,ou=people,dc=example,dc=org\nchangetype: modify\n\
         replace: pinwardenPin\npinwardenPin: 9090\n",
        false,
    );
    let next = fetch_ok(&s, full.cursor.as_deref()).await;
    shape("poll incremental", &next);
    // entryCSN is text, so the filter is `>=` the last mark: the entry holding it (the last
    // one written before, carol) comes again; integer marks (AD USNs) start one above.
    assert!(
        !ids(&next).contains(&"alice".to_owned()),
        "{:?}",
        ids(&next)
    );
    assert_eq!(user(&next, "bob").pin.as_ref().unwrap().expose(), "9090");
    assert_eq!(next.deletions, Deletions::Keys(vec![]));

    let rebuilt = Slapd::start("");
    let other = poll_settings(&rebuilt);
    let moved = fetch_ok(&other, next.cursor.as_deref()).await;
    shape("poll new server", &moved);
    assert_eq!(ids(&moved), ["alice", "bob", "carol"]);
    assert!(matches!(moved.deletions, Deletions::AllExcept { .. }));
}

/// A fake LDAP server answering any request with an entry whose Sync State control value is
/// garbage: ldap3's parser panics on it, and the fetch must come back `Malformed`.
#[tokio::test]
async fn an_undecodable_sync_state_control_is_malformed_not_a_panic() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ldap://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = sock.read(&mut buf).await.unwrap();
        let oid = b"1.3.6.1.4.1.4203.1.9.1.2";
        let mut control = vec![0x04, oid.len() as u8];
        control.extend_from_slice(oid);
        control.extend_from_slice(&[0x04, 0x02, 0x01, 0x02]);
        let mut controls = vec![0x30, control.len() as u8];
        controls.extend(control);
        let entry = [0x64, 0x08, 0x04, 0x04, b'c', b'n', b'=', b'x', 0x30, 0x00];
        let mut body = vec![0x02, 0x01, 0x01];
        body.extend_from_slice(&entry);
        body.extend([0xa0, controls.len() as u8]);
        body.extend(controls);
        let mut message = vec![0x30, body.len() as u8];
        message.extend(body);
        sock.write_all(&message).await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let mut s = LdapSettings::openldap(&url, PEOPLE);
    s.timeout = Duration::from_secs(3);
    let err = fetch(&s, None).await.unwrap_err();
    assert!(matches!(err, SourceError::Malformed(_)), "{err:?}");
    server.abort();
}
