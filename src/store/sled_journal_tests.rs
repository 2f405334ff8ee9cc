use super::super::tests::open;
use super::super::SledStore;
use super::{apply_chunk, encode, key, touch, Head, CHUNK, HEAD, REMOVALS, UPSERTS};
use crate::core::lockout::user_key;
use crate::domain::{PinRecord, PinSource, Tag, Timestamp, UpstreamRef, User, UserOrigin};
use crate::store::{Store, StoreError, SyncState, SyncWrite};

fn tag(n: u32) -> Tag {
    let mut t = [0u8; 32];
    t[..4].copy_from_slice(&n.to_be_bytes());
    t[4] = 1;
    Tag(t)
}

fn user(i: u32, generation: &str, pin: u32) -> User {
    let mut u = User::new_local(format!("u{i:05}"));
    u.name = format!("{generation} {i}");
    u.origin = UserOrigin::Upstream;
    u.upstream = Some(UpstreamRef {
        source: "hr".into(),
        key: format!("k{i}"),
        version: None,
    });
    u.cards = vec![format!("{}", 100_000 + i)];
    u.pin = Some(PinRecord {
        tag: tag(pin),
        set_at: Timestamp::from_millis(0),
        expires_at: None,
        source: PinSource::Upstream,
        temporary: false,
        uses_left: None,
        windows: Vec::new(),
    });
    u
}

/// `n` users spanning several chunks.
fn generation(n: u32, name: &str, pin_base: u32) -> Vec<User> {
    (0..n).map(|i| user(i, name, pin_base + i)).collect()
}

/// After `generation(N, ..)`: the first N - 100 users, each with the PIN and card of the
/// user one chunk further on (so both move between chunks), u00005 and u01005 sharing a
/// new PIN; and the last 100 removed.
fn moved() -> (Vec<User>, Vec<String>) {
    let kept = N - 100;
    let mut users = generation(kept, "new", 0);
    for (i, u) in users.iter_mut().enumerate() {
        let from = ((i + CHUNK) % kept as usize) as u32;
        u.pin.as_mut().unwrap().tag = tag(from);
        u.cards = vec![format!("{}", 100_000 + from)];
    }
    users[5].pin.as_mut().unwrap().tag = tag(N + 7);
    users[CHUNK + 5].pin.as_mut().unwrap().tag = tag(N + 7);
    let leaving = (kept..N).map(|i| format!("u{i:05}")).collect();
    (users, leaving)
}

/// The store holds exactly `moved()`: the shared PIN is in no one's PIN-only index, the
/// leavers' PINs, cards and lockouts are gone.
fn assert_moved(store: &SledStore) {
    let (users, leaving) = moved();
    let shared = ["u00005".to_string(), format!("u{:05}", CHUNK + 5)];
    let clean: Vec<User> = users
        .iter()
        .filter(|u| !shared.contains(&u.id))
        .cloned()
        .collect();
    assert_holds(store, &clean, users.len());
    assert_eq!(store.tag_owner(&tag(N + 7)).unwrap(), None);
    assert_eq!(store.pin_collisions().unwrap(), vec![shared.to_vec()]);
    for i in N - 100..N {
        assert_eq!(store.tag_owner(&tag(i)).unwrap(), None, "leaver's PIN {i}");
        let retired = store.tag_retired_at(&tag(i)).unwrap();
        assert!(retired.is_some(), "leaver's PIN {i} is retired");
        assert_eq!(store.card_owner(&format!("{}", 100_000 + i)).unwrap(), None);
    }
    for id in &leaving {
        assert!(store.user(id).unwrap().is_none());
        assert!(store.lockouts.get(user_key(id)).unwrap().is_none());
    }
}

/// A lockout counter for each leaver (removed with the user).
fn lock_leavers(store: &SledStore) {
    for id in moved().1 {
        store.lockouts.insert(user_key(&id), &b"{}"[..]).unwrap();
    }
}

fn state(cursor: &str) -> SyncState {
    SyncState {
        cursor: Some(cursor.as_bytes().to_vec()),
        ..Default::default()
    }
}

fn apply(
    store: &SledStore,
    upserts: &[User],
    removals: &[String],
    cursor: &str,
) -> crate::store::Result<crate::store::SyncApplied> {
    store.apply_sync(&SyncWrite {
        source: "hr",
        upserts,
        removals,
        state: &state(cursor),
    })
}

