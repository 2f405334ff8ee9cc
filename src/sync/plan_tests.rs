use super::*;
use crate::domain::{Pin, UserOrigin};
use crate::sync::source::Deletions;
use std::collections::HashMap;

#[derive(Default)]
struct Fake {
    users: HashMap<String, User>,
    cards: HashMap<String, String>,
}

impl Existing for Fake {
    fn user(&self, id: &str) -> Result<Option<User>, StoreError> {
        Ok(self.users.get(id).cloned())
    }
    fn card_owner(&self, card: &str) -> Result<Option<String>, StoreError> {
        Ok(self.cards.get(card).cloned())
    }
}

fn entry(id: &str, pin: Option<&str>) -> UpstreamUser {
    UpstreamUser {
        key: format!("k-{id}"),
        id: id.into(),
        name: id.to_uppercase(),
        email: None,
        groups: vec!["staff".into()],
        pin: pin.map(Pin::new),
        cards: vec![],
        enabled: true,
        valid_from: None,
        valid_until: None,
        version: None,
    }
}

/// A fake store holding `ids` as users of source "hr" (and the key map).
fn owned(ids: &[&str]) -> (Fake, HashMap<String, String>) {
    let mut fake = Fake::default();
    let mut keys = HashMap::new();
    for id in ids {
        let mut u = User::new_local(*id);
        u.origin = UserOrigin::Upstream;
        u.upstream = Some(UpstreamRef {
            source: "hr".into(),
            key: format!("k-{id}"),
            version: None,
        });
        fake.users.insert(id.to_string(), u);
        keys.insert(format!("k-{id}"), id.to_string());
    }
    (fake, keys)
}

fn settings(force: bool) -> Settings<'static> {
    Settings {
        source: "hr",
        max_delete_share: 0.10,
        force,
    }
}

fn full(changed: Vec<UpstreamUser>, present: &[&str]) -> Batch {
    Batch {
        changed,
        deletions: Deletions::AllExcept {
            present: present.iter().map(|p| format!("k-{p}")).collect(),
        },
        cursor: None,
    }
}

#[test]
fn a_complete_listing_deletes_what_it_does_not_name_and_hashes_only_given_pins() {
    let names: Vec<String> = (0..20).map(|i| format!("u{i}")).collect();
    let ids: Vec<&str> = names.iter().map(String::as_str).collect();
    let (fake, keys) = owned(&ids);
    let batch = full(
        vec![entry("u0", Some("482913")), entry("new", None)],
        &ids[1..19],
    );
    let p = plan(batch, &keys, &fake, &settings(false)).unwrap();
    assert_eq!(p.removals, vec!["u19"]);
    assert_eq!(p.users.len(), 2);
    assert_eq!(p.pins.len(), 1, "only the entry carrying a PIN is hashed");
    assert!(p.complete);
    assert_eq!(p.users[1].upstream.as_ref().unwrap().source, "hr");
}