/// The store holds `total` users of which each of `users` is stored as given and reachable
/// through each index, and the journal is empty.
fn assert_holds(store: &SledStore, users: &[User], total: usize) {
    assert_eq!(store.user_count().unwrap(), total as u64);
    assert_eq!(store.upstream_keys("hr").unwrap().len(), total);
    for u in users {
        assert_eq!(store.user(&u.id).unwrap().as_ref(), Some(u), "{}", u.id);
        let pin = u.pin.as_ref().unwrap();
        assert_eq!(store.tag_owner(&pin.tag).unwrap().as_deref(), Some(&*u.id));
        let retired = store.tag_retired_at(&pin.tag).unwrap();
        assert_eq!(retired, None, "a PIN in use is not retired ({})", u.id);
        for card in &u.cards {
            assert_eq!(store.card_owner(card).unwrap().as_deref(), Some(&*u.id));
        }
    }
    assert_eq!(store.journal.len(), 0, "the journal is empty");
}

const N: u32 = (CHUNK as u32) * 2 + 500;

#[test]
fn a_large_batch_applies_in_chunks_with_the_same_result_as_one_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let first = generation(N, "old", 0);
    let applied = apply(&store, &first, &[], "c1").unwrap();
    assert_eq!((applied.added, applied.changed), (N as usize, 0));
    assert!(applied.collisions.is_empty());
    assert_holds(&store, &first, N as usize);

    // Every PIN and card moves to the user one chunk away; 100 users leave; one new PIN
    // is held by users in different chunks (a collision).
    lock_leavers(&store);
    let (second, leaving) = moved();
    let applied = apply(&store, &second, &leaving, "c2").unwrap();
    assert_eq!(
        (applied.added, applied.changed, applied.removed),
        (0, (N - 100) as usize, 100)
    );
    assert_eq!(
        applied.collisions,
        vec!["u00005", &format!("u{:05}", CHUNK + 5)]
    );
    assert_moved(&store);
    assert_eq!(
        store.sync_state("hr").unwrap().unwrap().cursor,
        state("c2").cursor
    );
}

/// How `stage` leaves a batch.
#[derive(PartialEq)]
enum Commit {
    /// Staged only.
    No,
    /// Committed: the touched ids under their own keys, then the head.
    Yes,
    /// Committed by an earlier version: the touched ids in the head.
    InHead,
}

/// Writes a batch to the journal as `apply` does, committed as `commit` says.
fn stage(store: &SledStore, upserts: &[User], removals: &[String], cursor: &str, commit: Commit) {
    for (seq, chunk) in (0..).zip(removals.chunks(CHUNK)) {
        store
            .journal
            .insert(key("hr", REMOVALS, seq), encode(&chunk))
            .unwrap();
    }
    for (seq, chunk) in (0..).zip(upserts.chunks(CHUNK)) {
        store
            .journal
            .insert(key("hr", UPSERTS, seq), encode(&chunk))
            .unwrap();
    }
    let touched = upserts
        .iter()
        .map(|u| u.id.clone())
        .chain(removals.iter().cloned());
    if commit == Commit::Yes {
        for id in touched.clone() {
            touch(store, "hr", &id).unwrap();
        }
    }
    if commit != Commit::No {
        let head = Head {
            state: state(cursor),
            touched: if commit == Commit::InHead {
                touched.collect()
            } else {
                Vec::new()
            },
        };
        store
            .journal
            .insert(key("hr", HEAD, 0), encode(&head))
            .unwrap();
    }
    store.db.flush().unwrap();
}

#[test]
fn a_stop_midway_through_a_committed_batch_is_completed_at_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let (new, leaving) = moved();
    {
        let store = open(dir.path());
        apply(&store, &generation(N, "old", 0), &[], "c1").unwrap();
        lock_leavers(&store);
        stage(&store, &new, &leaving, "c2", Commit::Yes);
        // The removals and the first chunk of users are applied, then the process dies.
        let removals = key("hr", REMOVALS, 0);
        apply_chunk(&store, "hr", &removals, &leaving, &[]).unwrap();
        let first = key("hr", UPSERTS, 0);
        apply_chunk(&store, "hr", &first, &[], &new[..CHUNK]).unwrap();
        store.db.flush().unwrap();
        assert_eq!(store.user("u00000").unwrap().unwrap().name, "new 0");
        let last = format!("u{:05}", N - 101);
        assert!(store.user(&last).unwrap().unwrap().name.starts_with("old"));
    }
    let store = open(dir.path());
    assert_moved(&store);
    assert_eq!(
        store.sync_state("hr").unwrap().unwrap().cursor,
        state("c2").cursor
    );
    let audit = store.audit_tail(1).unwrap();
    assert!(
        format!("{:?}", audit).contains("completed"),
        "the completion is audited: {audit:?}"
    );
    assert_eq!(
        store.journal.iter().count(),
        0,
        "the batch's ids and cards are gone from the journal"
    );
}

#[test]
fn a_batch_committed_with_its_ids_in_the_head_completes_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let (new, leaving) = moved();
    {
        let store = open(dir.path());
        apply(&store, &generation(N, "old", 0), &[], "c1").unwrap();
        lock_leavers(&store);
        stage(&store, &new, &leaving, "c2", Commit::InHead);
    }
    // Cards move between chunks only if every id of the batch is known as touched.
    let store = open(dir.path());
    assert_moved(&store);
    assert_eq!(store.journal.iter().count(), 0);
}

#[test]
fn a_pending_batch_is_completed_before_any_other_write_of_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    apply(&store, &generation(N, "old", 0), &[], "c1").unwrap();
    let (new, leaving) = moved();
    // A committed batch whose roll-forward failed while the daemon ran.
    stage(&store, &new, &leaving, "c2", Commit::Yes);
    let small = [user(0, "later", 1)];
    let e = apply(&store, &small, &[], "c3").unwrap_err();
    assert!(
        matches!(e, StoreError::Again(ref m) if m.contains("completed first")),
        "{e}"
    );
    assert_moved(&store);
    assert_eq!(
        store.sync_state("hr").unwrap().unwrap().cursor,
        state("c2").cursor
    );
    // Planned again against the completed store, the small batch applies.
    let later = User {
        name: "later 0".into(),
        ..new[0].clone()
    };
    apply(&store, &[later], &[], "c3").unwrap();
    assert_eq!(store.user("u00000").unwrap().unwrap().name, "later 0");

    stage(&store, &new, &leaving, "c4", Commit::InHead);
    let e = store.put_sync_state("hr", &state("c0")).unwrap_err();
    assert!(matches!(e, StoreError::Again(_)), "{e}");
    assert_eq!(
        store.sync_state("hr").unwrap().unwrap().cursor,
        state("c4").cursor,
        "the pending batch's state, not an older one written over it"
    );
}

#[test]
fn a_batch_stopped_before_its_head_was_written_leaves_the_previous_state() {
    let dir = tempfile::tempdir().unwrap();
    let old = generation(N, "old", 0);
    {
        let store = open(dir.path());
        apply(&store, &old, &[], "c1").unwrap();
        stage(&store, &generation(N, "new", N), &[], "c2", Commit::No);
    }
    let store = open(dir.path());
    assert_holds(&store, &old, N as usize);
    assert_eq!(
        store.sync_state("hr").unwrap().unwrap().cursor,
        state("c1").cursor
    );
}

#[test]
fn a_large_batch_is_refused_whole_like_one_transaction_would_be() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut lou = User::new_local("lou");
    lou.cards = vec!["424242".into()];
    store.insert_user(&lou).unwrap();
    let mut users = generation(N, "new", 0);
    users[N as usize - 1].cards = vec!["424242".into()];
    let e = apply(&store, &users, &[], "c1").unwrap_err();
    assert!(
        matches!(e, StoreError::CardTaken(ref c) if c == "424242"),
        "{e}"
    );
    let e = apply(&store, &generation(N, "new", 0), &["lou".into()], "c1").unwrap_err();
    assert!(
        matches!(e, StoreError::NotOwned(ref id) if id == "lou"),
        "{e}"
    );
    assert_eq!(store.user_count().unwrap(), 1, "nothing applied");
    assert!(store.sync_state("hr").unwrap().is_none(), "nor the cursor");
    assert_eq!(store.journal.len(), 0);
}

#[path = "sled_stage_tests.rs"]
mod stage;