#[test]
fn the_mass_deletion_guard_refuses_unless_forced_but_always_allows_one() {
    let names: Vec<String> = (0..30).map(|i| format!("u{i}")).collect();
    let ids: Vec<&str> = names.iter().map(String::as_str).collect();
    let (fake, keys) = owned(&ids);
    let batch = || full(vec![], &ids[..26]);
    match plan(batch(), &keys, &fake, &settings(false)) {
        Err(PlanError::TooManyDeletions {
            removing: 4,
            of: 30,
            limit: 3,
        }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(
        plan(batch(), &keys, &fake, &settings(true))
            .unwrap()
            .removals
            .len(),
        4
    );
    let (fake, keys) = owned(&["a", "b"]);
    let p = plan(full(vec![], &["a"]), &keys, &fake, &settings(false)).unwrap();
    assert_eq!(p.removals, vec!["b"], "one leaver never needs --force");
    assert_eq!(deletion_limit(100_000, 0.10), 10_000);
}

#[test]
fn local_users_and_other_sources_are_never_taken_over() {
    let (mut fake, keys) = owned(&["a"]);
    fake.users.insert("lou".into(), User::new_local("lou"));
    let mut other = User::new_local("oz");
    other.origin = UserOrigin::Upstream;
    other.upstream = Some(UpstreamRef {
        source: "ldap".into(),
        key: "x".into(),
        version: None,
    });
    fake.users.insert("oz".into(), other);
    let batch = full(
        vec![
            entry("lou", Some("482913")),
            entry("oz", None),
            entry("a", None),
        ],
        &[],
    );
    let p = plan(batch, &keys, &fake, &settings(false)).unwrap();
    assert_eq!(p.users.len(), 1);
    assert!(p.pins.is_empty(), "a skipped entry's PIN is not hashed");
    assert_eq!(p.skipped.len(), 2, "{:?}", p.skipped);
    assert!(p.skipped[0].contains("local user"), "{:?}", p.skipped);
    assert!(!p.skipped.iter().any(|s| s.contains("482913")));
}

#[test]
fn incremental_deletions_name_keys_and_renames_move_the_user() {
    let (fake, keys) = owned(&["a", "b", "c"]);
    let mut renamed = entry("b2", None);
    renamed.key = "k-b".into();
    let batch = Batch {
        changed: vec![renamed],
        deletions: Deletions::Keys(vec!["k-c".into(), "k-unknown".into()]),
        cursor: Some(b"2".to_vec()),
    };
    let p = plan(batch, &keys, &fake, &settings(false)).unwrap();
    assert_eq!(p.removals, vec!["b", "c"]);
    assert_eq!(p.users[0].id, "b2");
    assert!(!p.complete);
}

#[test]
fn bad_ids_duplicates_and_taken_cards_are_skipped_with_a_reason() {
    let (mut fake, keys) = owned(&[]);
    fake.cards.insert("77".into(), "lou".into());
    let mut carded = entry("a", None);
    carded.cards = vec!["0077".into(), "12".into()];
    let mut second = entry("b", None);
    second.cards = vec!["12".into()];
    let mut dup = entry("a", None);
    dup.key = "other".into();
    let batch = full(vec![carded, second, dup, entry("has space", None)], &[]);
    let p = plan(batch, &keys, &fake, &settings(false)).unwrap();
    assert_eq!(p.users.len(), 2);
    assert_eq!(p.users[0].cards, vec!["12"]);
    assert!(p.users[1].cards.is_empty());
    assert_eq!(p.skipped.len(), 4, "{:?}", p.skipped);
}

#[test]
fn an_unchanged_version_keeps_the_hashed_pin_but_a_local_pin_is_overwritten() {
    use crate::domain::{PinRecord, PinSource, Tag};
    let (mut fake, keys) = owned(&["a", "b", "c"]);
    let record = |source| PinRecord {
        tag: Tag([1; 32]),
        set_at: Timestamp::from_millis(0),
        expires_at: None,
        source,
        temporary: false,
        uses_left: None,
        windows: Vec::new(),
    };
    for (id, source) in [
        ("a", PinSource::Upstream),
        ("b", PinSource::Upstream),
        ("c", PinSource::Admin),
    ] {
        let u = fake.users.get_mut(id).unwrap();
        u.pin = Some(record(source));
        u.upstream.as_mut().unwrap().version = Some("v1".into());
    }
    let versioned = |id: &str, v: &str| UpstreamUser {
        version: Some(v.into()),
        groups: vec!["night-shift".into()],
        ..entry(id, Some("482913"))
    };
    let batch = full(
        vec![
            versioned("a", "v1"),
            versioned("b", "v2"),
            versioned("c", "v1"),
        ],
        &[],
    );
    let p = plan(batch, &keys, &fake, &settings(false)).unwrap();
    let hashed: Vec<&str> = p
        .pins
        .iter()
        .map(|(i, _)| p.users[*i].id.as_str())
        .collect();
    assert_eq!(
        hashed,
        ["b", "c"],
        "same version keeps a; a locally set PIN is overwritten"
    );
    let a = &p.users[0];
    assert_eq!(
        a.pin,
        Some(record(PinSource::Upstream)),
        "a keeps its PIN record"
    );
    assert_eq!(
        a.groups,
        ["night-shift"],
        "everything else is still applied"
    );
    assert_eq!(a.upstream.as_ref().unwrap().version.as_deref(), Some("v1"));
    assert_eq!(
        p.users[1].upstream.as_ref().unwrap().version.as_deref(),
        Some("v2")
    );
}

#[test]
fn a_directory_pin_drops_a_pending_pin() {
    let mut u = User::new_local("a");
    u.pending_pin = Some(crate::domain::PinRecord {
        tag: crate::domain::Tag([2; 32]),
        set_at: Timestamp::from_millis(0),
        expires_at: None,
        source: PinSource::Generated,
        temporary: false,
        uses_left: None,
        windows: Vec::new(),
    });
    set_upstream_pin(
        &mut u,
        crate::domain::Tag([3; 32]),
        Timestamp::from_millis(1),
    );
    assert_eq!(u.pending_pin, None);
    assert_eq!(u.pin.unwrap().source, PinSource::Upstream);
}
